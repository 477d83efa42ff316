from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = _("Payments")

    def ready(self) -> None:
        from . import (
            bills,  # noqa: F401  (registers what a paid clinic bill does)
            signals,  # noqa: F401  (provider name cache invalidation)
        )
