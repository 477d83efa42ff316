"""Booking services (挂号): holds, confirmation, cancellation, expiry, waitlist, stop-clinic,
check-in and no-shows. Run inside the hospital's schema.

Invariants and how they are kept:

* A slice is never given to more patients than its capacity: a place is taken with one
  conditional UPDATE (`booked = booked + 1 WHERE booked < capacity`), never read-check-write,
  and a CHECK constraint backs it up.
* The per-patient rules (max active bookings, one per doctor per day, bans) are read-check-
  write, so each patient's bookings are serialised with a transaction-scoped advisory lock on
  the family member: two tabs booking for the same child cannot both pass the checks.
* Lock order, everywhere: payment order row → booking row → slice row. The payment callback
  (order → booking), expiry, cancellation and stop-clinic all follow it, so none deadlock.
* A hold and its payment order expire together in one transaction; a payment that arrives
  after that finds the order closed and is refunded by the payments app.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from payments import services as payments
from payments.models import Order
from portal.db.inserts import IdText, InsertChain
from portal.errors import DomainError

from .models import Booking, BookingBan, BookingEvent, PatientCard, Schedule, TimeSlice, WaitlistEntry
from .services import patient_card_create

log = logging.getLogger(__name__)

_MEMBER_LOCK_NAMESPACE = 7301  # advisory-lock namespace for "one patient's bookings"


class BookingError(DomainError):
    code = "booking_error"


class SlotSoldOut(BookingError):
    code = "slot_sold_out"


class NotYetReleased(BookingError):
    code = "not_yet_released"


class SlotInThePast(BookingError):
    code = "slot_in_the_past"


class ScheduleStopped(BookingError):
    code = "schedule_stopped"


class BookingLimitReached(BookingError):
    code = "booking_limit_reached"


class DuplicateBooking(BookingError):
    code = "duplicate_booking"


class PatientBanned(BookingError):
    code = "patient_banned"


class NotYourPatient(BookingError):
    code = "not_your_patient"


class CancelTooLate(BookingError):
    code = "cancel_cutoff_passed"


class NotCancellable(BookingError):
    code = "not_cancellable"


class WaitlistNotAvailable(BookingError):
    code = "waitlist_not_available"


# --------------------------------------------------------------------------- rules


def _hospital():
    return connection.tenant


def _tz():
    import zoneinfo

    return zoneinfo.ZoneInfo(getattr(_hospital(), "time_zone", None) or "Asia/Shanghai")


def release_moment(day) -> datetime:
    """When a day's slots open: `booking_window_days` before, at the daily release time."""
    h = _hospital()
    opens_on = day - timedelta(days=h.booking_window_days)
    return datetime.combine(opens_on, h.release_time, tzinfo=_tz())


def cancel_deadline(day) -> datetime:
    """Patients cancel online until the cut-off hour of the day before."""
    h = _hospital()
    return datetime.combine(day - timedelta(days=1), time(h.cancel_cutoff_hour), tzinfo=_tz())


def cancel_open_online(booking: Booking, *, now: datetime | None = None) -> bool:
    """Can the patient still cancel this booking themselves? Unpaid holds always; others
    until the cut-off of the day before."""
    if booking.status == Booking.Status.HELD:
        return True
    return booking.status == Booking.Status.CONFIRMED and (now or timezone.now()) < \
        cancel_deadline(booking.date)


def check_bookable(slice_: TimeSlice, *, now: datetime | None = None) -> None:
    """Schedule and time rules for a slice, each with a clear message."""
    now = now or timezone.now()
    schedule = slice_.schedule
    if schedule.status != Schedule.Status.OPEN:
        raise ScheduleStopped(_("The doctor has stopped this clinic; please choose another time."))
    if slice_.start <= now:
        raise SlotInThePast(_("This time has already passed."))
    # The booking window is this rule: a day opens `booking_window_days` before, at the
    # release time, so a day beyond the window is simply "not yet released".
    opens = release_moment(schedule.date)
    if now < opens:
        raise NotYetReleased(
            _("Places for %(day)s open at %(when)s.") % {
                "day": schedule.date.isoformat(),
                "when": timezone.localtime(opens, _tz()).strftime("%Y-%m-%d %H:%M")})


