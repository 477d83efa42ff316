"""The patient path on a hospital's site (挂号): departments → doctors → a day's time slices →
confirm for a family member → pay → the booking with its queue number; My bookings, cancel,
waitlist (候补).

Thin, as everywhere: parse, call a selector or a service of `registration.services`, render.
Every rule lives in the services (`services.rules`); a refused booking (a `BookingError`) is
shown on the page it came from with HTTP 409 and changes nothing; input that names no slice,
member or date we know is a 400. Patients only ever reach their own bookings, members and
waitlist entries (404).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from payments.models import Order, Refund
from portal.accounts.models import FamilyMember
from portal.money import fen_to_yuan

from .errors import BookingError
from .models import Booking, Department, Doctor, Schedule, TimeSlice, WaitlistEntry
from .selectors import (
    DayAvailability,
    bookings_for_account,
    department_tree,
    doctor_day,
    doctors_with_availability,
)
from .services import booking as booking_services
from .services import waitlist as waitlist_services
from .services.rules import (
    SliceState,
    arrival_window,
    cancel_deadline,
    cancel_open_online,
    check_bookable,
    doctor_fee_fen,
    release_moment,
    slice_state,
    title_fees,
)

CONFLICT = 409  # a rule refused the request: the page says which, nothing changed
BAD_REQUEST = 400


# --------------------------------------------------------------------------- helpers


def _problem(request: HttpRequest, message: str, *, status: int) -> HttpResponse:
    """A request we cannot act on (missing or unknown input): the reason and a way back."""
    return render(request, "registration/problem.html", {"message": message}, status=status)


def _int_or_none(raw) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


def _own_member(request: HttpRequest, raw) -> FamilyMember | None:
    pk = _int_or_none(raw)
    if pk is None:
        return None
    try:
        return FamilyMember.objects.get(pk=pk, account_id=request.user.pk)
    except FamilyMember.DoesNotExist:
        return None


def _own_booking(request: HttpRequest, pk: int) -> Booking:
    return get_object_or_404(bookings_for_account(request.user), pk=pk)


# At least a week is shown, days not yet released included (with when they open).
MIN_AVAILABILITY_DAYS = 7


def _availability_days(request: HttpRequest) -> int:
    """Today and every day of the booking window. The window's last day is the one released
    this morning (e.g. 7 days ahead at 08:00), the day patients come for: it must be listed."""
    return max(MIN_AVAILABILITY_DAYS, request.tenant.booking_window_days + 1)


def _upcoming_days(request: HttpRequest, today: date) -> list[date]:
    return [today + timedelta(days=i) for i in range(_availability_days(request))]


# --------------------------------------------------------------------------- catalogue


@require_GET
def hospital_home(request: HttpRequest) -> HttpResponse:
    """The hospital site's front page: who the hospital is and its departments."""
    return render(request, "registration/hospital_home.html",
                  {"hospital": request.tenant, "departments": department_tree()})


def department_list(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/department_list.html",
                  {"departments": department_tree()})


@dataclass(frozen=True)
class DayCell:
    """One day of one doctor on the availability page."""

    day: date
    # "none" (no clinic left) | "stopped" (staff stopped it, 停诊) | "not_open" | "full" | "open"
    state: str
    remaining: int = 0
    opens_at: datetime | None = None


@dataclass
class DoctorRow:
    doctor: Doctor
    # The fees of the sessions on offer in the days shown (equal when they all cost the same);
    # the doctor's default fee when there are none.
    fee_min_fen: int
    fee_max_fen: int
    days: list[DayCell] = field(default_factory=list)


def _day_cell(day: date, avail: DayAvailability, opens_at: datetime, now: datetime) -> DayCell:
    if avail.remaining is None:
        # Nothing open left that day: stopped by staff is not the same as no clinic at all.
        return DayCell(day, "stopped" if avail.stopped else "none")
    if now < opens_at:
        return DayCell(day, "not_open", opens_at=opens_at)
    if avail.remaining <= 0:
        return DayCell(day, "full")
    return DayCell(day, "open", remaining=avail.remaining)


@require_GET
def department_detail(request: HttpRequest, code: str) -> HttpResponse:
    """The department's doctors with the next days' remaining places.

    A constant number of queries whatever the number of doctors (tested with 5 and 50): the
    department, its sub-departments, the title fees, and the selector's doctors and counts.
    """
    department = get_object_or_404(Department.objects.select_related("parent"), code=code,
                                   is_active=True)
    children = list(department.children.filter(is_active=True).order_by("sort_order", "pk"))
    dates, rows = doctors_with_availability(department=department,
                                            days=_availability_days(request),
                                            today=timezone.localdate())
    now = timezone.now()
    opens = {day: release_moment(day) for day in dates}
    fees = title_fees()  # one query, not one per doctor
    doctors = []
    for row in rows:
        default = doctor_fee_fen(row.doctor, fees=fees)
        doctors.append(DoctorRow(
            doctor=row.doctor,
            fee_min_fen=default if row.fee_min_fen is None else row.fee_min_fen,
            fee_max_fen=default if row.fee_max_fen is None else row.fee_max_fen,
            days=[_day_cell(day, avail, opens[day], now)
                  for day, avail in zip(dates, row.days, strict=True)]))
    return render(request, "registration/department_detail.html",
                  {"department": department, "children": children, "dates": dates,
                   "doctors": doctors})


