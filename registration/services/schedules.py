"""Clinic sessions (schedules) and their time slices, from weekly templates or by hand, and
stop-clinic (停诊). Run inside the hospital's schema."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from tenants.models import hospital_tz

from ..errors import BookingError
from ..models import Booking, Schedule, ScheduleTemplate, TimeSlice, WaitlistEntry
from .booking import booking_cancel_locked
from .locks import lock_booking, lock_schedule_for_stop
from .rules import doctor_fee_fen


def schedules_generate(*, weeks: int, templates=None, start=None) -> list[Schedule]:
    """Create schedules and slices from weekly templates for the next `weeks` weeks.

    Idempotent: a schedule that exists (same doctor, date and period) is left alone, so running
    it twice creates nothing the second time. Returns what was created.
    """
    tz = hospital_tz()
    start = start or timezone.localdate(timezone=tz)
    templates = (templates if templates is not None else ScheduleTemplate.objects.all()).filter(
        is_active=True, doctor__is_active=True)
    created: list[Schedule] = []
    for template in templates.select_related("doctor"):
        for offset in range(weeks * 7):
            day = start + timedelta(days=offset)
            if day.weekday() != template.weekday:
                continue
            with transaction.atomic():
                if Schedule.objects.filter(doctor=template.doctor, date=day,
                                           period=template.period).exists():
                    continue
                created.append(schedule_create(
                    doctor=template.doctor, day=day, period=template.period,
                    start_time=template.start_time, end_time=template.end_time,
                    slice_minutes=template.slice_minutes,
                    capacity=template.capacity_per_slice, template=template))
    return created


@transaction.atomic
def schedule_create(*, doctor, day, period: str, start_time, end_time, slice_minutes: int,
                    capacity: int, fee_fen: int | None = None, template=None) -> Schedule:
    """One clinic session and its time slices (manual, or from a weekly template)."""
    schedule = Schedule.objects.create(
        doctor=doctor, date=day, period=period, template=template,
        fee_fen=doctor_fee_fen(doctor) if fee_fen is None else fee_fen)
    slices_create(schedule=schedule, start_time=start_time, end_time=end_time,
                  minutes=slice_minutes, capacity=capacity)
    return schedule


def slices_create(*, schedule: Schedule, start_time, end_time, minutes: int, capacity: int) -> int:
    tz = hospital_tz()
    at = datetime.combine(schedule.date, start_time, tzinfo=tz)
    end = datetime.combine(schedule.date, end_time, tzinfo=tz)
    rows, base = [], 1
    while at + timedelta(minutes=minutes) <= end:
        rows.append(TimeSlice(schedule=schedule, start=at, end=at + timedelta(minutes=minutes),
                              capacity=capacity, queue_base=base))
        base += capacity
        at += timedelta(minutes=minutes)
    TimeSlice.objects.bulk_create(rows)
    return len(rows)


def schedule_stop(*, schedule: Schedule, reason: str, actor) -> int:
    """Stop a clinic session (停诊): every booking not yet seen is cancelled and refunded and
    every patient is told, all in one transaction (nobody is left half-cancelled or untold).
    Returns how many bookings were cancelled."""
    from portal.notifications.services import notify

    if not (reason or "").strip():
        raise BookingError(_("Give the patients a reason."), code="reason_required")
    reason = reason.strip()
    if schedule.date < timezone.localdate(timezone=hospital_tz()):
        raise BookingError(_("This clinic day is over; it cannot be stopped."),
                           code="schedule_over")
    with transaction.atomic():
        schedule = lock_schedule_for_stop(schedule.pk)
        if schedule.status == Schedule.Status.STOPPED:
            return 0
        schedule.status, schedule.stop_reason = Schedule.Status.STOPPED, reason
        schedule.save(update_fields=["status", "stop_reason"])
        facts = {"doctor": schedule.doctor.name, "day": schedule.date.isoformat(),
                 "reason": reason}
        cancelled = 0
        # Patients already checked in have been seen: their bookings stay as they are.
        for pk in Booking.objects.filter(schedule=schedule, status__in=(
                Booking.Status.HELD, Booking.Status.CONFIRMED)).values_list("pk", flat=True):
            locked = lock_booking(pk)
            if locked is None or locked.status not in (Booking.Status.HELD,
                                                       Booking.Status.CONFIRMED):
                continue
            refunding = booking_cancel_locked(locked=locked, actor=actor, source="staff",
                                              reason=reason, status=Booking.Status.STOPPED)
            cancelled += 1
            notify(kind="schedule_stopped_refund" if refunding else "schedule_stopped",
                   hospital=connection.tenant, recipients=[locked.account_id],
                   context={**facts, "name": locked.family_member.name,
                            "number": locked.queue_number},
                   link=f"/bookings/{locked.pk}/")
        waiting = list(WaitlistEntry.objects.select_for_update(of=("self",))
                       .filter(schedule=schedule, status=WaitlistEntry.Status.WAITING)
                       .select_related("account"))
        for w in waiting:
            w.status = WaitlistEntry.Status.EXPIRED
            w.save(update_fields=["status"])
            notify(kind="waitlist_closed", hospital=connection.tenant, recipients=[w.account_id],
                   context=facts)
    return cancelled
