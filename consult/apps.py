from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsultConfig(AppConfig):
    name = "consult"
    verbose_name = _("Consult and records")

    def ready(self) -> None:
        from payments import services as payments
        from payments.models import Order

        from .services import consultations

        # What a paid or closed consultation order does. The registry is keyed by order kind,
        # so registering again (ready() run twice) replaces the handler with itself.
        payments.on_order_paid(Order.Kind.CONSULTATION)(consultations.on_consultation_paid)
        payments.on_order_closed(Order.Kind.CONSULTATION)(
            consultations.on_consultation_order_closed)
