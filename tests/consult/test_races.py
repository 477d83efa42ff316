"""Races on one consultation (threads on real connections): the doctor's first reply against
the patient's cancellation, and against the timeout job. One story wins, money follows it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from consult.errors import ConsultationNotOpen
from consult.models import Consultation, Message
from consult.services import consultations
from payments.models import Refund
from tests.consult.helpers import make_online_doctor, make_patient, pay, start_consultation
from tests.consult.test_consultations import _pay_at_sandbox
from tests.registration.test_races import _run_together


@pytest.fixture
def alpha(committed_hospital_a):
    hospital = committed_hospital_a
    connection.set_tenant(hospital)
    yield hospital
    connection.set_schema_to_public()


def test_race_first_reply_against_patient_cancel(alpha, sandbox):
    doctor, doctor_user = make_online_doctor(alpha, fee=1000)
    outcomes = set()
    for round_ in range(6):
        user, member = make_patient(f"竞态取消{round_}")
        c = start_consultation(doctor=doctor, user=user, member=member)
        _pay_at_sandbox(sandbox, c)
        c = pay(c)
        results = {}

        def reply():
            try:
                consultations.message_send(consultation=c, author=doctor_user, body="我来了")
                results["reply"] = True
            except ConsultationNotOpen:
                results["reply"] = False

        def cancel():
            try:
                consultations.consultation_cancel(consultation=c, by=user)
                results["cancel"] = True
            except ConsultationNotOpen:
                results["cancel"] = False

        assert _run_together(reply, cancel) == []
        connection.set_tenant(alpha)
        final = Consultation.objects.get(pk=c.pk)
        refunds = Refund.objects.filter(order_id=c.order_id).count()
        doctor_messages = Message.objects.filter(consultation=c, sender="doctor").count()
        assert results["reply"] != results["cancel"]  # exactly one of them happened
        if results["reply"]:
            assert (final.status, refunds, doctor_messages) == ("active", 0, 1)
        else:
            assert (final.status, refunds, doctor_messages) == ("cancelled", 1, 0)
        outcomes.add(final.status)
    assert outcomes <= {"active", "cancelled"}


def test_race_timeout_job_twice_refunds_once(alpha, sandbox):
    doctor, _ = make_online_doctor(alpha, fee=1200)
    user, member = make_patient("竞态超时")
    c = start_consultation(doctor=doctor, user=user, member=member)
    _pay_at_sandbox(sandbox, c)
    c = pay(c)
    Consultation.objects.filter(pk=c.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
    assert _run_together(*[lambda: consultations.consultation_timeout_and_refund(consultation_id=c.pk)
                           for _ in range(4)]) == []
    connection.set_tenant(alpha)
    assert Consultation.objects.get(pk=c.pk).status == "timed_out"
    assert Refund.objects.filter(order_id=c.order_id).count() == 1
