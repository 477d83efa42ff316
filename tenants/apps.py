from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = _("Hospitals")

    def ready(self) -> None:
        from . import signals  # noqa: F401