@dataclass(frozen=True)
class SliceRow:
    slice: TimeSlice
    state: str  # "open" | "full" | "past" | "not_open" | "stopped"


# The page's names (data-state, templates) of rules.SliceState.
_PAGE_STATE = {SliceState.BOOKABLE: "open", SliceState.SOLD_OUT: "full",
               SliceState.PAST: "past", SliceState.NOT_RELEASED: "not_open",
               SliceState.STOPPED: "stopped"}


@dataclass
class SessionRow:
    schedule: Schedule
    slices: list[SliceRow]
    remaining: int
    # Full, open and released, with slices still ahead: patients may join the waitlist.
    waitlist: bool


def _session_rows(schedules: list[Schedule], *, opens_at: datetime, now: datetime) -> list:
    sessions = []
    for schedule in schedules:
        rows, ahead = [], []
        for s in schedule.slices.all():
            state = _PAGE_STATE[slice_state(
                schedule_status=schedule.status, day=schedule.date, start=s.start,
                booked=s.booked, capacity=s.capacity, now=now, opens_at=opens_at)]
            if state in ("open", "full"):
                ahead.append(s)
            rows.append(SliceRow(s, state))
        remaining = sum(s.remaining for s in ahead)
        sessions.append(SessionRow(schedule, rows, remaining,
                                   waitlist=bool(ahead) and remaining == 0))
    return sessions


def _doctor_day_page(request: HttpRequest, doctor: Doctor, day: date, *, error: str = "",
                     status: int = 200) -> HttpResponse:
    now = timezone.now()
    opens_at = release_moment(day)
    sessions = _session_rows(doctor_day(doctor=doctor, day=day), opens_at=opens_at, now=now)
    members = (list(request.user.family_members.all())
               if request.user.is_authenticated else [])
    return render(request, "registration/doctor_detail.html", {
        "doctor": doctor, "day": day, "days": _upcoming_days(request, timezone.localdate()),
        "sessions": sessions, "opens_at": opens_at,
        "not_open": now < opens_at,
        "waitlist_anchor": next((s.schedule.pk for s in sessions if s.waitlist), None),
        "members": members, "error": error,
    }, status=status)


@require_GET
def doctor_detail(request: HttpRequest, pk: int) -> HttpResponse:
    doctor = get_object_or_404(Doctor.objects.select_related("department"), pk=pk,
                               is_active=True)
    raw = request.GET.get("date")
    if raw:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            return _problem(request, _("That is not a date (expected YYYY-MM-DD)."),
                            status=BAD_REQUEST)
    else:
        day = timezone.localdate()
    return _doctor_day_page(request, doctor, day)


# --------------------------------------------------------------------------- booking


