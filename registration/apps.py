from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RegistrationConfig(AppConfig):
    name = "registration"
    verbose_name = _("Registration")

    def ready(self) -> None:
        # Registers what a paid registration order does (payments.on_order_paid); the registry
        # is keyed by order kind, so importing it again changes nothing.
        from .services import booking  # noqa: F401
