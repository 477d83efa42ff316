"""Consult test tools: patients of a given age and sex, online doctors with a staff login,
consultations started, paid and refunded as the provider's callbacks would."""

from __future__ import annotations

import itertools

from portal.accounts.services import family_member_add
from tests.helpers import make_staff, make_user

_seq = itertools.count(1)


def id_for(birth: str, sex: str = "M") -> str:
    """A valid resident ID number with the given birth date (yyyymmdd) and sex."""
    from portal.accounts.validators import id_check_digit

    first17 = f"110101{birth}{next(_seq) % 100:02d}{1 if sex == 'M' else 2}"
    return first17 + id_check_digit(first17)


def make_patient(name: str = "患者", birth: str = "19900307", sex: str = "M",
                 relation: str = "self"):
    user = make_user(name=name)
    member = family_member_add(account=user, name=name, relation=relation,
                               id_number=id_for(birth, sex))
    return user, member


def birth_days_ago(days: int) -> str:
    from datetime import timedelta

    from django.utils import timezone

    return (timezone.localdate() - timedelta(days=days)).strftime("%Y%m%d")


def make_online_doctor(hospital, *, fee: int = 3000, name: str | None = None,
                       department: str = "cardiology"):
    """A doctor-role staff account linked to a doctor who offers online consultation.
    Call with the hospital's schema active."""
    from consult.models import DoctorConsultProfile
    from registration.models import Department, Doctor

    name = name or f"线上医生{next(_seq)}"
    user = make_staff(hospital, "doctor", name=name)
    doctor = Doctor.objects.create(department=Department.objects.get(code=department),
                                   name=name, title="attending", account=user)
    DoctorConsultProfile.objects.create(doctor=doctor, fee_fen=fee)
    return doctor, user


BENIGN = {"symptoms": ["cough", "sore_throat"], "temperature": "37.2", "duration": "2",
          "duration_unit": "d", "pregnant": "na"}


def start_consultation(*, doctor, user, member, answers=None, question="咳嗽两天，要紧吗？"):
    from consult.services import consultations, triage_rules

    triage = triage_rules.triage_submit(account=user, family_member=member, answers=answers or BENIGN,
                                        doctor=doctor)
    return consultations.consultation_start(triage=triage, account=user, question=question)


def pay(consultation, txn: str | None = None):
    """The provider's paid notice for a consultation's order (as the callback would apply)."""
    from payments import services as pay_svc
    from payments.providers.base import Notice

    order = consultation.order
    txn = txn or f"T{order.out_trade_no}"
    pay_svc.notice_apply(provider="sandbox", notice=Notice(
        notification_id=f"n-{txn}", kind="payment", out_trade_no=order.out_trade_no,
        status="paid", amount_fen=order.self_pay_fen, currency="CNY", provider_txn_id=txn))
    consultation.refresh_from_db()
    return consultation


def refund_callback(order):
    """The provider's "refund succeeded" callback for each pending refund of an order."""
    from payments import services as pay_svc
    from payments.models import Refund
    from payments.providers.base import Notice

    for refund in Refund.objects.filter(order=order, status="pending"):
        pay_svc.notice_apply(provider="sandbox", notice=Notice(
            notification_id=f"r-{refund.out_refund_no}", kind="refund",
            out_trade_no=order.out_trade_no, status="succeeded", amount_fen=refund.amount_fen,
            currency="CNY", out_refund_no=refund.out_refund_no,
            provider_refund_id=refund.provider_refund_id or "SBR-test"))