def _lock_patient(family_member_id: int) -> None:
    # Serialises one patient's bookings until the end of the transaction (see module docstring).
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                    [_MEMBER_LOCK_NAMESPACE, family_member_id])


@dataclass(frozen=True)
class _PatientFacts:
    ban_until: date | None
    ban_reason: str | None
    active: int  # active bookings from today on
    same_doctor_day: int  # ... of which with this doctor on that day
    card: PatientCard | None  # this hospital's card, if the member has one


# The rules' facts, and the patient's card, in one round trip.
_PATIENT_FACTS_SQL = """
    SELECT ban.until, ban.reason, COUNT(b.id),
           COUNT(b.id) FILTER (WHERE b.doctor_id = %(doctor)s AND b.date = %(day)s),
           card.id, card.medical_record_number, card.created_at
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (SELECT until, reason FROM registration_bookingban
                       WHERE family_member_id = %(member)s AND until >= %(today)s
                       ORDER BY until DESC LIMIT 1) AS ban ON true
    LEFT JOIN registration_patientcard AS card ON card.family_member_id = %(member)s
    LEFT JOIN registration_booking AS b
           ON b.family_member_id = %(member)s AND b.status = ANY(%(active)s)
          AND b.date >= %(today)s
    GROUP BY ban.until, ban.reason, card.id
"""


def _patient_facts(*, family_member, doctor_id: int, day) -> _PatientFacts:
    # Its own statement after the patient's lock, so that it sees what the previous holder of
    # the lock committed.
    with connection.cursor() as cur:
        cur.execute(_PATIENT_FACTS_SQL, {
            "member": family_member.pk, "today": timezone.localdate(timezone=_tz()),
            "doctor": doctor_id, "day": day, "active": list(Booking.ACTIVE)})
        until, reason, active, same, card_id, card_number, card_created = cur.fetchone()
    card = None
    if card_id is not None:
        card = PatientCard(pk=card_id, family_member=family_member,
                           medical_record_number=card_number, created_at=card_created)
        card._state.adding, card._state.db = False, connection.alias
    return _PatientFacts(until, reason, active, same, card)


def _check_patient_facts(family_member, facts: _PatientFacts) -> None:
    h = _hospital()
    if facts.ban_until is not None:
        raise PatientBanned(_("Online booking for %(name)s is suspended until %(until)s: "
                              "%(reason)s") % {"name": family_member.name,
                                               "until": facts.ban_until,
                                               "reason": facts.ban_reason})
    if facts.active >= h.max_active_bookings:
        raise BookingLimitReached(
            _("%(name)s already has %(n)d active bookings here, the most allowed.") % {
                "name": family_member.name, "n": h.max_active_bookings})
    if h.one_booking_per_doctor_per_day and facts.same_doctor_day:
        raise DuplicateBooking(
            _("%(name)s already has a booking with this doctor on that day.") % {
                "name": family_member.name})


def check_patient_rules(*, family_member, doctor_id: int, day) -> None:
    """Ban, max active bookings, one booking per doctor per day. Call with the patient locked."""
    _check_patient_facts(family_member, _patient_facts(
        family_member=family_member, doctor_id=doctor_id, day=day))


def _event(booking: Booking, action: str, *, source: str, actor=None, before: str = "",
           rows: InsertChain | None = None, **detail) -> None:
    """The audit row of a booking's change (`rows`: written with the caller's other new rows,
    the booking among them)."""
    event = BookingEvent(booking=booking, action=action, from_status=before,
                         to_status=booking.status, actor=actor, source=source, detail=detail)
    if rows is None:
        event.save(force_insert=True)
    else:
        rows.add(event, booking=booking)


def _free_queue_number(slice_: TimeSlice) -> int:
    # Called with the slice row locked (by the conditional UPDATE that took the place), in a
    # statement of its own: its snapshot then includes the bookings of whoever held the lock
    # before (a subquery of the UPDATE would not see them, and hand out a taken number).
    with connection.cursor() as cur:
        cur.execute("SELECT queue_number FROM registration_booking "
                    "WHERE slice_id = %s AND status = ANY(%s)", [slice_.pk, list(Booking.ACTIVE)])
        taken = {n for (n,) in cur.fetchall()}
    for n in range(slice_.queue_base, slice_.queue_base + slice_.capacity):
        if n not in taken:
            return n
    raise SlotSoldOut(_("This time is fully booked."))  # cannot happen: capacity was checked


