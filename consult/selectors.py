"""Read queries of the consult app (pages, admin, and the services that need the same read).

Read-only: nothing here writes, so a GET page that calls these changes nothing. Reading a
record's content is not here: it goes through `consult.services.records.record_access`, which
logs the read. The record queries here return lists (titles and dates) only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Avg, Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import StaffMembership
from tenants.models import hospital_tz

from .errors import ConsultError, DoctorNotAvailable
from .models import Consultation, ConsultSettings, DoctorConsultProfile, Record, TriageForm


def consult_settings() -> ConsultSettings:
    """This hospital's consult settings. The row is seeded at provisioning (`defaults.seed`);
    if staff somehow lost it, the defaults apply, in memory: a read never creates it."""
    return ConsultSettings.objects.filter(pk=1).first() or ConsultSettings(pk=1)


def consult_fee_fen(*, doctor=None) -> int:
    """The fee of a consultation with `doctor`, or with a department (doctor None)."""
    if doctor is None:
        return consult_settings().department_fee_fen
    profile = DoctorConsultProfile.objects.filter(doctor=doctor, is_enabled=True,
                                                  doctor__is_active=True).first()
    if profile is None:
        raise DoctorNotAvailable(_("This doctor does not offer online consultation."))
    return profile.fee_fen


def triage_form_for(*, department=None) -> TriageForm:
    """The department's own form, else its parent's, else the general one."""
    form = None
    if department is not None:
        form = TriageForm.objects.filter(department=department, is_active=True).first()
        if form is None and department.parent_id:
            form = TriageForm.objects.filter(department_id=department.parent_id,
                                             is_active=True).first()
    form = form or TriageForm.objects.filter(department__isnull=True, is_active=True).first()
    if form is None:
        raise ConsultError(_("Pre-screening is not set up at this hospital."),
                           code="triage_not_configured")
    return form


def doctor_for_user(user):
    """The hospital's doctor whose login this is, if the user is doctor-role staff here."""
    from registration.models import Doctor

    if user is None or not user.is_authenticated:
        return None
    if not StaffMembership.objects.filter(user=user, hospital_id=connection.tenant.pk,
                                          is_active=True, role=StaffMembership.Role.DOCTOR
                                          ).exists():
        return None
    return Doctor.objects.filter(account=user, is_active=True).select_related("department").first()


def doctor_may_answer(doctor, c: Consultation) -> bool:
    if doctor is None:
        return False
    if c.doctor_id is not None:
        return c.doctor_id == doctor.pk
    # A department consultation: any online doctor of that department may take it.
    return doctor.department_id == c.department_id and DoctorConsultProfile.objects.filter(
        doctor=doctor, is_enabled=True).exists()


def consultations_for_account(user) -> QuerySet[Consultation]:
    return (Consultation.objects.filter(account=user)
            .select_related("doctor", "department", "family_member", "order"))


def records_for_account(user) -> QuerySet[Record]:
    """Records of the account's own family members at this hospital (list fields only)."""
    return (Record.objects.filter(patient_card__family_member__account=user)
            .select_related("patient_card__family_member", "department")
            .defer("body", "conclusion"))


def online_doctors() -> QuerySet[DoctorConsultProfile]:
    return (DoctorConsultProfile.objects.filter(is_enabled=True, doctor__is_active=True)
            .select_related("doctor__department").order_by("doctor__department__sort_order",
                                                          "doctor__sort_order"))


def online_departments():
    """Departments with at least one online doctor (a department consultation goes to them)."""
    from registration.models import Department

    return Department.objects.filter(
        is_active=True, doctors__consult_profile__is_enabled=True,
        doctors__is_active=True).distinct().order_by("sort_order", "pk")


