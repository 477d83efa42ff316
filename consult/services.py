"""Every change in the consult app: triage, consultations, messages, records. Runs inside the
hospital's schema.

Lock order, everywhere: payment order row → consultation row. The payment callback
(order → consultation), the timeout job, the patient's cancel and the doctor's first reply
all follow it, so a reply and a timeout racing for the same consultation end one way: either
the doctor answered in time (active) or the timeout won (timed out, refunded) and the late
reply is refused.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from payments import services as payments
from payments.models import Order
from portal.accounts.models import StaffMembership
from portal.errors import DomainError
from registration.services.patients import patient_card_for

from . import triage as engine
from .defaults import snapshot
from .models import (
    Consultation,
    ConsultationEvent,
    ConsultSettings,
    DoctorConsultProfile,
    LabItem,
    Message,
    Outcome,
    Record,
    RecordAccess,
    TriageForm,
    TriageQuestion,
    TriageResult,
    TriageRule,
    TriageRuleVersion,
)

log = logging.getLogger(__name__)

_VERSION_LOCK = 7401  # advisory-lock key: one rule version number at a time

MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
# Image types we accept, recognised by their first bytes (never by the name or the browser's
# claimed content type).
_IMAGE_SIGNATURES = [(b"\xff\xd8\xff", "image/jpeg", "jpg"),
                     (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
                     (b"GIF87a", "image/gif", "gif"), (b"GIF89a", "image/gif", "gif")]


class ConsultError(DomainError):
    code = "consult_error"


class TriageIncomplete(ConsultError):
    code = "triage_incomplete"


class TriageNotOnline(ConsultError):
    code = "triage_not_online"


class NotYourPatient(ConsultError):
    code = "not_your_patient"


class DoctorNotAvailable(ConsultError):
    code = "doctor_not_available"


class ConsultationNotOpen(ConsultError):
    code = "consultation_not_open"


class NotYourConsultation(ConsultError):
    code = "not_your_consultation"


class AttachmentRejected(ConsultError):
    code = "attachment_rejected"


class RatingNotAllowed(ConsultError):
    code = "rating_not_allowed"


class RecordNotFound(ConsultError):
    code = "record_not_found"


class InvalidReport(ConsultError):
    code = "invalid_report"


class InvalidRule(ConsultError):
    code = "invalid_rule"


def _hospital():
    return connection.tenant


def consult_settings() -> ConsultSettings:
    row, _created = ConsultSettings.objects.get_or_create(pk=1)
    return row


def _notify(kind: str, user_id: int, link: str, **context) -> None:
    from portal.notifications.services import notify

    notify(kind=kind, hospital=_hospital(), recipients=[user_id], context=context, link=link)


# --------------------------------------------------------------------------- triage rules


def triage_seed_defaults() -> None:
    """The general form and the red flags (idempotent). Migration 0002 (or its squash) runs the
    same seed in every schema, so this is for hospitals whose staff deleted them and want them back."""
    from django.apps import apps

    from .defaults import seed

    with transaction.atomic():
        seed(apps)


def triage_current_version() -> TriageRuleVersion:
    version = TriageRuleVersion.objects.order_by("-number").first()
    if version is None:
        version = triage_rules_publish(by=None, note="first version")
    return version


@transaction.atomic
def triage_rules_publish(*, by, note: str = "") -> TriageRuleVersion:
    """Freeze the active rules as a new version; new triage decides by it from now on."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [_VERSION_LOCK])
    number = (TriageRuleVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
    return TriageRuleVersion.objects.create(
        number=number, rules=snapshot(TriageRule.objects.filter(is_active=True)),
        note=note[:200], created_by=by)


def triage_rule_check(*, rule: TriageRule) -> None:
    questions = set(TriageQuestion.objects.values_list("code", flat=True))
    try:
        engine.validate_conditions(rule.conditions, questions)
    except engine.InvalidConditions as exc:
        raise InvalidRule(_("The conditions are not valid: %(why)s") % {"why": exc}) from None


@transaction.atomic
def triage_rule_save(*, rule: TriageRule, by) -> TriageRuleVersion:
    """Save a rule (new or changed) and publish a new rule version with it."""
    triage_rule_check(rule=rule)
    rule.save()
    return triage_rules_publish(by=by, note=f"saved {rule.code}")


@transaction.atomic
def triage_rule_delete(*, rule: TriageRule, by) -> TriageRuleVersion:
    code = rule.code
    rule.delete()
    return triage_rules_publish(by=by, note=f"deleted {code}")


def triage_form_for(*, department=None) -> TriageForm:
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


def triage_clean_answers(*, form: TriageForm, data) -> dict:
    """Turn submitted values into typed answers. `data` maps a question code to a string or a
    list of strings (a QueryDict works; use `getlist` semantics for multi-choice). Duration
    answers come as CODE (a number) and CODE_unit (h / d / w) and are kept in hours."""
    answers: dict = {}
    errors: dict[str, str] = {}

    def values(key):
        if hasattr(data, "getlist"):
            return [v for v in data.getlist(key) if v != ""]
        raw = data.get(key)
        if raw is None or raw == "":
            return []
        return list(raw) if isinstance(raw, list | tuple) else [raw]

    for q in form.questions.all():
        raw = values(q.code)
        allowed = {c[0] for c in q.choices}
        if not raw:
            if q.required:
                errors[q.code] = _("Please answer this question.")
            continue
        if q.kind == TriageQuestion.Kind.CHOICE:
            if len(raw) != 1 or raw[0] not in allowed:
                errors[q.code] = _("Choose one of the options.")
            else:
                answers[q.code] = raw[0]
        elif q.kind == TriageQuestion.Kind.MULTI:
            if any(v not in allowed for v in raw):
                errors[q.code] = _("Choose from the options.")
            else:
                answers[q.code] = sorted(set(raw))
        else:
            try:
                number = Decimal(str(raw[0]).strip())
            except InvalidOperation:
                errors[q.code] = _("Enter a number.")
                continue
            if not number.is_finite():
                errors[q.code] = _("Enter a number.")
                continue
            if q.kind == TriageQuestion.Kind.DURATION:
                unit = (values(f"{q.code}_unit") or ["h"])[0]
                factor = {"h": 1, "d": 24, "w": 168}.get(unit)
                if factor is None:
                    errors[q.code] = _("Choose hours, days or weeks.")
                    continue
                number *= factor
            if (q.min_value is not None and number < q.min_value) or \
                    (q.max_value is not None and number > q.max_value):
                errors[q.code] = _("Enter a value between %(lo)s and %(hi)s.") % {
                    "lo": q.min_value, "hi": q.max_value}
                continue
            answers[q.code] = float(number)
    if errors:
        raise TriageIncomplete(_("Please check your answers."), details={"fields": errors})
    return answers


def _age_days(member, today=None) -> int:
    today = today or timezone.localdate()
    return max((today - member.birth_date).days, 0)


@transaction.atomic
def triage_submit(*, account, family_member, answers: dict, department=None,
                  doctor=None, form: TriageForm | None = None) -> TriageResult:
    """Decide a triage for a family member of `account`, keep the answers and the rule version
    that decided. `answers` are raw values (see `triage_clean_answers`)."""
    if family_member.account_id != account.pk:
        raise NotYourPatient(_("You can only consult for your own family members."))
    if doctor is not None:
        department = doctor.department
    form = form or triage_form_for(department=department)
    clean = triage_clean_answers(form=form, data=answers)
    version = triage_current_version()
    age = _age_days(family_member)
    decision = engine.decide(rules=version.rules, answers=clean, age_days=age,
                             sex=family_member.sex)
    return TriageResult.objects.create(
        account=account, family_member=family_member, form=form, version=version,
        answers=clean, age_days=age, sex=family_member.sex, outcome=decision.outcome,
        matched=[{"code": r["code"], "outcome": r["outcome"], "name": r["name"],
                  "name_en": r.get("name_en", ""), "advice": r.get("advice", ""),
                  "advice_en": r.get("advice_en", ""),
                  "suggest_department_id": r.get("suggest_department_id")}
                 for r in decision.matched],
        department=department, doctor=doctor)


# --------------------------------------------------------------------------- consultations


def _event(c: Consultation, action: str, *, source: str, actor=None, before: str = "",
           **detail) -> None:
    ConsultationEvent.objects.create(consultation=c, action=action, from_status=before,
                                     to_status=c.status, actor=actor, source=source,
                                     detail=detail)


def consult_fee_fen(*, doctor=None) -> int:
    if doctor is None:
        return consult_settings().department_fee_fen
    profile = DoctorConsultProfile.objects.filter(doctor=doctor, is_enabled=True,
                                                  doctor__is_active=True).first()
    if profile is None:
        raise DoctorNotAvailable(_("This doctor does not offer online consultation."))
    return profile.fee_fen


@transaction.atomic
def consultation_start(*, triage: TriageResult, account, question: str) -> Consultation:
    """Open a consultation after a triage that allows it: awaiting payment (or waiting at
    once when free)."""
    triage = TriageResult.objects.select_for_update().get(pk=triage.pk)
    if triage.account_id != account.pk:
        raise NotYourPatient(_("You can only consult for your own family members."))
    if triage.outcome != Outcome.ONLINE_OK:
        raise TriageNotOnline(_("Your answers need care that an online consultation cannot "
                                "give; please follow the advice shown."))
    if Consultation.objects.filter(triage=triage).exists():
        raise ConsultError(_("A consultation was already started from these answers."),
                           code="consultation_exists")
    question = (question or "").strip()
    if not question:
        raise ConsultError(_("Please describe your question for the doctor."),
                           code="question_required")
    doctor, department = triage.doctor, triage.department
    if doctor is None and department is None:
        raise ConsultError(_("Choose a doctor or a department."), code="no_doctor")
    fee = consult_fee_fen(doctor=doctor)
    card = patient_card_for(family_member=triage.family_member)
    c = Consultation(account=account, family_member=triage.family_member, patient_card=card,
                     department=department or doctor.department, doctor=doctor, triage=triage,
                     question=question[:4000], fee_fen=fee)
    if fee == 0:
        c.status = Consultation.Status.WAITING
        _start_clock(c)
    else:
        who = doctor.name if doctor else c.department.name
        with translation.override(settings.LANGUAGE_CODE):  # a record: the hospital's language
            description = _("Online consultation: %(who)s") % {"who": who}
        c.order = payments.order_create(
            kind=Order.Kind.CONSULTATION, payer=account, total_fen=fee, description=description)
    c.save()
    _event(c, "created", source="patient", actor=account, fee_fen=fee)
    if c.status == Consultation.Status.WAITING:
        _schedule_timeout(c)
    return c


def _start_clock(c: Consultation) -> None:
    now = timezone.now()
    c.paid_at = now
    c.deadline_at = now + timedelta(hours=consult_settings().response_hours)


def _schedule_timeout(c: Consultation) -> None:
    """A task at the deadline, when the deadline is near enough. Redis hands a task with a
    later ETA out again every visibility timeout (duplicates every hour for a 12 h limit), so
    long deadlines are left to the per-minute beat job alone."""
    from django.conf import settings

    pk, eta = c.pk, c.deadline_at
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    if (eta - timezone.now()).total_seconds() > visibility * 0.9:
        return

    def send():
        from .tasks import consultation_timeout_task

        try:
            consultation_timeout_task.apply_async(args=[pk], eta=eta + timedelta(seconds=1))
        except Exception:  # broker down: the per-minute sweeper times it out instead
            log.warning("could not schedule the timeout of consultation %s; the sweeper will", pk)

    transaction.on_commit(send)


@payments.on_order_paid(Order.Kind.CONSULTATION)
def _consultation_paid(order: Order) -> None:
    """Payment arrived (called with the order row locked): the doctor's clock starts."""
    c = Consultation.objects.select_for_update().filter(order=order).first()
    if c is None:
        return
    if c.status != Consultation.Status.AWAITING_PAYMENT:
        refund = payments.refund_create_locked(
            order=order, amount_fen=order.self_pay_fen, source="system",
            reason=_("Automatic refund: the consultation was no longer open."),
            key="consult-gone")
        transaction.on_commit(lambda: payments.refund_submit(refund_id=refund.pk))
        return
    before = c.status
    c.status = Consultation.Status.WAITING
    _start_clock(c)
    c.save(update_fields=["status", "paid_at", "deadline_at"])
    _event(c, "paid", source="provider", before=before)
    _schedule_timeout(c)


@payments.on_order_closed(Order.Kind.CONSULTATION)
def _consultation_order_closed(order: Order) -> None:
    c = Consultation.objects.select_for_update().filter(order=order).first()
    if c is None or c.status != Consultation.Status.AWAITING_PAYMENT:
        return
    c.status, c.closed_at = Consultation.Status.CANCELLED, timezone.now()
    c.save(update_fields=["status", "closed_at"])
    _event(c, "cancelled", source="system", before=Consultation.Status.AWAITING_PAYMENT,
           reason=order.close_reason)


def _lock(consultation_id: int) -> Consultation | None:
    """Order row first (if any), then the consultation: the module's lock order."""
    order_id = (Consultation.objects.filter(pk=consultation_id)
                .values_list("order_id", flat=True).first())
    if order_id:
        Order.objects.select_for_update().get(pk=order_id)
    return (Consultation.objects.select_for_update(of=("self",))
            .select_related("order", "doctor").filter(pk=consultation_id).first())


def doctor_for_user(user):
    """The hospital's doctor whose login this is, if the user is doctor-role staff here."""
    from registration.models import Doctor

    if user is None or not user.is_authenticated:
        return None
    if not StaffMembership.objects.filter(user=user, hospital_id=_hospital().pk,
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


def _check_attachment(upload: UploadedFile) -> tuple[str, str]:
    if upload.size > MAX_ATTACHMENT_BYTES:
        raise AttachmentRejected(_("Images can be at most %(mb)d MB.") % {
            "mb": MAX_ATTACHMENT_BYTES // (1024 * 1024)})
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    for magic, content_type, ext in _IMAGE_SIGNATURES:
        if head.startswith(magic):
            return content_type, ext
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", "webp"
    raise AttachmentRejected(_("Only JPEG, PNG, GIF or WebP images can be attached."))


def strip_jpeg_metadata(data: bytes) -> bytes:
    """A JPEG without its EXIF / XMP (APP1) and comment segments: phone photos carry the
    place they were taken and the device, which a doctor does not need. Anything that does
    not parse as a JPEG header is returned unchanged."""
    if not data.startswith(b"\xff\xd8"):
        return data
    out, i = bytearray(b"\xff\xd8"), 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return data
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA:  # start of scan: the compressed image follows, kept as is
            return bytes(out + data[i:])
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if length < 2 or i + 2 + length > len(data):
            return data
        if marker not in (0xE1, 0xFE):
            out += data[i:i + 2 + length]
        i += 2 + length
    return data


def message_send(*, consultation: Consultation, author, body: str = "",
                 attachment: UploadedFile | None = None) -> Message:
    """A message from the patient or the doctor. The doctor's first one starts the
    consultation (waiting → active) and stops the deadline clock."""
    body = (body or "").strip()
    if not body and attachment is None:
        raise ConsultError(_("Write a message or attach an image."), code="empty_message")
    kind_ext = _check_attachment(attachment) if attachment is not None else None
    with transaction.atomic():
        c = _lock(consultation.pk)
        if c is None:
            raise NotYourConsultation(_("Consultation not found."))
        if c.account_id == author.pk:
            sender = Message.Sender.PATIENT
        elif doctor_may_answer(doctor_for_user(author), c):
            sender = Message.Sender.DOCTOR
        else:
            raise NotYourConsultation(_("This is not your consultation."))
        if not c.is_open:
            raise ConsultationNotOpen(_("This consultation is no longer open."))
        if sender == Message.Sender.DOCTOR and c.status == Consultation.Status.WAITING:
            if c.deadline_at and c.deadline_at <= timezone.now():
                raise ConsultationNotOpen(_("The response time is over; the consultation is "
                                            "being refunded."))
            before = c.status
            c.status, c.first_response_at = Consultation.Status.ACTIVE, timezone.now()
            if c.doctor_id is None:
                c.doctor = doctor_for_user(author)
            c.save(update_fields=["status", "first_response_at", "doctor"])
            _event(c, "answered", source="doctor", actor=author, before=before)
        msg = Message(consultation=c, sender=sender, author=author, body=body[:4000])
        if attachment is not None:
            from django.core.files.base import ContentFile

            attachment.seek(0)
            content = attachment.read()
            if kind_ext[0] == "image/jpeg":
                content = strip_jpeg_metadata(content)
            msg.attachment_type = kind_ext[0]
            msg.attachment_size = len(content)
            msg.attachment = ContentFile(content, name=f"image.{kind_ext[1]}")
        msg.save()
        if sender == Message.Sender.DOCTOR:
            _notify("consult_reply", c.account_id, f"/consult/{c.pk}/",
                    doctor=c.doctor.name, name=c.family_member.name)
    return msg


def consultation_close(*, consultation: Consultation, by, summary: str) -> Record:
    """The doctor ends an active consultation; the summary becomes the patient's record."""
    summary = (summary or "").strip()
    if not summary:
        raise ConsultError(_("Write a summary for the patient before closing."),
                           code="summary_required")
    with transaction.atomic():
        c = _lock(consultation.pk)
        if c is None or not doctor_may_answer(doctor_for_user(by), c):
            raise NotYourConsultation(_("This is not your consultation."))
        if c.status != Consultation.Status.ACTIVE:
            raise ConsultationNotOpen(_("Only a consultation in progress can be closed."))
        before = c.status
        c.status, c.closed_at, c.summary = Consultation.Status.CLOSED, timezone.now(), summary
        c.save(update_fields=["status", "closed_at", "summary"])
        _event(c, "closed", source="doctor", actor=by, before=before)
        record = Record.objects.create(
            patient_card=c.patient_card, kind=Record.Kind.CONSULTATION_SUMMARY,
            title=_("Online consultation with %(doctor)s") % {"doctor": c.doctor.name},
            department=c.department, doctor_name=c.doctor.name, body=summary,
            consultation=c, issued_at=c.closed_at, source="consult", created_by=by)
        _notify("consult_closed", c.account_id, f"/records/{record.pk}/",
                doctor=c.doctor.name, name=c.family_member.name)
    return record


def consultation_timeout(*, consultation_id: int, now: datetime | None = None) -> int | None:
    """Time out a waiting consultation past its deadline: refund and tell the patient.
    Returns the refund id (to submit after commit), or None if nothing was due."""
    now = now or timezone.now()
    with transaction.atomic():
        c = _lock(consultation_id)
        if c is None or c.status != Consultation.Status.WAITING or c.deadline_at is None \
                or c.deadline_at > now:
            return None
        before = c.status
        c.status, c.closed_at = Consultation.Status.TIMED_OUT, now
        c.save(update_fields=["status", "closed_at"])
        _event(c, "timed_out", source="system", before=before)
        refund_id = None
        if c.order is not None and c.order.refundable_fen > 0:
            refund = payments.refund_create_locked(
                order=c.order, amount_fen=c.order.refundable_fen, source="system",
                reason=_("No doctor answered in time."), key=f"consult-timeout-{c.pk}")
            refund_id = refund.pk
        else:  # nothing was paid: nothing to wait for
            c.status = Consultation.Status.REFUNDED
            c.save(update_fields=["status"])
        who = c.doctor.name if c.doctor else c.department.name
        _notify("consult_timed_out", c.account_id, f"/consult/{c.pk}/", doctor=who,
                name=c.family_member.name, hours=consult_settings().response_hours)
    return refund_id


def consultation_refund_settle(*, consultation_id: int) -> bool:
    """Timed out and the provider has confirmed the refund (its callback): mark it refunded.
    (The provider answers a refund request with "processing"; the beat job settles later.)"""
    with transaction.atomic():
        c = _lock(consultation_id)
        if c is None or c.status != Consultation.Status.TIMED_OUT:
            return False
        if c.order is not None and c.order.status != Order.Status.REFUNDED:
            return False
        c.status = Consultation.Status.REFUNDED
        c.save(update_fields=["status"])
        _event(c, "refunded", source="system", before=Consultation.Status.TIMED_OUT)
    return True


def consultation_timeout_and_refund(*, consultation_id: int) -> bool:
    """What the worker runs: time out, submit the refund to the provider, settle."""
    refund_id = consultation_timeout(consultation_id=consultation_id)
    if refund_id is not None:
        payments.refund_submit(refund_id=refund_id)
    return consultation_refund_settle(consultation_id=consultation_id)


def consultations_timeout_due(*, limit: int = 200) -> int:
    """The beat job: time out late consultations and settle refunds that have come through."""
    now = timezone.now()
    ids = list(Consultation.objects.filter(status=Consultation.Status.WAITING,
                                           deadline_at__lte=now)
               .order_by("deadline_at").values_list("pk", flat=True)[:limit])
    ids += list(Consultation.objects.filter(status=Consultation.Status.TIMED_OUT)
                .values_list("pk", flat=True)[:limit])
    done = 0
    for pk in ids:
        done += consultation_timeout_and_refund(consultation_id=pk)
    return done


def consultation_cancel(*, consultation: Consultation, by) -> Consultation:
    """The patient gives up: an unpaid one is cancelled; one no doctor has answered yet is
    cancelled and refunded in full."""
    with transaction.atomic():
        c = _lock(consultation.pk)
        if c is None or c.account_id != by.pk:
            raise NotYourConsultation(_("This is not your consultation."))
        before = c.status
        if c.status == Consultation.Status.AWAITING_PAYMENT:
            payments.order_close(order=c.order, reason="consultation cancelled", actor=by,
                                 source="patient")  # the closed-order handler cancels it
            c.refresh_from_db()
            return c
        if c.status != Consultation.Status.WAITING:
            raise ConsultationNotOpen(_("A consultation the doctor has answered cannot be "
                                        "cancelled."))
        c.status, c.closed_at = Consultation.Status.CANCELLED, timezone.now()
        c.save(update_fields=["status", "closed_at"])
        _event(c, "cancelled", source="patient", actor=by, before=before)
        refund_id = None
        if c.order is not None and c.order.refundable_fen > 0:
            refund_id = payments.refund_create_locked(
                order=c.order, amount_fen=c.order.refundable_fen, source="patient", actor=by,
                reason=_("Cancelled by the patient before an answer."),
                key=f"consult-cancel-{c.pk}").pk
    if refund_id is not None:
        payments.refund_submit(refund_id=refund_id)
    c.refresh_from_db()
    return c


@transaction.atomic
def consultation_rate(*, consultation: Consultation, by, rating: int, comment: str = "") -> None:
    c = Consultation.objects.select_for_update().get(pk=consultation.pk)
    if c.account_id != by.pk:
        raise NotYourConsultation(_("This is not your consultation."))
    if c.status != Consultation.Status.CLOSED:
        raise RatingNotAllowed(_("You can rate a consultation once it is closed."))
    if c.rating is not None:
        raise RatingNotAllowed(_("You have already rated this consultation."))
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise RatingNotAllowed(_("Choose 1 to 5 stars."))
    c.rating, c.rating_comment, c.rated_at = rating, (comment or "").strip()[:500], timezone.now()
    c.save(update_fields=["rating", "rating_comment", "rated_at"])
    _event(c, "rated", source="patient", actor=by, rating=rating)


# --------------------------------------------------------------------------- records


_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*[-–~]\s*(-?\d+(?:\.\d+)?)\s*$")
_BOUND = re.compile(r"^\s*([<>]=?|≤|≥)\s*(-?\d+(?:\.\d+)?)\s*$")


def lab_flag(value: str, reference_range: str) -> str:
    """H / L from a numeric value and a numeric range ('3.5-5.5', '<5.2', '>=1.0'); '' when
    it is inside or cannot be worked out (staff then set the flag themselves)."""
    try:
        v = Decimal(str(value).strip())
    except InvalidOperation:
        return ""
    m = _RANGE.match(reference_range or "")
    if m:
        lo, hi = Decimal(m.group(1)), Decimal(m.group(2))
        return "L" if v < lo else "H" if v > hi else ""
    m = _BOUND.match(reference_range or "")
    if m:
        op, bound = m.group(1), Decimal(m.group(2))
        if op in ("<", "<=", "≤"):
            return "H" if (v >= bound if op == "<" else v > bound) else ""
        return "L" if (v <= bound if op == ">" else v < bound) else ""
    return ""


def _clean_item(item: dict, order: int) -> LabItem:
    name, value = str(item.get("name") or "").strip(), str(item.get("value") or "").strip()
    if not name or not value:
        raise InvalidReport(_("Every lab item needs a name and a value."))
    flag = str(item.get("flag") or "").strip().upper()
    if flag not in LabItem.Flag.values:
        raise InvalidReport(_("A lab item's flag is H, L, A or empty."))
    reference = str(item.get("reference_range") or "").strip()
    return LabItem(name=name[:100], code=str(item.get("code") or "")[:30], value=value[:50],
                   unit=str(item.get("unit") or "")[:30], reference_range=reference[:50],
                   flag=flag or lab_flag(value, reference),
                   sort_order=item.get("sort_order", order * 10))


def report_create(*, kind: str, title: str, patient_card=None, family_member=None,
                  medical_record_number: str | None = None, items: list[dict] | tuple = (),
                  body: str = "", conclusion: str = "",
                  department=None, doctor_name: str = "", issued_at: datetime | None = None,
                  by=None, source: str = "staff", external_id: str | None = None) -> Record:
    """Create a record or report for a patient of this hospital and tell the patient.

    For staff (admin) and partners (the API's `reports:write` scope). The patient is a
    `patient_card`, a `family_member` (a card is made on first use) or this hospital's
    `medical_record_number` (what a partner's HIS knows). `items` are lab results:
    {"name", "value", "unit", "reference_range", "flag" (H/L/A or empty: worked out), "code"}.
    Idempotent on `external_id`: the same id again returns the first record unchanged.
    """
    if kind not in Record.Kind.values:
        raise InvalidReport(_("Unknown record kind."))
    if not (title or "").strip():
        raise InvalidReport(_("A record needs a title."))
    if items and kind != Record.Kind.LAB_REPORT:
        raise InvalidReport(_("Only lab reports have result items."))
    with transaction.atomic():
        if external_id:
            existing = Record.objects.filter(external_id=external_id).first()
            if existing is not None:
                return existing
        if patient_card is None and medical_record_number:
            from registration.models import PatientCard

            patient_card = PatientCard.objects.filter(
                medical_record_number=str(medical_record_number).strip()).first()
            if patient_card is None:
                raise InvalidReport(_("No patient card has this number."),
                                    code="unknown_patient")
        if patient_card is None:
            if family_member is None:
                raise InvalidReport(_("Name the patient (card or family member)."))
            patient_card = patient_card_for(family_member=family_member)
        lab_items = [_clean_item(dict(item), i) for i, item in enumerate(items, start=1)]
        record = Record.objects.create(
            patient_card=patient_card, kind=kind, title=title.strip()[:200],
            department=department, doctor_name=(doctor_name or "")[:50], body=body or "",
            conclusion=conclusion or "", issued_at=issued_at or timezone.now(), source=source,
            external_id=external_id or None, created_by=by)
        for item in lab_items:
            item.record = record
        LabItem.objects.bulk_create(lab_items)
        _notify_new_record(record)
    return record


def _notify_new_record(record: Record) -> None:
    member = record.patient_card.family_member
    _notify("report_ready", member.account_id, f"/records/{record.pk}/",
            title=record.title, name=member.name)


def record_save(*, record: Record, by) -> Record:
    """Admin's save of a record's own fields (items follow in `record_items_finish`)."""
    if record.pk is None:
        record.created_by = by
        record.source = "staff"
        if record.issued_at is None:
            record.issued_at = timezone.now()
    record.save()
    return record


def record_items_finish(*, record: Record, created: bool) -> None:
    """After admin saved the items: work out missing flags; a new record tells the patient."""
    for item in record.items.filter(flag=""):
        flag = lab_flag(item.value, item.reference_range)
        if flag:
            LabItem.objects.filter(pk=item.pk).update(flag=flag)
    if created:
        _notify_new_record(record)


def record_may_read(*, record: Record, user) -> bool:
    if user is None or not user.is_authenticated:
        return False
    if record.patient_card.family_member.account_id == user.pk:
        return True
    role = (StaffMembership.objects.filter(user=user, hospital_id=_hospital().pk, is_active=True)
            .values_list("role", flat=True).first())
    return role in (StaffMembership.Role.HOSPITAL_ADMIN, StaffMembership.Role.DOCTOR)


def record_access(*, record_id, user, via: str) -> Record:
    """THE gate for reading a record: checks who may read it and logs the read (who, when,
    which record, through which door). Every page, admin view and API read comes here.
    Anyone else gets RecordNotFound, exactly as for an id that does not exist."""
    try:
        pk = int(record_id)
    except (TypeError, ValueError):
        raise RecordNotFound(_("Record not found.")) from None
    record = (Record.objects.select_related("patient_card__family_member", "department",
                                            "consultation")
              .filter(pk=pk).first())
    if record is None or not record_may_read(record=record, user=user):
        raise RecordNotFound(_("Record not found."))
    # Written before the record is handed back: no caller can read without a log row.
    RecordAccess.objects.create(record=record, user=user, via=via[:20])
    return record
