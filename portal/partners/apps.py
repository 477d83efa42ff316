from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PartnersConfig(AppConfig):
    name = "portal.partners"
    label = "partners"
    verbose_name = _("Partners")

    def ready(self) -> None:
        from . import schema, signals  # noqa: F401  (OpenAPI security scheme; cache upkeep)