def _confirm_page(request: HttpRequest, slice_: TimeSlice, *, error: str = "",
                  chosen: int | None = None, status: int = 200) -> HttpResponse:
    members = list(request.user.family_members.all())
    notice = ""
    if not error:
        # Say so before the patient chooses, not only after they press confirm.
        try:
            check_bookable(slice_)
        except BookingError as exc:
            notice = exc.message
        else:
            if slice_.remaining <= 0:
                notice = _("This time is fully booked.")
    if chosen is None and len(members) == 1:
        chosen = members[0].pk
    schedule = slice_.schedule
    return render(request, "registration/booking_new.html", {
        "slice": slice_, "schedule": schedule, "doctor": schedule.doctor,
        "department": schedule.doctor.department, "members": members, "chosen": chosen,
        "error": error, "notice": notice,
        "arrive_from": arrival_window(slice_.start)[0],
    }, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def booking_new(request: HttpRequest) -> HttpResponse:
    """GET ?slice=: confirm for whom; POST slice, family_member: take the place (booking_hold)."""
    data = request.POST if request.method == "POST" else request.GET
    slice_id = _int_or_none(data.get("slice"))
    slice_ = None
    if slice_id is not None:
        # A POST needs the schedule and doctor (booking_hold takes this slice); the department
        # is only shown on a page, which a successful POST does not render.
        related = ("schedule__doctor__department" if request.method == "GET"
                   else "schedule__doctor")
        try:
            slice_ = TimeSlice.objects.select_related(related).get(pk=slice_id)
        except TimeSlice.DoesNotExist:
            pass
    if slice_ is None:
        return _problem(request, _("Choose a time to book from a doctor's page."),
                        status=BAD_REQUEST)
    if request.method == "GET":
        return _confirm_page(request, slice_)
    member = _own_member(request, data.get("family_member"))
    if member is None:
        return _confirm_page(request, slice_, status=BAD_REQUEST,
                             error=_("Choose one of your family members for this appointment."))
    try:
        booking = booking_services.booking_hold(
            slice_id=slice_.pk, family_member=member, account=request.user, source="web",
            time_slice=slice_)
    except BookingError as exc:
        if slice_.booked < slice_.capacity:  # refused after this read: show the count now
            slice_.refresh_from_db(fields=["booked"])
        return _confirm_page(request, slice_, error=exc.message, chosen=member.pk,
                             status=CONFLICT)
    if booking.status == Booking.Status.HELD and booking.order_id:
        return redirect("payments:order", booking.order.out_trade_no)
    messages.success(request, _("Booked. Your queue number is %(n)d.") % {
        "n": booking.queue_number})
    return redirect("registration:booking", booking.pk)


@login_required
@require_GET
def booking_list(request: HttpRequest) -> HttpResponse:
    """My bookings: upcoming first (soonest first), then past and cancelled (newest first)."""
    today = timezone.localdate()
    mine = bookings_for_account(request.user)
    upcoming = list(mine.filter(status__in=Booking.ACTIVE, date__gte=today)
                    .order_by("date", "slice__start", "pk"))
    past = Paginator(mine.exclude(status__in=Booking.ACTIVE, date__gte=today), 20).get_page(
        request.GET.get("page"))
    waitlist = list(WaitlistEntry.objects.filter(
        account=request.user, schedule__date__gte=today,
        status__in=[WaitlistEntry.Status.WAITING, WaitlistEntry.Status.OFFERED])
        .select_related("schedule__doctor__department", "family_member", "booking")
        .order_by("schedule__date", "created_at"))
    return render(request, "registration/booking_list.html",
                  {"upcoming": upcoming, "past": past, "waitlist": waitlist})


def _booking_context(booking: Booking) -> dict:
    now = timezone.now()
    deadline = cancel_deadline(booking.date)
    arrive_from, arrive_until = arrival_window(booking.slice.start)
    cancellable = booking.status in (Booking.Status.HELD, Booking.Status.CONFIRMED)
    refunds = list(booking.order.refunds.order_by("created_at")) if booking.order_id else []
    return {
        "booking": booking, "doctor": booking.doctor, "department": booking.doctor.department,
        "member": booking.family_member, "order": booking.order, "refunds": refunds,
        "arrive_from": arrive_from, "arrive_until": arrive_until,
        "cancel_deadline": deadline, "cancellable": cancellable,
        "cancel_open": cancel_open_online(booking, now=now),
        "pay_open": booking.status == Booking.Status.HELD and booking.order_id is not None
        and booking.order.status == Order.Status.CREATED,
    }


@login_required
@require_GET
def booking_detail(request: HttpRequest, pk: int) -> HttpResponse:
    booking = _own_booking(request, pk)
    return render(request, "registration/booking_detail.html", _booking_context(booking))


@login_required
@require_http_methods(["GET", "POST"])
def booking_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: are you sure? POST: cancel (the service enforces the cut-off and refunds)."""
    booking = _own_booking(request, pk)
    if request.method == "GET":
        return render(request, "registration/booking_cancel.html", _booking_context(booking))
    try:
        booking_services.booking_cancel(booking=booking, actor=request.user, source="patient")
    except BookingError as exc:
        booking = _own_booking(request, pk)
        return render(request, "registration/booking_cancel.html",
                      {**_booking_context(booking), "error": exc.message}, status=CONFLICT)
    refund = (Refund.objects.filter(order_id=booking.order_id).order_by("-created_at").first()
              if booking.order_id else None)
    if refund is not None:
        messages.success(request, _("The booking is cancelled. %(amount)s will be refunded to "
                                    "the account you paid from.") % {
            "amount": f"¥{fen_to_yuan(refund.amount_fen)}"})
    else:
        messages.success(request, _("The booking is cancelled."))
    return redirect("registration:booking", pk)


# --------------------------------------------------------------------------- waitlist


@login_required
@require_POST
def waitlist_join_view(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(Schedule.objects.select_related("doctor__department"), pk=pk)
    member = _own_member(request, request.POST.get("family_member"))
    if member is None:
        return _doctor_day_page(request, schedule.doctor, schedule.date, status=BAD_REQUEST,
                                error=_("Choose one of your family members for the waitlist."))
    try:
        waitlist_services.waitlist_join(schedule=schedule, family_member=member,
                                        account=request.user)
    except BookingError as exc:
        return _doctor_day_page(request, schedule.doctor, schedule.date, error=exc.message,
                                status=CONFLICT)
    messages.success(request, _("%(name)s is on the waitlist. If a place comes free it is held "
                                "for you and we send you a message.") % {"name": member.name})
    return redirect(reverse("registration:bookings") + "#waitlist")


@login_required
@require_POST
def waitlist_leave_view(request: HttpRequest, pk: int) -> HttpResponse:
    entry = get_object_or_404(WaitlistEntry, pk=pk, account=request.user)
    waitlist_services.waitlist_leave(entry=entry, account=request.user)
    messages.success(request, _("You have left the waitlist."))
    return redirect(reverse("registration:bookings") + "#waitlist")
