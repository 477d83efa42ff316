"""The booking rules, each in one place: when a day's places open, the cancellation cut-off,
a slice's state, a doctor's fee, the arrival window and the per-patient checks.

Pages, the partner API, FHIR, admin and the booking services all ask these functions; none of
them restates a rule. Everything here reads the hospital whose schema is active (its rules
are fields of `tenants.Hospital`) and reasons in that hospital's time zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from django.db import connection
from django.db.models import (
    Case,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import Combinable
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from tenants.models import hospital_tz

from ..errors import (
    BookingError,
    BookingLimitReached,
    DuplicateBooking,
    NotYetReleased,
    PatientBanned,
    ScheduleStopped,
    SlotInThePast,
)
from ..models import Booking, PatientCard, Schedule, TimeSlice, TitleFee

# --------------------------------------------------------------------------- release window


def release_moment(day: date) -> datetime:
    """When a day's slots open: `booking_window_days` before, at the daily release time."""
    h = connection.tenant
    opens_on = day - timedelta(days=h.booking_window_days)
    return datetime.combine(opens_on, h.release_time, tzinfo=hospital_tz())


def latest_open_day(*, now: datetime | None = None) -> date:
    """The last clinic day whose places are released by `now`: `release_moment` read the
    other way round (day <= latest_open_day() exactly when release_moment(day) <= now)."""
    h = connection.tenant
    local = timezone.localtime(now or timezone.now(), hospital_tz())
    last = local.date() + timedelta(days=h.booking_window_days)
    return last if local.time() >= h.release_time else last - timedelta(days=1)


# --------------------------------------------------------------------------- cancellation


def cancel_deadline(day: date) -> datetime:
    """Patients cancel online until the cut-off hour of the day before."""
    h = connection.tenant
    return datetime.combine(day - timedelta(days=1), time(h.cancel_cutoff_hour),
                            tzinfo=hospital_tz())


def cancel_open_online(booking: Booking, *, now: datetime | None = None) -> bool:
    """Can the patient still cancel this booking themselves? Unpaid holds always; others
    until the cut-off of the day before."""
    if booking.status == Booking.Status.HELD:
        return True
    return booking.status == Booking.Status.CONFIRMED and (now or timezone.now()) < \
        cancel_deadline(booking.date)


# --------------------------------------------------------------------------- a slice's state


class SliceState(StrEnum):
    """What a patient can do with a slice now, the first that applies in this order."""

    STOPPED = "stopped"  # staff stopped the clinic (停诊)
    PAST = "past"  # its start has passed
    NOT_RELEASED = "not_released"  # its day's places open at release_moment(day)
    SOLD_OUT = "sold_out"  # released, ahead, and every place taken
    BOOKABLE = "bookable"


def slice_state(*, schedule_status: str, day: date, start: datetime, booked: int,
                capacity: int, now: datetime | None = None,
                opens_at: datetime | None = None) -> SliceState:
    """The one rule for a slice's state, used by booking (`check_bookable`), the pages, the
    partner API and FHIR. Takes the slice's fields so that a list read as `.values()` rows
    costs no model instances; `opens_at`: `release_moment(day)` if the caller has it already.

    The checks run in the order `check_bookable` raises them, so that a slice's state and
    the error a booking of it gets agree; "sold out" comes last because the place itself is
    taken by a conditional UPDATE, which decides under the row lock."""
    now = now or timezone.now()
    if schedule_status != Schedule.Status.OPEN:
        return SliceState.STOPPED
    if start <= now:
        return SliceState.PAST
    if now < (opens_at or release_moment(day)):
        return SliceState.NOT_RELEASED
    if booked >= capacity:
        return SliceState.SOLD_OUT
    return SliceState.BOOKABLE


def time_slice_state(slice_: TimeSlice, *, now: datetime | None = None,
                     opens_at: datetime | None = None) -> SliceState:
    """`slice_state` of a TimeSlice loaded with its schedule."""
    schedule = slice_.schedule
    return slice_state(schedule_status=schedule.status, day=schedule.date, start=slice_.start,
                       booked=slice_.booked, capacity=slice_.capacity, now=now,
                       opens_at=opens_at)


def bookable_slices_q(*, now: datetime | None = None) -> Q:
    """`slice_state(...) == BOOKABLE` as a filter on TimeSlice, for lists that filter in SQL."""
    now = now or timezone.now()
    return Q(schedule__status=Schedule.Status.OPEN, booked__lt=F("capacity"), start__gt=now,
             schedule__date__lte=latest_open_day(now=now))


