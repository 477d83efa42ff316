"""Read queries of the registration app (pages and the API)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .models import Department, Doctor


@dataclass
class DepartmentNode:
    department: Department
    children: list[Department] = field(default_factory=list)


def department_tree() -> list[DepartmentNode]:
    """Active departments as top-level nodes with their children, in one query."""
    nodes: dict[int, DepartmentNode] = {}
    roots: list[DepartmentNode] = []
    departments = list(Department.objects.filter(is_active=True).order_by("sort_order", "pk"))
    for d in departments:
        if d.parent_id is None:
            nodes[d.pk] = DepartmentNode(d)
            roots.append(nodes[d.pk])
    for d in departments:
        if d.parent_id is not None and d.parent_id in nodes:
            nodes[d.parent_id].children.append(d)
    return roots


@dataclass(frozen=True)
class DayAvailability:
    """One doctor's day: places left in open sessions with slices still ahead (None when there
    is no such session), and whether staff stopped a session that day (停诊)."""

    remaining: int | None
    stopped: bool = False


@dataclass
class DoctorAvailability:
    doctor: Doctor
    days: list[DayAvailability]
    # Lowest and highest fee of the open sessions with slices ahead in these days (staff may
    # set a fee per session); None when the doctor has none.
    fee_min_fen: int | None = None
    fee_max_fen: int | None = None


def doctors_with_availability(*, department, days: int = 7, today=None):
    """Active doctors of a department with their next `days` days, from `today`.

    Two queries whatever the number of doctors: the doctors, then one aggregate over their
    sessions grouped by doctor and day (places left, stopped sessions and fees, each with its
    own FILTER). Returns (dates, [DoctorAvailability]).
    """
    from datetime import timedelta

    from django.db.models import Count, F, Max, Min, Q, Sum
    from django.utils import timezone

    from .models import Schedule

    today = today or timezone.localdate()
    dates = [today + timedelta(days=i) for i in range(days)]
    doctors = list(Doctor.objects.filter(department=department, is_active=True)
                   .order_by("sort_order", "pk"))
    # Slices of open sessions not yet begun: what a patient can still book (or wait for).
    ahead = Q(status=Schedule.Status.OPEN, slices__start__gt=timezone.now())
    rows = (Schedule.objects.filter(doctor__in=[d.pk for d in doctors],
                                    date__range=(dates[0], dates[-1]))
            .values("doctor_id", "date")
            .annotate(left=Sum(F("slices__capacity") - F("slices__booked"), filter=ahead),
                      stopped=Count("pk", filter=~Q(status=Schedule.Status.OPEN)),
                      fee_min=Min("fee_fen", filter=ahead),
                      fee_max=Max("fee_fen", filter=ahead))
            .order_by())
    by_day = {(r["doctor_id"], r["date"]): r for r in rows}
    result = []
    for d in doctors:
        mine = [by_day[(d.pk, day)] for day in dates if (d.pk, day) in by_day]
        mins = [r["fee_min"] for r in mine if r["fee_min"] is not None]
        maxes = [r["fee_max"] for r in mine if r["fee_max"] is not None]
        cells = [DayAvailability(remaining=by_day[(d.pk, day)]["left"],
                                 stopped=by_day[(d.pk, day)]["stopped"] > 0)
                 if (d.pk, day) in by_day else DayAvailability(remaining=None)
                 for day in dates]
        result.append(DoctorAvailability(d, cells, fee_min_fen=min(mins, default=None),
                                         fee_max_fen=max(maxes, default=None)))
    return dates, result


def doctor_day(*, doctor, day):
    """A doctor's sessions on a day with their slices (two queries)."""
    from django.db.models import Prefetch

    from .models import Schedule, TimeSlice

    return list(Schedule.objects.filter(doctor=doctor, date=day)
                .prefetch_related(Prefetch("slices", queryset=TimeSlice.objects.order_by("start")))
                .order_by("period"))


def bookings_for_account(account):
    from .models import Booking

    return (Booking.objects.filter(account=account)
            .select_related("doctor__department", "slice", "family_member", "order", "schedule")
            .order_by("-date", "-created_at"))
