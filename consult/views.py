"""Consultations, the doctor workbench and records on a hospital's site.

Thin: parse, call a selector or a service of `consult.services`, render. A refused request (a
`ConsultError`) is shown on its page with 409 and changes nothing; a GET writes nothing but
the log row of a record read. Patients only ever reach their own consultations and their own
family members' records: anything else is a 404, the same as an id that does not exist.
Records are read only through `records.record_access`.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.accounts.models import FamilyMember
from registration.models import Department

from . import selectors
from .errors import ConsultError, RecordNotFound, TriageIncomplete
from .models import Consultation, Message, Outcome, Record, TriageResult
from .services import consultations, records, triage_rules

CONFLICT = 409


def _role_for(request: HttpRequest, c: Consultation) -> str | None:
    if c.account_id == request.user.pk:
        return "patient"
    if selectors.doctor_may_answer(selectors.doctor_for_user(request.user), c):
        return "doctor"
    return None


def _consultation(request: HttpRequest, pk: int) -> tuple[Consultation, str]:
    c = (Consultation.objects.select_related("doctor", "department", "family_member", "order",
                                             "triage__form", "triage__version")
         .filter(pk=pk).first())
    role = _role_for(request, c) if c is not None else None
    if role is None:
        raise Http404
    return c, role


# --------------------------------------------------------------------------- patient


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "consult/home.html", {
        "consultations": selectors.consultations_for_account(request.user)[:50],
        "doctors": selectors.online_doctors(),
        "departments": selectors.online_departments(),
        "department_fee_fen": selectors.consult_settings().department_fee_fen,
        "doctor": selectors.doctor_for_user(request.user)})


def _triage_target(request: HttpRequest):
    raw_doctor = request.GET.get("doctor") or request.POST.get("doctor") or ""
    raw_dept = request.GET.get("department") or request.POST.get("department") or ""
    if raw_doctor.isdigit():
        profile = selectors.online_doctors().filter(doctor_id=int(raw_doctor)).first()
        if profile is None:
            raise Http404
        return profile.doctor, profile.doctor.department, profile.fee_fen
    department = selectors.online_departments().filter(code=raw_dept).first()
    if department is None:
        raise Http404
    return None, department, selectors.consult_settings().department_fee_fen


@login_required
@require_http_methods(["GET", "POST"])
def start(request: HttpRequest) -> HttpResponse:
    """The pre-screening questions for a doctor or a department; POST decides."""
    doctor, department, fee = _triage_target(request)
    form = selectors.triage_form_for(department=department)
    members = list(FamilyMember.objects.filter(account=request.user))
    context = {"doctor": doctor, "department": department, "fee_fen": fee, "form": form,
               "questions": list(form.questions.all()), "members": members,
               "data": request.POST, "errors": {}}
    if request.method == "GET":
        return render(request, "consult/start.html", context)
    member = next((m for m in members if str(m.pk) == request.POST.get("member")), None)
    if member is None:
        context["errors"] = {"member": _("Choose who the consultation is for.")}
        return render(request, "consult/start.html", context, status=400)
    try:
        result = triage_rules.triage_submit(account=request.user, family_member=member,
                                            answers=request.POST, doctor=doctor,
                                            department=department, form=form)
    except TriageIncomplete as exc:
        context["errors"] = exc.details.get("fields", {})
        context["error"] = exc.message
        return render(request, "consult/start.html", context, status=400)
    return redirect("consult:triage", result.pk)


@login_required
@require_http_methods(["GET", "POST"])
def triage_result(request: HttpRequest, pk: int) -> HttpResponse:
    """What triage decided. Online: describe the question and go on to pay."""
    result = get_object_or_404(TriageResult.objects.select_related("doctor", "department"),
                               pk=pk, account=request.user)
    existing = Consultation.objects.filter(triage=result).first()
    if existing is not None:
        return redirect("consult:detail", existing.pk)
    deciding = result.matched[0] if result.matched else None
    suggest = None
    if deciding and deciding.get("suggest_department_id"):
        suggest = Department.objects.filter(pk=deciding["suggest_department_id"]).first()
    if suggest is None and result.outcome == Outcome.VISIT_IN_PERSON:
        suggest = result.department  # the department the patient was asking anyway
    settings_row = selectors.consult_settings()
    fee, error = 0, None
    if result.outcome == Outcome.ONLINE_OK:
        try:
            fee = (selectors.consult_fee_fen(doctor=result.doctor) if result.doctor
                   else settings_row.department_fee_fen)
        except ConsultError as exc:  # the doctor stopped consulting meanwhile
            error = exc.message
    context = {"result": result, "deciding": deciding, "suggest": suggest,
               "settings": settings_row, "fee_fen": fee, "error": error}
    if request.method == "POST":
        try:
            c = consultations.consultation_start(triage=result, account=request.user,
                                                 question=request.POST.get("question", ""))
        except ConsultError as exc:
            context["error"] = exc.message
            return render(request, "consult/triage_result.html", context, status=CONFLICT)
        return redirect("consult:detail", c.pk)
    return render(request, "consult/triage_result.html", context)


def _messages_html(request, c: Consultation, role: str, after: int = 0) -> tuple[str, int]:
    rows = list(c.messages.filter(pk__gt=after).select_related("author"))
    html = render_to_string("consult/_messages.html", {"rows": rows, "role": role, "c": c},
                            request=request)
    return html, (rows[-1].pk if rows else after)


def _number_shown(value):
    """A number answer as the patient typed it: 48 and 38.5, not 48.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _duration_shown(hours: float) -> tuple:
    """A duration (stored in hours) in the unit the patient most likely chose: "2 days", not
    "48.0 hours"."""
    for size, unit in ((168, _("weeks")), (24, _("days"))):
        if hours >= size and hours % size == 0:
            return _number_shown(hours / size), unit
    return _number_shown(hours), _("hours")


