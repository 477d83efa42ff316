"""Consultations: start, the payment handlers, messages, close, timeout, cancel, rating.

Lock order, everywhere: payment order row → consultation row (`_lock`). The payment callback
(order → consultation), the timeout job, the patient's cancel and the doctor's first reply
all follow it, so a reply and a timeout racing for the same consultation end one way: either
the doctor answered in time (active) or the timeout won (timed out, refunded) and the late
reply is refused.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from payments import services as payments
from payments.models import Order
from registration.services.patients import patient_card_for

from ..errors import (
    ConsultationNotOpen,
    ConsultError,
    NotYourConsultation,
    NotYourPatient,
    RatingNotAllowed,
    TriageNotOnline,
)
from ..models import Consultation, ConsultationEvent, Message, Outcome, Record, TriageResult
from ..selectors import consult_fee_fen, consult_settings, doctor_for_user, doctor_may_answer
from .attachments import attachment_check, attachment_content
from .notices import patient_notify

log = logging.getLogger(__name__)


def _event(c: Consultation, action: str, *, source: str, actor=None, before: str = "",
           **detail) -> None:
    ConsultationEvent.objects.create(consultation=c, action=action, from_status=before,
                                     to_status=c.status, actor=actor, source=source,
                                     detail=detail)


def _lock(consultation_id: int) -> Consultation | None:
    """Order row first (if any), then the consultation: the module's lock order."""
    order_id = (Consultation.objects.filter(pk=consultation_id)
                .values_list("order_id", flat=True).first())
    if order_id:
        Order.objects.select_for_update().get(pk=order_id)
    return (Consultation.objects.select_for_update(of=("self",))
            .select_related("order", "doctor").filter(pk=consultation_id).first())


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
    pk, eta = c.pk, c.deadline_at
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    if (eta - timezone.now()).total_seconds() > visibility * 0.9:
        return

    def send():
        from ..tasks import consultation_timeout_task

        try:
            consultation_timeout_task.apply_async(args=[pk], eta=eta + timedelta(seconds=1))
        except Exception:  # broker down: the per-minute sweeper times it out instead
            log.warning("could not schedule the timeout of consultation %s; the sweeper will", pk)

    transaction.on_commit(send)


# The two order handlers below are registered with payments in ConsultConfig.ready().


def on_consultation_paid(order: Order) -> None:
    """Payment arrived (called with the order row locked): the doctor's clock starts."""
    c = Consultation.objects.select_for_update().filter(order=order).first()
    if c is None:
        return
    if c.status != Consultation.Status.AWAITING_PAYMENT:
        # Money for a consultation that is gone (cancelled or closed meanwhile): give it back,
        # the one way payments does it (recorded under this lock, submitted after commit).
        payments.refund_gone_locked(
            order=order, source="system", key="consult-gone",
            reason=_("Automatic refund: the consultation was no longer open."))
        return
    before = c.status
    c.status = Consultation.Status.WAITING
    _start_clock(c)
    c.save(update_fields=["status", "paid_at", "deadline_at"])
    _event(c, "paid", source="provider", before=before)
    _schedule_timeout(c)


def on_consultation_order_closed(order: Order) -> None:
    """The unpaid order was closed (expired, or the patient cancelled): so is the consultation."""
    c = Consultation.objects.select_for_update().filter(order=order).first()
    if c is None or c.status != Consultation.Status.AWAITING_PAYMENT:
        return
    c.status, c.closed_at = Consultation.Status.CANCELLED, timezone.now()
    c.save(update_fields=["status", "closed_at"])
    _event(c, "cancelled", source="system", before=Consultation.Status.AWAITING_PAYMENT,
           reason=order.close_reason)


def message_send(*, consultation: Consultation, author, body: str = "",
                 attachment: UploadedFile | None = None) -> Message:
    """A message from the patient or the doctor. The doctor's first one starts the
    consultation (waiting → active) and stops the deadline clock."""
    body = (body or "").strip()
    if not body and attachment is None:
        raise ConsultError(_("Write a message or attach an image."), code="empty_message")
    kind_ext = attachment_check(attachment) if attachment is not None else None
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
        if attachment is not None and kind_ext is not None:
            content_type, ext = kind_ext
            stored = attachment_content(attachment, content_type=content_type, ext=ext)
            msg.attachment_type = content_type
            msg.attachment_size = stored.size
            msg.attachment = stored
        msg.save()
        if sender == Message.Sender.DOCTOR:
            patient_notify("consult_reply", account_id=c.account_id, link=f"/consult/{c.pk}/",
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
        patient_notify("consult_closed", account_id=c.account_id,
                       link=f"/records/{record.pk}/", doctor=c.doctor.name,
                       name=c.family_member.name)
    return record


def consultation_timeout(*, consultation_id: int, now: datetime | None = None) -> int | None:
    """Time out a waiting consultation past its deadline: refund and tell the patient.
    Returns the refund id for the caller to submit after commit (see
    `consultation_timeout_and_refund`), or None if nothing was due."""
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
            # Not refund_gone_locked: that hands the submission to another worker after
            # commit, and this job is already that worker. It submits in the same task
            # (consultation_timeout_and_refund) so that it can settle at once when the
            # provider answers "succeeded"; the pending-refund sweeper covers a crash between.
            refund = payments.refund_create_locked(
                order=c.order, amount_fen=c.order.refundable_fen, source="system",
                reason=_("No doctor answered in time."), key=f"consult-timeout-{c.pk}")
            refund_id = refund.pk
        else:  # nothing was paid: nothing to wait for
            c.status = Consultation.Status.REFUNDED
            c.save(update_fields=["status"])
        who = c.doctor.name if c.doctor else c.department.name
        patient_notify("consult_timed_out", account_id=c.account_id, link=f"/consult/{c.pk}/",
                       doctor=who, name=c.family_member.name,
                       hours=consult_settings().response_hours)
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
        refund = None
        if c.order is not None:
            refund = payments.refund_gone_locked(
                order=c.order, source="patient", actor=by, key=f"consult-cancel-{c.pk}",
                reason=_("Cancelled by the patient before an answer."), submit_after_commit=False)
    if refund is not None:
        # The patient is on the page and is told the fee is being refunded: ask the provider
        # now, here, rather than through a worker as well (which submitted it a second time);
        # if the provider cannot be reached it stays pending for the pending-refund sweeper.
        payments.refund_submit(refund_id=refund.pk)
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
