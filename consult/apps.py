from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsultConfig(AppConfig):
    name = "consult"
    verbose_name = _("Consult and records")

    def ready(self) -> None:
        from . import services  # noqa: F401  (registers what a paid or closed consult order does)
