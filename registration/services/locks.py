"""The locks of the registration services, by name, so that every service takes them the same
way (as Saleor keeps `checkout/lock_objects.py`). All are transaction-scoped: call them inside
`transaction.atomic()`; they are released at commit or rollback.

Lock order, everywhere:

    patient advisory lock → schedule row → waitlist entry → payment order row → booking row
    → slice row

* The patient's advisory lock (`lock_patient`) comes first: the per-patient rules (max active
  bookings, one per doctor per day, bans) are read-check-write, so one patient's bookings are
  serialised by it (two tabs booking for the same child cannot both pass the checks). A hold
  takes it in the same statement as its share lock on the schedule row
  (`lock_schedule_for_hold`).
* A schedule row is locked FOR SHARE by a hold and FOR UPDATE by stop-clinic
  (`lock_schedule_for_stop`): holds of one session proceed together, a stop waits for them
  (or they for it, and then see "stopped").
* A waitlist offer locks the schedule FOR SHARE before the entry it offers
  (`lock_schedule_for_offer`) and the patient's lock after both: the share lock never blocks
  a hold, and stop-clinic, which takes the entries after the schedule, waits for the offer.
* Then order → booking (`lock_booking`): the payment callback holds the order row when it
  calls the paid handler (`lock_booking_of_locked_order`), and expiry, cancellation, check-in,
  no-shows and stop-clinic lock the booking's order before the booking, so none deadlock.
* The slice row last: it is only ever locked by the one statement that takes a place
  (`slice_take_place`, a conditional UPDATE, never read-check-write) or gives one back
  (`slice_give_back_place`), and stays locked to the commit; a rush queues on it, so callers
  do whatever does not need it first.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import F

from payments.models import Order

from ..models import Booking, Schedule, TimeSlice

# Advisory-lock namespaces (the first key of pg_advisory_xact_lock(int, int)).
PATIENT_LOCK_NAMESPACE = 7301  # one patient's (family member's) bookings
REMINDER_LOCK_NAMESPACE = 7302  # one hospital's reminder run


def lock_patient(family_member_id: int) -> None:
    """Serialise one patient's bookings until the end of the transaction. Read the patient's
    facts in a later statement (its snapshot then includes the previous holder's commit)."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                    [PATIENT_LOCK_NAMESPACE, family_member_id])


def lock_schedule_for_hold(*, schedule_id: int, family_member_id: int) -> tuple[str, int]:
    """A hold's first locks, in one round trip: the schedule row FOR SHARE and the patient's
    advisory lock. Returns the locked row's (status, fee_fen), so that the booking charges
    what the locked row says."""
    with connection.cursor() as cur:
        cur.execute("SELECT status, fee_fen, pg_advisory_xact_lock(%s, %s) "
                    "FROM registration_schedule WHERE id = %s FOR SHARE",
                    [PATIENT_LOCK_NAMESPACE, family_member_id, schedule_id])
        status, fee_fen, _locked = cur.fetchone()
    return status, fee_fen


def lock_schedule_for_offer(schedule_id: int) -> bool:
    """The waitlist's offer: the schedule row FOR SHARE (as a hold takes it), before the
    waitlist entry it offers, which stop-clinic locks after the schedule. False if there is
    no such schedule."""
    with connection.cursor() as cur:
        cur.execute("SELECT 1 FROM registration_schedule WHERE id = %s FOR SHARE", [schedule_id])
        return cur.fetchone() is not None


def lock_schedule_for_stop(schedule_id: int) -> Schedule:
    """The schedule row FOR UPDATE (with its doctor): waits for the holds being made."""
    return Schedule.objects.select_for_update().select_related("doctor").get(pk=schedule_id)


def lock_booking(booking_id: int) -> Booking | None:
    """Lock the booking's order (if any), then the booking; None if there is no such booking.
    The booking comes back with its order and schedule."""
    order_id = Booking.objects.filter(pk=booking_id).values_list("order_id", flat=True).first()
    if order_id:
        Order.objects.select_for_update().get(pk=order_id)
    return (Booking.objects.select_for_update(of=("self",))
            .select_related("order", "schedule").filter(pk=booking_id).first())


def lock_booking_of_locked_order(order: Order) -> Booking | None:
    """The booking of an order whose row the caller holds (payments' paid handler), locked
    next in the lock order; with its slice, doctor and family member."""
    return (Booking.objects.select_for_update(of=("self",))
            .select_related("slice", "doctor", "family_member").filter(order=order).first())


def slice_take_place(slice_id: int) -> bool:
    """The one place where capacity is spent: atomic, and it locks the slice row to the
    commit. False if the slice is full."""
    with connection.cursor() as cur:
        cur.execute("UPDATE registration_timeslice SET booked = booked + 1 "
                    "WHERE id = %s AND booked < capacity", [slice_id])
        return cur.rowcount == 1


def slice_give_back_place(slice_id: int) -> None:
    """A place returns to the pool (locks the slice row to the commit)."""
    TimeSlice.objects.filter(pk=slice_id, booked__gt=0).update(booked=F("booked") - 1)


def lock_reminders(hospital_id: int) -> None:
    """One reminder run per hospital at a time (overlapping beat runs cannot both send)."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                    [REMINDER_LOCK_NAMESPACE, hospital_id])
