from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="payments.orders_close_expired")
def orders_close_expired() -> int:
    """Safety net: close unpaid orders past their expiry (per hospital, every minute)."""
    return services.orders_close_expired()


@shared_task(name="payments.refunds_retry_pending")
def refunds_retry_pending() -> int:
    """Re-submit refunds that never reached the provider (provider down, worker killed)."""
    return services.refunds_retry_pending()


@shared_task(name="payments.refund_submit", acks_late=True)
def refund_submit(refund_id: int) -> None:
    services.refund_submit(refund_id=refund_id)


@shared_task(name="payments.reconcile_yesterday", acks_late=True)
def reconcile_yesterday() -> dict:
    """Nightly per hospital: reconcile the previous day's provider statement."""
    from .reconciliation import reconcile_yesterday as run

    result = run()
    return {"day": str(result.day), "discrepancies": result.discrepancies}