@login_required
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The conversation, for the patient and for the doctor (who also sees the triage first
    and can close with a summary)."""
    c, role = _consultation(request, pk)
    html, last = _messages_html(request, c, role)
    answers = []
    # In the form's order (the stored answers come back from jsonb in key-length order).
    for q in c.triage.form.questions.all():
        if q.code not in c.triage.answers:
            continue
        value = c.triage.answers[q.code]
        if q.kind == "duration" and isinstance(value, int | float):
            answers.append((q.display_text, *_duration_shown(value)))
            continue
        labels = dict(q.display_choices())
        shown = (", ".join(labels.get(v, v) for v in value) if isinstance(value, list)
                 else _number_shown(labels.get(value, value)))
        answers.append((q.display_text, shown, q.unit))
    record = Record.objects.filter(consultation=c).only("pk").first()
    days = c.triage.age_days
    age_label = (_("%(n)d days old") % {"n": days} if days < 365
                 else _("%(n)d years old") % {"n": days // 365})
    return render(request, "consult/detail.html", {
        "c": c, "role": role, "messages_html": html, "last": last, "answers": answers,
        "age_label": age_label,
        "record": record, "stars": range(1, 6)})


@login_required
@require_GET
def poll(request: HttpRequest, pk: int) -> JsonResponse:
    """New messages since `after` and the current status (the page polls every few seconds)."""
    c, role = _consultation(request, pk)
    raw = request.GET.get("after", "0")
    html, last = _messages_html(request, c, role, int(raw) if raw.isdigit() else 0)
    return JsonResponse({"html": html, "last": last, "status": c.status,
                         "status_label": c.get_status_display()})


@login_required
@require_POST
def send(request: HttpRequest, pk: int) -> HttpResponse:
    c, role = _consultation(request, pk)
    try:
        consultations.message_send(consultation=c, author=request.user,
                                   body=request.POST.get("body", ""),
                                   attachment=request.FILES.get("image"))
    except ConsultError as exc:
        if request.headers.get("x-requested-with") == "fetch":
            return JsonResponse({"error": exc.message, "code": exc.code}, status=CONFLICT)
        messages.error(request, exc.message)
        return redirect("consult:detail", pk)
    if request.headers.get("x-requested-with") == "fetch":
        return JsonResponse({"ok": True})
    return redirect("consult:detail", pk)


@login_required
@require_POST
def close(request: HttpRequest, pk: int) -> HttpResponse:
    c, role = _consultation(request, pk)
    try:
        consultations.consultation_close(consultation=c, by=request.user,
                                         summary=request.POST.get("summary", ""))
    except ConsultError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The consultation is closed; the summary is in the "
                                    "patient's records."))
    return redirect("consult:workbench" if role == "doctor" else "consult:detail", *(
        [] if role == "doctor" else [pk]))


@login_required
@require_POST
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    c, _role = _consultation(request, pk)
    try:
        consultations.consultation_cancel(consultation=c, by=request.user)
    except ConsultError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The consultation is cancelled. Any fee paid is refunded."))
    return redirect("consult:detail", pk)


@login_required
@require_POST
def rate(request: HttpRequest, pk: int) -> HttpResponse:
    c, _role = _consultation(request, pk)
    raw = request.POST.get("rating", "")
    try:
        consultations.consultation_rate(consultation=c, by=request.user,
                                        rating=int(raw) if raw.isdigit() else 0,
                                        comment=request.POST.get("comment", ""))
    except ConsultError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Thank you for your rating."))
    return redirect("consult:detail", pk)


@login_required
def attachment(request: HttpRequest, pk: int) -> FileResponse:
    """An image of a consultation, to its patient and its doctor only (never a public URL)."""
    msg = get_object_or_404(Message.objects.exclude(attachment=""), pk=pk)
    _consultation(request, msg.consultation_id)
    response = FileResponse(msg.attachment.open("rb"), content_type=msg.attachment_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response


# --------------------------------------------------------------------------- doctor


@login_required
def workbench(request: HttpRequest) -> HttpResponse:
    doctor = selectors.doctor_for_user(request.user)
    if doctor is None:
        raise Http404
    return render(request, "consult/workbench.html",
                  {"doctor": doctor, **selectors.workbench(doctor)})


@login_required
@require_POST
def workbench_check_in(request: HttpRequest, pk: int) -> HttpResponse:
    """The doctor checks in one of today's booked patients of their own."""
    from registration.errors import BookingError
    from registration.models import Booking
    from registration.services import booking as booking_services

    doctor = selectors.doctor_for_user(request.user)
    if doctor is None:
        raise Http404
    booking = get_object_or_404(Booking, pk=pk, doctor=doctor)
    try:
        booking_services.booking_check_in(booking=booking, actor=request.user)
    except BookingError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("%(name)s is checked in.") % {
            "name": booking.family_member.name})
    return redirect("consult:workbench")


# --------------------------------------------------------------------------- records


@login_required
def record_list(request: HttpRequest) -> HttpResponse:
    return render(request, "consult/record_list.html",
                  {"records": selectors.records_for_account(request.user)[:200]})


@login_required
def record_detail(request: HttpRequest, pk: int) -> HttpResponse:
    # Only the owning account reads records on the patient site; staff read them in admin.
    if not selectors.records_for_account(request.user).filter(pk=pk).exists():
        raise Http404
    try:
        record = records.record_access(record_id=pk, user=request.user, via="patient_page")
    except RecordNotFound:
        raise Http404 from None
    return render(request, "consult/record_detail.html",
                  {"record": record, "items": list(record.items.all())})