# --------------------------------------------------------------------------- hold / confirm


def booking_hold(*, slice_id: int, family_member, account, source: str = "web",
                 time_slice: TimeSlice | None = None) -> Booking:
    """Take a place for a patient: confirmed at once if free, otherwise a hold awaiting payment.

    `time_slice`: the slice `slice_id` names, if the caller has just loaded it with its
    schedule and doctor (the booking page has): it saves reading it again. Its `booked` count
    only serves the early "sold out" answer; the place itself is taken by the conditional
    UPDATE below, and the schedule's status and fee are read again under a row lock.
    """
    if family_member.account_id != account.pk:
        raise NotYourPatient(_("You can only book for your own family members."))
    if time_slice is not None and time_slice.pk != slice_id:
        raise ValueError("time_slice is not the slice slice_id names")
    slice_ = time_slice or (TimeSlice.objects.select_related("schedule__doctor")
                            .filter(pk=slice_id).first())
    if slice_ is None:
        raise SlotSoldOut(_("This time is no longer available."))
    check_bookable(slice_)
    if _hospital().identity_required and not family_member.id_number:
        raise BookingError(_("A resident ID number is needed to book."),
                           code="identity_required")
    # In a rush most requests come after the last place went: refuse them before taking any
    # lock or opening a transaction. (A stale count only lets a request through to the UPDATE,
    # which decides.)
    if slice_.booked >= slice_.capacity:
        raise SlotSoldOut(_("Sorry, this time has just been fully booked."))
    schedule = slice_.schedule
    with transaction.atomic():
        # FOR SHARE: many bookings of one session proceed together, but a stop-clinic (which
        # takes the row FOR UPDATE) waits for them, or they for it, and then see "stopped".
        # The fee is read here too, so the booking charges what the locked row says. The same
        # round trip takes the patient's advisory lock (see _lock_patient); the rules are then
        # read by a later statement, whose snapshot is taken after the lock was granted.
        with connection.cursor() as cur:
            cur.execute("SELECT status, fee_fen, pg_advisory_xact_lock(%s, %s) "
                        "FROM registration_schedule WHERE id = %s FOR SHARE",
                        [_MEMBER_LOCK_NAMESPACE, family_member.pk, schedule.pk])
            status, fee_fen, _locked = cur.fetchone()
        if status != Schedule.Status.OPEN:
            raise ScheduleStopped(
                _("The doctor has stopped this clinic; please choose another time."))
        facts = _patient_facts(family_member=family_member, doctor_id=schedule.doctor_id,
                               day=schedule.date)
        _check_patient_facts(family_member, facts)
        # Before the place is taken: the slice row stays locked from the UPDATE to the commit,
        # so whatever does not need that lock is done first (a rush queues on it).
        card = facts.card or patient_card_create(family_member=family_member)
        # The one place where capacity is spent: atomic, and it locks the slice row.
        with connection.cursor() as cur:
            cur.execute("UPDATE registration_timeslice SET booked = booked + 1 "
                        "WHERE id = %s AND booked < capacity", [slice_.pk])
            if cur.rowcount != 1:
                raise SlotSoldOut(_("Sorry, this time has just been fully booked."))
        now = timezone.now()
        # The order, the booking, their audit rows and the outbox event: one statement.
        rows = InsertChain()
        booking = Booking(slice=slice_, schedule=schedule, doctor=schedule.doctor,
                          date=schedule.date, patient_card=card, family_member=family_member,
                          account=account, queue_number=_free_queue_number(slice_),
                          fee_fen=fee_fen, source=source)
        refs = {}
        if fee_fen == 0:
            booking.status, booking.confirmed_at = Booking.Status.CONFIRMED, now
        else:
            hold = timedelta(minutes=_hospital().hold_minutes)
            booking.status, booking.hold_expires_at = Booking.Status.HELD, now + hold
            # A record (finance's order list, the provider's bill and statement): in the
            # hospital's language, not in whichever language the patient browses in.
            with translation.override(settings.LANGUAGE_CODE):
                description = _("Registration: %(doctor)s %(day)s #%(n)d") % {
                    "doctor": schedule.doctor.name, "day": schedule.date.isoformat(),
                    "n": booking.queue_number}
            booking.order = refs["order"] = payments.order_create(
                kind=Order.Kind.REGISTRATION, payer=account, total_fen=fee_fen,
                description=description, expires_in=hold, rows=rows)
        rows.add(booking, **refs)
        _event(booking, "held" if booking.status == Booking.Status.HELD else "confirmed",
               source=source, actor=account, queue_number=booking.queue_number, rows=rows)
        if booking.status == Booking.Status.CONFIRMED:
            _notify_confirmed(booking, rows=rows)
        else:
            _notify_booking(booking, "booking_held", rows=rows, until=timezone.localtime(
                booking.hold_expires_at, _tz()).strftime("%H:%M"))
        rows.run()
        if booking.status == Booking.Status.HELD:
            pk, eta = booking.pk, booking.hold_expires_at
            transaction.on_commit(lambda: _schedule_expiry(pk, eta))
    return booking