def check_bookable(slice_: TimeSlice, *, now: datetime | None = None) -> None:
    """Schedule and time rules for a slice, each with a clear message. (Whether a place is
    left is decided when it is taken.)"""
    now = now or timezone.now()
    day = slice_.schedule.date
    # The booking window is this rule: a day opens `booking_window_days` before, at the
    # release time, so a day beyond the window is simply "not yet released".
    opens = release_moment(day)
    state = time_slice_state(slice_, now=now, opens_at=opens)
    if state == SliceState.STOPPED:
        raise ScheduleStopped(_("The doctor has stopped this clinic; please choose another time."))
    if state == SliceState.PAST:
        raise SlotInThePast(_("This time has already passed."))
    if state == SliceState.NOT_RELEASED:
        raise NotYetReleased(
            _("Places for %(day)s open at %(when)s.") % {
                "day": day.isoformat(),
                "when": timezone.localtime(opens, hospital_tz()).strftime("%Y-%m-%d %H:%M")})


# --------------------------------------------------------------------------- fees

# Sane defaults (fen) seeded for every new hospital; staff change them in admin.
DEFAULT_TITLE_FEES = {"chief": 5000, "associate": 3000, "attending": 2000, "resident": 1000}


def title_fees() -> dict[str, int]:
    """The fee of each title (the hospital's TitleFee rows over the defaults), in one query,
    for lists that show many doctors' fees."""
    fees = dict(DEFAULT_TITLE_FEES)
    fees.update(TitleFee.objects.values_list("title", "fee_fen"))
    return fees


def doctor_fee_fen(doctor, *, fees: Mapping[str, int] | None = None) -> int:
    """The fee a new schedule of the doctor gets: the doctor's override, else the fee of their
    title, else the built-in default. `fees`: `title_fees()`, if the caller has it."""
    if doctor.fee_override_fen is not None:
        return doctor.fee_override_fen
    if fees is not None:
        return fees.get(doctor.title, 0)
    fee = TitleFee.objects.filter(title=doctor.title).values_list("fee_fen", flat=True).first()
    return fee if fee is not None else DEFAULT_TITLE_FEES.get(doctor.title, 0)


def doctor_fee_fen_expression() -> Combinable:
    """`doctor_fee_fen` as SQL, to annotate a Doctor queryset (admin's list: one query for
    the whole page)."""
    title_fee = TitleFee.objects.filter(title=OuterRef("title")).values("fee_fen")[:1]
    default = Case(*[When(title=t, then=Value(fee)) for t, fee in DEFAULT_TITLE_FEES.items()],
                   default=Value(0), output_field=IntegerField())
    return Coalesce(F("fee_override_fen"), Subquery(title_fee), default,
                    output_field=IntegerField())


# --------------------------------------------------------------------------- visit day

# Patients are asked to arrive this long before their slice starts (to register at the desk).
ARRIVAL_WINDOW = timedelta(minutes=30)


def arrival_window(start: datetime) -> tuple[datetime, datetime]:
    """From when until when the patient of a slice starting at `start` should arrive."""
    return start - ARRIVAL_WINDOW, start


# --------------------------------------------------------------------------- patient rules


def check_identity(family_member) -> None:
    """Hospitals that require it book only patients with a resident ID number."""
    if connection.tenant.identity_required and not family_member.id_number:
        raise BookingError(_("A resident ID number is needed to book."),
                           code="identity_required")


@dataclass(frozen=True)
class PatientFacts:
    """What the per-patient rules read, and the patient's card, in one round trip."""

    ban_until: date | None
    ban_reason: str | None
    active: int  # active bookings from today on
    same_doctor_day: int  # ... of which with this doctor on that day
    card: PatientCard | None  # this hospital's card, if the member has one


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


def patient_facts(*, family_member, doctor_id: int, day: date) -> PatientFacts:
    """Read with the patient locked (`locks.lock_patient`), in a statement of its own after
    the lock, so that it sees what the previous holder of the lock committed."""
    with connection.cursor() as cur:
        cur.execute(_PATIENT_FACTS_SQL, {
            "member": family_member.pk, "today": timezone.localdate(timezone=hospital_tz()),
            "doctor": doctor_id, "day": day, "active": list(Booking.ACTIVE)})
        until, reason, active, same, card_id, card_number, card_created = cur.fetchone()
    card = None
    if card_id is not None:
        card = PatientCard(pk=card_id, family_member=family_member,
                           medical_record_number=card_number, created_at=card_created)
        card._state.adding, card._state.db = False, connection.alias
    return PatientFacts(until, reason, active, same, card)


def check_patient_facts(family_member, facts: PatientFacts) -> None:
    """Ban, max active bookings, one booking per doctor per day, on facts already read."""
    h = connection.tenant
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


def check_patient_rules(*, family_member, doctor_id: int, day: date) -> None:
    """Ban, max active bookings, one booking per doctor per day. Call with the patient locked."""
    check_patient_facts(family_member, patient_facts(
        family_member=family_member, doctor_id=doctor_id, day=day))
