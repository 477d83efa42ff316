from __future__ import annotations

from celery import shared_task

from portal.partners.services import idempotency_records_purge


@shared_task(name="partners.idempotency_purge")
def idempotency_purge() -> int:
    """Delete stored Idempotency-Key outcomes past their expiry (public schema)."""
    return idempotency_records_purge()
