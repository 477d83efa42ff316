"""Read queries of the registration app (pages and, later, the API)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .models import Department


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


def doctors_with_availability(*, department, days: int = 7, today=None):
    """Active doctors of a department with remaining places per day for the next `days` days.

    Three queries whatever the number of doctors: doctors, schedules' remaining counts, and
    nothing per doctor. Returns (dates, [(doctor, [remaining or None per date])]).
    """
    from datetime import timedelta

    from django.db.models import F, Sum
    from django.utils import timezone

    from .models import Doctor, Schedule, TimeSlice

    today = today or timezone.localdate()
    dates = [today + timedelta(days=i) for i in range(days)]
    doctors = list(Doctor.objects.filter(department=department, is_active=True)
                   .order_by("sort_order", "pk"))
    remaining: dict[tuple[int, object], int] = {}
    rows = (TimeSlice.objects.filter(schedule__doctor__in=[d.pk for d in doctors],
                                     schedule__date__range=(dates[0], dates[-1]),
                                     schedule__status=Schedule.Status.OPEN,
                                     start__gt=timezone.now())
            .values("schedule__doctor_id", "schedule__date")
            .annotate(left=Sum(F("capacity") - F("booked"))))
    for row in rows:
        remaining[(row["schedule__doctor_id"], row["schedule__date"])] = row["left"]
    return dates, [(d, [remaining.get((d.pk, day)) for day in dates]) for d in doctors]


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
