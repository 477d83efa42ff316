from __future__ import annotations

from celery import shared_task

from .services import consultations


@shared_task(name="consult.consultations_timeout_due")
def consultations_timeout_due() -> int:
    """Per hospital, every minute: time out consultations no doctor answered in time, refund
    them and tell the patient (and the safety net for the per-consultation task below)."""
    return consultations.consultations_timeout_due()


@shared_task(name="consult.consultation_timeout", acks_late=True)
def consultation_timeout_task(consultation_id: int) -> bool:
    """Scheduled at payment time for the consultation's deadline."""
    return consultations.consultation_timeout_and_refund(consultation_id=consultation_id)
