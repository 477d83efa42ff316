from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = _("Payments")

    def ready(self) -> None:
        # Payments' own signals only: the apps whose orders these are (registration, consult)
        # register what a paid or closed order does from their own ready().
        from tenants.services import hospital_seeder

        from . import signals  # noqa: F401  (provider name cache invalidation)
        from .services import payment_settings_seed_for

        hospital_seeder("payments")(payment_settings_seed_for)
