"""The waitlist of a full clinic session: join, be offered a place that came free (as a hold
of one's own), leave. Run inside the hospital's schema."""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from tenants.models import hospital_tz

from ..errors import BookingError, NotYourPatient, SlotSoldOut, WaitlistNotAvailable
from ..models import Booking, Schedule, TimeSlice, WaitlistEntry
from .booking import booking_hold
from .locks import lock_patient, lock_schedule_for_offer
from .rules import check_bookable, check_patient_rules

log = logging.getLogger(__name__)


def waitlist_join(*, schedule: Schedule, family_member, account) -> WaitlistEntry:
    if family_member.account_id != account.pk:
        raise NotYourPatient(_("You can only book for your own family members."))
    with transaction.atomic():
        now = timezone.now()
        open_slices = TimeSlice.objects.filter(schedule=schedule, start__gt=now)
        if schedule.status != Schedule.Status.OPEN or not open_slices.exists():
            raise WaitlistNotAvailable(_("This clinic cannot be waitlisted."))
        first = open_slices.select_related("schedule").first()
        check_bookable(first)
        if open_slices.filter(booked__lt=F("capacity")).exists():
            raise WaitlistNotAvailable(_("Places are still free: book one instead."))
        lock_patient(family_member.pk)
        check_patient_rules(family_member=family_member, doctor_id=schedule.doctor_id,
                            day=schedule.date)
        if WaitlistEntry.objects.filter(schedule=schedule, family_member=family_member,
                                        status=WaitlistEntry.Status.WAITING).exists():
            raise WaitlistNotAvailable(_("%(name)s is already on the waitlist.") % {
                "name": family_member.name})
        return WaitlistEntry.objects.create(schedule=schedule, family_member=family_member,
                                            account=account)


def waitlist_offer_next(*, schedule_id: int) -> Booking | None:
    """A place came free: offer it (as a hold of their own) to the first patient waiting."""
    from portal.notifications.services import notify

    while True:
        with transaction.atomic():
            # Lock order (see locks.py): the schedule row FOR SHARE before the entry, which
            # stop-clinic locks after the schedule; only the entry's own row (of=self), so the
            # patient's advisory lock, taken by the hold, is not queued behind a schedule row
            # held FOR UPDATE here (a patient booking the free place themselves deadlocked).
            if not lock_schedule_for_offer(schedule_id):
                return None
            entry = (WaitlistEntry.objects.select_for_update(skip_locked=True, of=("self",))
                     .select_related("family_member", "account", "schedule__doctor")
                     .filter(schedule_id=schedule_id, status=WaitlistEntry.Status.WAITING)
                     .order_by("created_at", "pk").first())
            if entry is None:
                return None
            slice_ = (TimeSlice.objects.filter(schedule_id=schedule_id, start__gt=timezone.now(),
                                               booked__lt=F("capacity")).order_by("start").first())
            if slice_ is None:
                return None  # someone else took the place first; entries keep waiting
            try:
                with transaction.atomic():
                    booking = booking_hold(slice_id=slice_.pk, family_member=entry.family_member,
                                           account=entry.account, source="waitlist")
            except SlotSoldOut:
                continue
            except BookingError as exc:
                entry.status = WaitlistEntry.Status.EXPIRED
                entry.save(update_fields=["status"])
                log.info("waitlist entry %s skipped: %s", entry.pk, exc.code)
                continue
            entry.status, entry.booking = WaitlistEntry.Status.OFFERED, booking
            entry.save(update_fields=["status", "booking"])
            schedule = entry.schedule
            until = timezone.localtime(booking.hold_expires_at, hospital_tz()).strftime("%H:%M") \
                if booking.hold_expires_at else ""
            notify(kind="waitlist_offer", hospital=connection.tenant, recipients=[entry.account_id],
                   context={"doctor": schedule.doctor.name, "day": schedule.date.isoformat(),
                            "name": entry.family_member.name, "number": booking.queue_number,
                            "until": until},
                   link=f"/bookings/{booking.pk}/")
            return booking


def waitlist_leave(*, entry: WaitlistEntry, account) -> None:
    if entry.account_id != account.pk:
        raise NotYourPatient(_("You can only change your own waitlist entries."))
    WaitlistEntry.objects.filter(pk=entry.pk, status=WaitlistEntry.Status.WAITING).update(
        status=WaitlistEntry.Status.CANCELLED)