# Holds are released by one task per short time bucket rather than one task per hold: in a
# rush most holds fall into a bucket that is already scheduled, and a Redis SET NX (or this
# process's memory of it) is far cheaper than publishing a Celery message. A hold is released
# between 1 and EXPIRY_BUCKET_SECONDS + 1 seconds after its hold_expires_at.
EXPIRY_BUCKET_SECONDS = 2
_scheduled_buckets: set[tuple[str, int]] = set()  # (schema, bucket) this process knows are sent
_scheduled_buckets_lock = threading.Lock()


def _schedule_expiry(booking_id: int, eta: datetime) -> None:
    """Make sure a worker expires due holds just after `eta` (on commit of a hold)."""
    from django.core.cache import cache

    from .tasks import bookings_expire_due_at_task

    bucket = int(eta.timestamp()) // EXPIRY_BUCKET_SECONDS
    key = (connection.schema_name, bucket)
    if key in _scheduled_buckets:
        return
    run_at = datetime.fromtimestamp((bucket + 1) * EXPIRY_BUCKET_SECONDS + 1, tz=UTC)
    cache_key = f"registration:expiry-bucket:{bucket}"  # tenant-aware cache: per schema
    try:
        ttl = max(int((run_at - timezone.now()).total_seconds()), 0) + 600
        if cache.add(cache_key, 1, timeout=ttl):  # SET NX: first hold of this bucket anywhere
            try:
                bookings_expire_due_at_task.apply_async(eta=run_at)
            except Exception:
                cache.delete(cache_key)  # let the next hold of this bucket try again
                raise
    except Exception:  # Redis down: the per-minute sweeper releases it instead
        log.warning("could not schedule expiry of booking %s; the sweeper will", booking_id)
        return
    with _scheduled_buckets_lock:
        if len(_scheduled_buckets) > 10_000:
            _scheduled_buckets.clear()
        _scheduled_buckets.add(key)


@payments.on_order_paid(Order.Kind.REGISTRATION)
def _booking_paid(order: Order) -> None:
    """Payment arrived for a hold (called with the order row locked)."""
    booking = (Booking.objects.select_for_update(of=("self",))
               .select_related("slice", "doctor", "family_member").filter(order=order).first())
    if booking is None:
        return
    if booking.status != Booking.Status.HELD:
        # Cannot normally happen (expiry and cancel close the order in the same transaction);
        # if it does, the money goes back rather than being kept for nothing.
        payments.refund_gone_locked(
            order=order, amount_fen=order.self_pay_fen,
            reason=_("Automatic refund: the booking was no longer held."), key="booking-gone")
        return
    before = booking.status
    booking.status, booking.confirmed_at = Booking.Status.CONFIRMED, timezone.now()
    booking.save(update_fields=["status", "confirmed_at"])
    _event(booking, "confirmed", source="provider", before=before)
    _notify_confirmed(booking)


