from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = _("Payments")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from . import bills  # noqa: F401  (registers what a paid clinic bill does)
        from .models import PaymentSettings
        from .services import provider_name_cache

        def forget_provider(sender, **kwargs) -> None:
            provider_name_cache.invalidate()

        post_save.connect(forget_provider, sender=PaymentSettings, weak=False,
                          dispatch_uid="payments.forget_provider")
        post_delete.connect(forget_provider, sender=PaymentSettings, weak=False,
                            dispatch_uid="payments.forget_provider")
