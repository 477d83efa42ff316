"""Booking services (挂号): holds, confirmation by payment, cancellation, expiry, check-in and
no-shows. Run inside the hospital's schema.

Invariants and how they are kept:

* A slice is never given to more patients than its capacity: a place is taken with one
  conditional UPDATE (`locks.slice_take_place`), never read-check-write, and a CHECK
  constraint backs it up.
* The per-patient rules (`rules.check_patient_facts`) are read-check-write, so each
  patient's bookings are serialised by the patient's advisory lock.
* Locks are taken in the order `locks` states (patient → schedule → order → booking →
  slice), through its helpers, so the payment callback, expiry, cancellation and stop-clinic
  never deadlock.
* A hold and its payment order expire together in one transaction; a payment that arrives
  after that finds the order closed and is refunded by the payments app.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from payments import services as payments
from payments.models import Order
from portal.db.inserts import IdText, InsertChain
from tenants.models import hospital_tz

from ..errors import BookingError, CancelTooLate, NotCancellable, NotYourPatient, ScheduleStopped, SlotSoldOut
from ..models import Booking, BookingBan, BookingEvent, Schedule, TimeSlice
from .locks import (
    lock_booking,
    lock_booking_of_locked_order,
    lock_schedule_for_hold,
    slice_give_back_place,
    slice_take_place,
)
from .patients import patient_card_create
from .rules import (
    arrival_window,
    cancel_deadline,
    cancel_open_online,
    check_bookable,
    check_identity,
    check_patient_facts,
    patient_facts,
)

log = logging.getLogger(__name__)


def _hospital():
    return connection.tenant


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
    check_identity(family_member)
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
        # round trip takes the patient's advisory lock (see locks.lock_patient); the rules
        # are then read by a later statement, whose snapshot is taken after the lock was granted.
        status, fee_fen = lock_schedule_for_hold(schedule_id=schedule.pk,
                                                 family_member_id=family_member.pk)
        if status != Schedule.Status.OPEN:
            raise ScheduleStopped(
                _("The doctor has stopped this clinic; please choose another time."))
        facts = patient_facts(family_member=family_member, doctor_id=schedule.doctor_id,
                              day=schedule.date)
        check_patient_facts(family_member, facts)
        # Before the place is taken: the slice row stays locked from the UPDATE to the commit,
        # so whatever does not need that lock is done first (a rush queues on it).
        card = facts.card or patient_card_create(family_member=family_member)
        # The one place where capacity is spent: atomic, and it locks the slice row.
        if not slice_take_place(slice_.pk):
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
                booking.hold_expires_at, hospital_tz()).strftime("%H:%M"))
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

    from ..tasks import bookings_expire_due_at_task

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
    booking = lock_booking_of_locked_order(order)
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

    arrive_from, start = (timezone.localtime(t, hospital_tz())
                          for t in arrival_window(booking.slice.start))
    notify(kind="booking_confirmed", hospital=_hospital(), recipients=[booking.account_id],
           context={"doctor": booking.doctor.name, "day": booking.date.isoformat(),
                    "name": booking.family_member.name, "number": booking.queue_number,
                    "arrive": f"{arrive_from:%H:%M}–{start:%H:%M}"},
           link=_booking_link(booking, rows), rows=rows)


# --------------------------------------------------------------------------- release


def _release_place(booking: Booking) -> None:
    """The place returns to the pool, and is offered to the waitlist once this commits."""
    # waitlist books through booking_hold, so it imports this module: imported here.
    from .waitlist import waitlist_offer_next

    slice_give_back_place(booking.slice_id)
    schedule_id = booking.schedule_id
    transaction.on_commit(lambda: waitlist_offer_next(schedule_id=schedule_id))


def booking_expire(*, booking_id: int) -> bool:
    """Release an unpaid hold whose time is up. Safe to call any number of times."""
    with transaction.atomic():
        booking = lock_booking(booking_id)
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
        locked = lock_booking(booking.pk)
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
                        "when": timezone.localtime(cancel_deadline(locked.date), hospital_tz())
                        .strftime("%Y-%m-%d %H:%M")})
        booking_cancel_locked(locked=locked, actor=actor, source=source, reason=reason,
                              status=status)
    return locked


def booking_cancel_locked(*, locked: Booking, actor, source: str, reason: str,
                          status: str) -> bool:
    """Cancel an active booking whose order and row this transaction holds: call it with the
    booking returned by `locks.lock_booking`, after checking its status under that lock
    (`booking_cancel` for patients and staff, `schedules.schedule_stop` for a whole session).
    Returns True if money paid is being refunded (the refund row is written here; it is
    submitted after commit)."""
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



# --------------------------------------------------------------------------- visit day


def booking_check_in(*, booking: Booking, actor) -> Booking:
    with transaction.atomic():
        locked = lock_booking(booking.pk)
        if locked is None or locked.status != Booking.Status.CONFIRMED:
            raise BookingError(_("Only confirmed bookings can be checked in."),
                               code="not_checkable")
        if locked.date != timezone.localdate(timezone=hospital_tz()):
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
    today = timezone.localdate(timezone=hospital_tz())
    before_day = before_day or today
    marked = 0
    members: set[int] = set()
    for pk in Booking.objects.filter(status=Booking.Status.CONFIRMED, date__lt=before_day
                                     ).values_list("pk", flat=True):
        with transaction.atomic():
            b = lock_booking(pk)
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