def workbench(doctor) -> dict:
    """A doctor's day: waiting consultations by deadline (theirs, and unclaimed ones of their
    department), active ones, and today's booked patients with their check-in status."""
    from registration.models import Booking

    mine_or_department = Q(doctor=doctor)
    if DoctorConsultProfile.objects.filter(doctor=doctor, is_enabled=True).exists():
        mine_or_department |= Q(doctor__isnull=True, department_id=doctor.department_id)
    base = Consultation.objects.select_related("family_member", "triage", "department")
    today = timezone.localtime(timezone.now(), hospital_tz()).date()
    return {
        "waiting": list(base.filter(mine_or_department, status=Consultation.Status.WAITING)
                        .order_by("deadline_at")),
        "active": list(base.filter(doctor=doctor, status=Consultation.Status.ACTIVE)
                       .order_by("first_response_at")),
        "bookings": list(Booking.objects.filter(doctor=doctor, date=today,
                                                status__in=Booking.ACTIVE + (Booking.Status.NO_SHOW,))
                         .select_related("family_member", "slice").order_by("slice__start",
                                                                            "queue_number")),
        "today": today,
    }


# The quality table's periods (days back from now; None = all time), the default first.
QUALITY_PERIODS: dict[str, int | None] = {"30": 30, "7": 7, "90": 90, "all": None}
QUALITY_PERIOD_DEFAULT = "30"


def quality_since(period: str | None) -> tuple[str, datetime | None]:
    """The period code (an unknown one falls back to the default) and its start."""
    if period not in QUALITY_PERIODS:
        period = QUALITY_PERIOD_DEFAULT
    days = QUALITY_PERIODS[period]
    return period, (timezone.now() - timedelta(days=days) if days is not None else None)


def _percentiles(group_field: str, since: datetime | None) -> dict:
    """p50 / p90 first-response minutes per group, in one SQL query."""
    table = Consultation._meta.db_table
    column = Consultation._meta.get_field(group_field).column
    # Server-side binding: the parameter's type is given, not guessed from the Python value.
    period = "AND paid_at >= %s::timestamptz " if since is not None else ""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT {column}, "  # noqa: S608 - column names come from the model, not input
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM first_response_at"
            " - paid_at) / 60), "
            "percentile_cont(0.9) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM first_response_at"
            " - paid_at) / 60) "
            f"FROM {table} WHERE first_response_at IS NOT NULL AND paid_at IS NOT NULL "
            f"AND {column} IS NOT NULL {period}GROUP BY {column}",
            [since] if since is not None else [])
        return {row[0]: (row[1], row[2]) for row in cur.fetchall()}


def quality(group_by: str, *, since: datetime | None = None) -> list[dict]:
    """Per doctor (`doctor`) or department (`department`): consultations that were paid (at or
    after `since`, when given), first-response p50 / p90 in minutes, timeout rate, average
    rating and number of ratings. Three queries, whatever the data.

    A consultation belongs to the period in which it was paid: payment starts the response
    clock, and unpaid ones are not counted at all."""
    from registration.models import Department, Doctor

    timed_out = [Consultation.Status.TIMED_OUT, Consultation.Status.REFUNDED]
    paid = Consultation.objects.filter(paid_at__isnull=False)
    if since is not None:
        paid = paid.filter(paid_at__gte=since)
    rows = (paid.exclude(**{f"{group_by}__isnull": True})
            .values(group_by)
            .annotate(n=Count("pk"),
                      timeouts=Count("pk", filter=Q(status__in=timed_out)),
                      avg_rating=Avg("rating"), n_ratings=Count("rating"))
            .order_by(group_by))
    pct = _percentiles(group_by, since)
    model = Doctor if group_by == "doctor" else Department
    names = {o.pk: o for o in model.objects.filter(pk__in=[r[group_by] for r in rows])}
    out = []
    for r in rows:
        p50, p90 = pct.get(r[group_by], (None, None))
        out.append({"who": names.get(r[group_by]), "n": r["n"], "p50": p50, "p90": p90,
                    "timeout_rate": r["timeouts"] / r["n"] if r["n"] else 0,
                    "rating": r["avg_rating"], "ratings": r["n_ratings"]})
    return out