_BOOKING_LINK = "/bookings/{}/"


def _booking_link(booking: Booking, rows: InsertChain | None) -> str | IdText:
    return IdText(_BOOKING_LINK, booking) if rows is not None else _BOOKING_LINK.format(booking.pk)


def _notify_booking(booking: Booking, kind: str, *, rows: InsertChain | None = None,
                    **extra) -> None:
    """`rows`: the caller's InsertChain that holds the (new) booking, if any."""
    from portal.notifications.services import notify

    notify(kind=kind, hospital=_hospital(), recipients=[booking.account_id],
           context={"doctor": booking.doctor.name, "day": booking.date.isoformat(),
                    "name": booking.family_member.name, "number": booking.queue_number, **extra},
           link=_booking_link(booking, rows), rows=rows)


def _notify_confirmed(booking: Booking, *, rows: InsertChain | None = None) -> None:
    """Tell the patient, through the outbox, in the transaction that confirmed the booking."""
    from portal.notifications.services import notify

    start = timezone.localtime(booking.slice.start, _tz())
    notify(kind="booking_confirmed", hospital=_hospital(), recipients=[booking.account_id],
           context={"doctor": booking.doctor.name, "day": booking.date.isoformat(),
                    "name": booking.family_member.name, "number": booking.queue_number,
                    "arrive": f"{start - timedelta(minutes=30):%H:%M}–{start:%H:%M}"},
           link=_booking_link(booking, rows), rows=rows)


# --------------------------------------------------------------------------- release


def _lock_booking(booking_id: int) -> Booking | None:
    """Lock order (if any), then booking: the module's lock order."""
    order_id = Booking.objects.filter(pk=booking_id).values_list("order_id", flat=True).first()
    if order_id:
        Order.objects.select_for_update().get(pk=order_id)
    return (Booking.objects.select_for_update(of=("self",))
            .select_related("order", "schedule").filter(pk=booking_id).first())


def _release_place(booking: Booking) -> None:
    TimeSlice.objects.filter(pk=booking.slice_id, booked__gt=0).update(booked=F("booked") - 1)
    schedule_id = booking.schedule_id
    transaction.on_commit(lambda: waitlist_offer_next(schedule_id=schedule_id))


def booking_expire(*, booking_id: int) -> bool:
    """Release an unpaid hold whose time is up. Safe to call any number of times."""
    with transaction.atomic():
        booking = _lock_booking(booking_id)
        if booking is None or booking.status != Booking.Status.HELD:
            return False
        if booking.hold_expires_at and booking.hold_expires_at > timezone.now():
            return False
        booking.status = Booking.Status.EXPIRED
        booking.save(update_fields=["status"])
        _event(booking, "expired", source="system", before=Booking.Status.HELD)
        _notify_booking(booking, "booking_expired")
        if booking.order_id:
            payments.order_close(order=booking.order, reason="hold expired")
        _release_place(booking)
    return True


def bookings_expire_due(*, limit: int = 500) -> int:
    ids = list(Booking.objects.filter(status=Booking.Status.HELD,
                                      hold_expires_at__lte=timezone.now())
               .values_list("pk", flat=True)[:limit])
    return sum(booking_expire(booking_id=pk) for pk in ids)


def booking_cancel(*, booking: Booking, actor, source: str = "patient", reason: str = "",
                   status: str = Booking.Status.CANCELLED) -> Booking:
    """Cancel an active booking: the place returns to the pool, money paid is refunded."""
    with transaction.atomic():
        locked = _lock_booking(booking.pk)
        if locked is None or not locked.is_active:
            raise NotCancellable(_("This booking is no longer active."))
        if locked.status == Booking.Status.CHECKED_IN:
            raise NotCancellable(_("The patient has already checked in."))
        if source in ("patient", "api"):  # a partner cancels for the patient
            if locked.account_id != actor.pk:
                raise NotYourPatient(_("You can only cancel your own bookings."))
            # An unpaid hold costs nobody anything: it can always be let go.
            if not cancel_open_online(locked):
                raise CancelTooLate(
                    _("Online cancellation closed at %(when)s; please contact the hospital.") % {
                        "when": timezone.localtime(cancel_deadline(locked.date), _tz())
                        .strftime("%Y-%m-%d %H:%M")})
        _cancel_locked(locked, actor=actor, source=source, reason=reason, status=status)
    return locked


