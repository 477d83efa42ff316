"""The day-before reminder of a visit. Run inside the hospital's schema."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from tenants.models import hospital_tz

from ..models import Booking
from .locks import lock_reminders


def bookings_remind_tomorrow(*, now: datetime | None = None) -> int:
    """Remind each confirmed booking of tomorrow once: time, place and what to bring.

    Runs hourly (beat); does nothing before settings.REMINDER_HOUR hospital local time, and
    after it also picks up bookings confirmed later that evening. "Once" needs no new field:
    a booking is reminded when a "visit_reminder" outbox event names it in its context. One
    transaction under a per-hospital advisory lock, so overlapping runs cannot both send."""
    from portal.notifications.models import OutboxEvent
    from portal.notifications.services import notify

    h = connection.tenant
    local_now = timezone.localtime(now or timezone.now(), hospital_tz())
    if local_now.hour < settings.REMINDER_HOUR:
        return 0
    tomorrow = local_now.date() + timedelta(days=1)
    with transaction.atomic():
        lock_reminders(h.pk)
        bookings = list(Booking.objects.filter(status=Booking.Status.CONFIRMED, date=tomorrow)
                        .select_related("slice", "doctor__department", "family_member")
                        .order_by("pk"))
        if not bookings:
            return 0
        done = set(OutboxEvent.objects.filter(
            kind="visit_reminder", hospital_id=h.pk,
            context__booking__in=[b.pk for b in bookings]).values_list("context__booking",
                                                                       flat=True))
        sent = 0
        for b in bookings:
            if b.pk in done:
                continue
            department = b.doctor.department
            start = timezone.localtime(b.slice.start, hospital_tz())
            notify(kind="visit_reminder", hospital=h, recipients=[b.account_id],
                   context={"booking": b.pk, "doctor": b.doctor.name, "day": b.date.isoformat(),
                            "time": f"{start:%H:%M}", "name": b.family_member.name,
                            "number": b.queue_number, "hospital": h.name,
                            "place": department.location or department.name},
                   link=f"/bookings/{b.pk}/")
            sent += 1
    return sent
