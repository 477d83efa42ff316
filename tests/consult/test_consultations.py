"""The consultation state machine: awaiting payment → waiting → active → closed, and the
side roads (not paid, timed out and refunded, cancelled); messages and attachments; ratings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from consult import selectors
from consult.errors import AttachmentRejected, ConsultationNotOpen, NotYourConsultation, RatingNotAllowed
from consult.models import Consultation, ConsultationEvent, Message, Record
from consult.services import attachments, consultations, triage_rules
from payments.models import Order, Refund
from portal.notifications.models import InboxMessage, OutboxEvent
from portal.notifications.services import outbox_deliver_now
from tests.consult.helpers import (
    make_online_doctor,
    make_patient,
    pay,
    refund_callback,
    start_consultation,
)
from tests.helpers import in_schema

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_consultation_paid_then_answered_then_closed_becomes_a_record(hospital_a, alpha_doctor):
    doctor, doctor_user = alpha_doctor
    user, member = make_patient("问诊")
    with in_schema(hospital_a):
        c = start_consultation(doctor=doctor, user=user, member=member)
        assert c.status == "awaiting_payment" and c.fee_fen == 3000
        assert c.order.kind == Order.Kind.CONSULTATION and c.order.self_pay_fen == 3000
        c = pay(c)
        assert c.status == "waiting"
        hours = selectors.consult_settings().response_hours
        assert c.deadline_at - c.paid_at == timedelta(hours=hours)
        consultations.message_send(consultation=c, author=user, body="还有点发热")
        c.refresh_from_db()
        assert c.status == "waiting"  # a patient's message does not stop the clock
        consultations.message_send(consultation=c, author=doctor_user, body="多喝水，观察体温。")
        c.refresh_from_db()
        assert c.status == "active" and c.first_response_at is not None
        record = consultations.consultation_close(consultation=c, by=doctor_user,
                                                  summary="上呼吸道感染，对症处理。")
        c.refresh_from_db()
        assert c.status == "closed"
        assert record.kind == Record.Kind.CONSULTATION_SUMMARY
        assert record.patient_card == c.patient_card and record.body == "上呼吸道感染，对症处理。"
        actions = list(ConsultationEvent.objects.filter(consultation=c).values_list("action", flat=True))
        assert actions == ["created", "paid", "answered", "closed"]
        consultations.consultation_rate(consultation=c, by=user, rating=5, comment="很耐心")
        with pytest.raises(RatingNotAllowed):
            consultations.consultation_rate(consultation=c, by=user, rating=4)
    outbox_deliver_now()
    kinds = set(InboxMessage.objects.filter(user=user).values_list("kind", flat=True))
    assert {"consult_reply", "consult_closed", "payment_succeeded"} <= kinds


def test_consultation_rating_refused_before_close_and_out_of_range(hospital_a, alpha_doctor):
    doctor, doctor_user = alpha_doctor
    user, member = make_patient("评分")
    with in_schema(hospital_a):
        c = pay(start_consultation(doctor=doctor, user=user, member=member))
        with pytest.raises(RatingNotAllowed):
            consultations.consultation_rate(consultation=c, by=user, rating=5)
        consultations.message_send(consultation=c, author=doctor_user, body="你好")
        consultations.consultation_close(consultation=c, by=doctor_user, summary="好")
        for bad in (0, 6):
            with pytest.raises(RatingNotAllowed):
                consultations.consultation_rate(consultation=c, by=user, rating=bad)


def test_consultation_unpaid_order_closing_cancels_it(hospital_a, alpha_doctor):
    doctor, _ = alpha_doctor
    user, member = make_patient("未付")
    with in_schema(hospital_a):
        c = start_consultation(doctor=doctor, user=user, member=member)
        Order.objects.filter(pk=c.order_id).update(expires_at=timezone.now() - timedelta(seconds=1))
        from payments import services as pay_svc

        assert pay_svc.orders_close_expired() >= 1
        c.refresh_from_db()
        assert c.status == "cancelled"
        with pytest.raises(ConsultationNotOpen):
            consultations.message_send(consultation=c, author=user, body="在吗")


def test_consultation_timeout_refunds_and_tells_patient(hospital_a, alpha_doctor, sandbox):
    doctor, doctor_user = alpha_doctor
    user, member = make_patient("超时")
    with in_schema(hospital_a):
        c = start_consultation(doctor=doctor, user=user, member=member)
        _pay_at_sandbox(sandbox, c)
        c = pay(c)
        # Not yet due: nothing happens.
        assert consultations.consultation_timeout_and_refund(consultation_id=c.pk) is False
        assert Consultation.objects.get(pk=c.pk).status == "waiting"
        Consultation.objects.filter(pk=c.pk).update(deadline_at=timezone.now() - timedelta(minutes=1))
        consultations.consultations_timeout_due()
        c.refresh_from_db()
        assert c.status == "timed_out"
        refund = Refund.objects.get(order_id=c.order_id)
        assert refund.amount_fen == 3000 and refund.provider_refund_id  # sent to the provider
        refund_callback(c.order)  # the provider confirms
        assert consultations.consultations_timeout_due() == 1  # the next run settles it
        c.refresh_from_db()
        assert c.status == "refunded"
        assert Order.objects.get(pk=c.order_id).status == Order.Status.REFUNDED
        # A doctor replying too late is refused; running the job again changes nothing.
        with pytest.raises(ConsultationNotOpen):
            consultations.message_send(consultation=c, author=doctor_user, body="抱歉来晚了")
        consultations.consultations_timeout_due()
        assert Refund.objects.filter(order_id=c.order_id).count() == 1
        assert OutboxEvent.objects.filter(kind="consult_timed_out", recipients=[user.pk]).count() == 1


def test_consultation_doctor_reply_after_deadline_refused_before_job_runs(hospital_a, alpha_doctor):
    doctor, doctor_user = alpha_doctor
    user, member = make_patient("临界")
    with in_schema(hospital_a):
        c = pay(start_consultation(doctor=doctor, user=user, member=member))
        Consultation.objects.filter(pk=c.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
        with pytest.raises(ConsultationNotOpen):
            consultations.message_send(consultation=c, author=doctor_user, body="来了")
        assert Message.objects.filter(consultation=c).count() == 0


def test_consultation_only_patient_and_its_doctor_may_write(hospital_a, alpha_doctor, other_patient):
    doctor, doctor_user = alpha_doctor
    user, member = make_patient("隐私")
    with in_schema(hospital_a):
        other_doctor, other_doctor_user = make_online_doctor(hospital_a)
        c = pay(start_consultation(doctor=doctor, user=user, member=member))
        for outsider in (other_patient, other_doctor_user):
            with pytest.raises(NotYourConsultation):
                consultations.message_send(consultation=c, author=outsider, body="偷看")
        with pytest.raises(NotYourConsultation):
            consultations.consultation_close(consultation=c, by=user, summary="自己关")


def test_department_consultation_is_claimed_by_the_first_doctor_who_answers(hospital_a):
    from registration.models import Department

    user, member = make_patient("科室")
    with in_schema(hospital_a):
        doctor, doctor_user = make_online_doctor(hospital_a, department="respiratory")
        dept = Department.objects.get(code="respiratory")
        triage = triage_rules.triage_submit(account=user, family_member=member, department=dept, answers={
            "symptoms": ["cough"], "duration": "1", "pregnant": "na"})
        c = consultations.consultation_start(triage=triage, account=user, question="咳嗽")
        assert c.doctor is None and c.fee_fen == selectors.consult_settings().department_fee_fen
        c = pay(c)
        consultations.message_send(consultation=c, author=doctor_user, body="我来回答")
        c.refresh_from_db()
        assert (c.status, c.doctor_id) == ("active", doctor.pk)


def test_consultation_attachments_checked_for_type_and_size(hospital_a, alpha_doctor, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    doctor, _ = alpha_doctor
    user, member = make_patient("附件")
    with in_schema(hospital_a):
        c = pay(start_consultation(doctor=doctor, user=user, member=member))
        msg = consultations.message_send(consultation=c, author=user, body="",
                                         attachment=SimpleUploadedFile("舌苔.png", PNG, "image/png"))
        assert msg.attachment_type == "image/png" and msg.attachment.name.endswith(".png")
        assert f"consult/{hospital_a.schema_name}/" in msg.attachment.name  # tenant-prefixed path
        with pytest.raises(AttachmentRejected):  # a script named like a picture
            consultations.message_send(consultation=c, author=user, attachment=SimpleUploadedFile(
                "x.png", b"<script>alert(1)</script>", "image/png"))
        big = SimpleUploadedFile("big.png", PNG + b"\x00" * (attachments.MAX_ATTACHMENT_BYTES + 1),
                                 "image/png")
        with pytest.raises(AttachmentRejected):
            consultations.message_send(consultation=c, author=user, attachment=big)
        assert Message.objects.filter(consultation=c).count() == 1


def test_consultation_cancel_while_waiting_refunds(hospital_a, alpha_doctor, sandbox,
                                                   django_capture_on_commit_callbacks):
    doctor, _ = alpha_doctor
    user, member = make_patient("取消")
    with in_schema(hospital_a):
        c = start_consultation(doctor=doctor, user=user, member=member)
        _pay_at_sandbox(sandbox, c)
        c = pay(c)
        with django_capture_on_commit_callbacks() as after_commit:
            c = consultations.consultation_cancel(consultation=c, by=user)
        # Submitted once, here: no worker is also handed the same refund after commit.
        assert not [f for f in after_commit if "refund_gone_locked" in f.__qualname__]
        assert c.status == "cancelled"
        refund = Refund.objects.get(order_id=c.order_id)
        assert refund.amount_fen == 3000 and refund.provider_refund_id
        with pytest.raises(ConsultationNotOpen):
            consultations.consultation_cancel(consultation=c, by=user)


def _pay_at_sandbox(sandbox_app, c):
    """Make the sandbox provider hold the payment too, so it accepts the refund."""
    from payments import services as pay_svc
    from tests.payments.helpers import sandbox_hook

    pay_svc.provider_for().create_payment(pay_svc.PaymentRequest(
        out_trade_no=c.order.out_trade_no, amount_fen=c.order.self_pay_fen, description="consult",
        notify_url="http://127.0.0.1:9/", return_url="",
        expires_at=timezone.now() + timedelta(hours=1)))
    sandbox_hook(sandbox_app, "/_test/pay", {"mchid": "sbx_alpha", "out_trade_no": c.order.out_trade_no,
                                             "deliver": False})


def test_jpeg_attachment_loses_its_exif_location(hospital_a, alpha_doctor, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    exif = b"Exif\x00\x00GPSLatitude=30.25N;GPSLongitude=120.16E"
    app1 = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    jfif = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    app0 = b"\xff\xe0" + (len(jfif) + 2).to_bytes(2, "big") + jfif
    scan = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x12\x34" * 20 + b"\xff\xd9"
    photo = b"\xff\xd8" + app0 + app1 + scan
    doctor, _ = alpha_doctor
    user, member = make_patient("照片")
    with in_schema(hospital_a):
        c = pay(start_consultation(doctor=doctor, user=user, member=member))
        msg = consultations.message_send(consultation=c, author=user,
                                         attachment=SimpleUploadedFile("IMG_0001.JPG", photo, "image/jpeg"))
        stored = msg.attachment.open("rb").read()
        assert stored == b"\xff\xd8" + app0 + scan  # JFIF header and image data kept
        assert b"GPS" not in stored and msg.attachment_size == len(stored)
        assert msg.attachment_type == "image/jpeg" and msg.attachment.name.endswith(".jpg")