def _cancel_locked(locked: Booking, *, actor, source: str, reason: str, status: str) -> bool:
    """Cancel a booking whose order and row this transaction holds. Returns True if money
    paid is being refunded (the refund row is written here; it is submitted after commit)."""
    before = locked.status
    locked.status, locked.cancelled_at = status, timezone.now()
    locked.cancel_reason = reason[:200]
    locked.save(update_fields=["status", "cancelled_at", "cancel_reason"])
    _event(locked, "cancelled" if status == Booking.Status.CANCELLED else "stopped",
           source=source, actor=actor, before=before, reason=reason)
    if status == Booking.Status.CANCELLED:
        _notify_booking(locked, "booking_cancelled")
    refunding = False
    order = locked.order
    if order is not None:
        if order.status == Order.Status.CREATED:
            payments.order_close(order=order, reason="booking cancelled", actor=actor,
                                 source=source)
        else:
            refunding = payments.refund_gone_locked(
                order=order, actor=actor, source=source,
                reason=reason or _("Booking cancelled."), key=f"booking-{locked.pk}") is not None
    _release_place(locked)
    return refunding


# --------------------------------------------------------------------------- waitlist


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
        _lock_patient(family_member.pk)
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
            entry = (WaitlistEntry.objects.select_for_update(skip_locked=True)
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
            until = timezone.localtime(booking.hold_expires_at, _tz()).strftime("%H:%M") \
                if booking.hold_expires_at else ""
            notify(kind="waitlist_offer", hospital=_hospital(), recipients=[entry.account_id],
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


# --------------------------------------------------------------------------- stop-clinic


def schedule_stop(*, schedule: Schedule, reason: str, actor) -> int:
    """Stop a clinic session (停诊): every booking not yet seen is cancelled and refunded and
    every patient is told, all in one transaction (nobody is left half-cancelled or untold).
    Returns how many bookings were cancelled."""
    from portal.notifications.services import notify

    if not (reason or "").strip():
        raise BookingError(_("Give the patients a reason."), code="reason_required")
    reason = reason.strip()
    if schedule.date < timezone.localdate(timezone=_tz()):
        raise BookingError(_("This clinic day is over; it cannot be stopped."),
                           code="schedule_over")
    with transaction.atomic():
        schedule = Schedule.objects.select_for_update().select_related("doctor").get(
            pk=schedule.pk)
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
            locked = _lock_booking(pk)
            if locked is None or locked.status not in (Booking.Status.HELD,
                                                       Booking.Status.CONFIRMED):
                continue
            refunding = _cancel_locked(locked, actor=actor, source="staff", reason=reason,
                                       status=Booking.Status.STOPPED)
            cancelled += 1
            notify(kind="schedule_stopped_refund" if refunding else "schedule_stopped",
                   hospital=_hospital(), recipients=[locked.account_id],
                   context={**facts, "name": locked.family_member.name,
                            "number": locked.queue_number},
                   link=f"/bookings/{locked.pk}/")
        waiting = list(WaitlistEntry.objects.select_for_update()
                       .filter(schedule=schedule, status=WaitlistEntry.Status.WAITING)
                       .select_related("account"))
        for w in waiting:
            w.status = WaitlistEntry.Status.EXPIRED
            w.save(update_fields=["status"])
            notify(kind="waitlist_closed", hospital=_hospital(), recipients=[w.account_id],
                   context=facts)
    return cancelled


# --------------------------------------------------------------------------- visit day


def booking_check_in(*, booking: Booking, actor) -> Booking:
    with transaction.atomic():
        locked = _lock_booking(booking.pk)
        if locked is None or locked.status != Booking.Status.CONFIRMED:
            raise BookingError(_("Only confirmed bookings can be checked in."),
                               code="not_checkable")
        if locked.date != timezone.localdate(timezone=_tz()):
            raise BookingError(_("Check-in is only possible on the day of the visit."),
                               code="not_visit_day")
        locked.status, locked.checked_in_at = Booking.Status.CHECKED_IN, timezone.now()
        locked.save(update_fields=["status", "checked_in_at"])
        _event(locked, "checked_in", source="staff", actor=actor,
               before=Booking.Status.CONFIRMED)
    return locked


def bookings_mark_no_shows(*, before_day=None) -> int:
    """Confirmed bookings of days that have ended become no-shows; repeat offenders are banned."""
    h = _hospital()
    today = timezone.localdate(timezone=_tz())
    before_day = before_day or today
    marked = 0
    members: set[int] = set()
    for pk in Booking.objects.filter(status=Booking.Status.CONFIRMED, date__lt=before_day
                                     ).values_list("pk", flat=True):
        with transaction.atomic():
            b = _lock_booking(pk)
            if b is None or b.status != Booking.Status.CONFIRMED:
                continue
            b.status = Booking.Status.NO_SHOW
            b.save(update_fields=["status"])
            _event(b, "no_show", source="system", before=Booking.Status.CONFIRMED)
            marked += 1
            members.add(b.family_member_id)
    since = today - timedelta(days=h.no_show_window_days)
    for member_id in members:
        count = Booking.objects.filter(family_member_id=member_id, status=Booking.Status.NO_SHOW,
                                       date__gte=since).count()
        if count >= h.no_show_limit and not BookingBan.objects.filter(
                family_member_id=member_id, until__gte=today).exists():
            BookingBan.objects.create(
                family_member_id=member_id, until=today + timedelta(days=h.no_show_ban_days),
                reason=_("%(n)d missed appointments in %(days)d days") % {
                    "n": count, "days": h.no_show_window_days})
    return marked


# --------------------------------------------------------------------------- schedules


def schedules_generate(*, weeks: int, templates=None, start=None) -> list[Schedule]:
    """Create schedules and slices from weekly templates for the next `weeks` weeks.

    Idempotent: a schedule that exists (same doctor, date and period) is left alone, so running
    it twice creates nothing the second time. Returns what was created.
    """
    from .models import ScheduleTemplate

    tz = _tz()
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
    tz = _tz()
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


def doctor_fee_fen(doctor) -> int:
    from .models import TitleFee

    if doctor.fee_override_fen is not None:
        return doctor.fee_override_fen
    fee = TitleFee.objects.filter(title=doctor.title).values_list("fee_fen", flat=True).first()
    return fee if fee is not None else DEFAULT_TITLE_FEES.get(doctor.title, 0)


# Sane defaults (fen) seeded for every new hospital; staff change them in admin.
DEFAULT_TITLE_FEES = {"chief": 5000, "associate": 3000, "attending": 2000, "resident": 1000}



# --------------------------------------------------------------------------- reminders

_REMINDER_LOCK_NAMESPACE = 7302  # advisory-lock namespace for "this hospital's reminders"


def bookings_remind_tomorrow(*, now: datetime | None = None) -> int:
    """Remind each confirmed booking of tomorrow once: time, place and what to bring.

    Runs hourly (beat); does nothing before settings.REMINDER_HOUR hospital local time, and
    after it also picks up bookings confirmed later that evening. "Once" needs no new field:
    a booking is reminded when a "visit_reminder" outbox event names it in its context. One
    transaction under a per-hospital advisory lock, so overlapping runs cannot both send."""
    from django.conf import settings

    from portal.notifications.models import OutboxEvent
    from portal.notifications.services import notify

    h = _hospital()
    local_now = timezone.localtime(now or timezone.now(), _tz())
    if local_now.hour < settings.REMINDER_HOUR:
        return 0
    tomorrow = local_now.date() + timedelta(days=1)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                           [_REMINDER_LOCK_NAMESPACE, h.pk])
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
            start = timezone.localtime(b.slice.start, _tz())
            notify(kind="visit_reminder", hospital=h, recipients=[b.account_id],
                   context={"booking": b.pk, "doctor": b.doctor.name, "day": b.date.isoformat(),
                            "time": f"{start:%H:%M}", "name": b.family_member.name,
                            "number": b.queue_number, "hospital": h.name,
                            "place": department.location or department.name},
                   link=f"/bookings/{b.pk}/")
            sent += 1
    return sent
