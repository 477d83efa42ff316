from __future__ import annotations

from celery import shared_task
from django.db import connection

from .services.seeding import departments_seed_defaults


@shared_task(name="registration.departments_seed_defaults")
def departments_seed_defaults_task() -> dict:
    """Restore missing default departments in the sending hospital's schema."""
    created = departments_seed_defaults()
    return {"schema": connection.schema_name, "created": created}


# ignore_result: one is sent per hold; nobody reads its result, and with the Redis result
# backend each send would otherwise subscribe the web process to a result channel.
@shared_task(name="registration.booking_expire", acks_late=True, ignore_result=True)
def booking_expire_task(booking_id: int) -> bool:
    """One hold's expiry. No longer sent (holds are released by bookings_expire_due_at, once
    per time bucket); kept so that tasks queued by an older version still run."""
    from .services.booking import booking_expire

    return booking_expire(booking_id=booking_id)


# ignore_result as above. Sent (once per EXPIRY_BUCKET_SECONDS per hospital) for just after
# the holds made in that bucket expire; see services.booking._schedule_expiry.
@shared_task(name="registration.bookings_expire_due_at", acks_late=True, ignore_result=True)
def bookings_expire_due_at_task() -> int:
    """Release the holds due now: scheduled when holds are made, for when they expire."""
    from .services.booking import bookings_expire_due

    return bookings_expire_due()


@shared_task(name="registration.bookings_expire_due")
def bookings_expire_due_task() -> int:
    """Per-minute safety net for holds whose own expiry task was lost."""
    from .services.booking import bookings_expire_due

    return bookings_expire_due()


@shared_task(name="registration.bookings_mark_no_shows")
def bookings_mark_no_shows_task() -> int:
    """After each day: confirmed bookings never checked in become no-shows."""
    from .services.booking import bookings_mark_no_shows

    return bookings_mark_no_shows()


@shared_task(name="registration.bookings_remind_tomorrow")
def bookings_remind_tomorrow_task() -> int:
    """Hourly: the day before a confirmed booking, from REMINDER_HOUR on, remind the patient."""
    from .services.reminders import bookings_remind_tomorrow

    return bookings_remind_tomorrow()


@shared_task(name="registration.bills_insurance_sweep")
def bills_insurance_sweep_task() -> int:
    """Settle or reverse clinic bills' insurer settlements left pending by a failed call."""
    from registration.services.bills import bills_insurance_sweep

    return bills_insurance_sweep()
