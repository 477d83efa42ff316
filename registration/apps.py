from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RegistrationConfig(AppConfig):
    name = "registration"
    verbose_name = _("Registration")

    def ready(self) -> None:
        # What a paid or closed order of this app's kinds does, registered with payments here
        # (never as a side effect of importing the admin: a worker may not load it). The
        # registry is keyed by order kind, so importing again changes nothing.
        from tenants.services import hospital_seeder

        from .services import (
            bills,  # noqa: F401  (clinic bill orders: bill paid or reopened)
            booking,  # noqa: F401  (registration fee orders: confirm or release the hold)
        )
        from .services.seeding import hospital_seed_defaults

        hospital_seeder("registration")(hospital_seed_defaults)
