"""`seed_demo` gives 滨江 an online doctor with a workbench login and the demo patient a lab
report with abnormal values, once however often it runs."""

from __future__ import annotations

from django.core.management import call_command


def test_seed_demo_adds_online_doctor_and_abnormal_lab_report_idempotently(db):
    from django_tenants.utils import tenant_context

    from consult.models import DoctorConsultProfile, Record
    from portal.accounts.models import StaffMembership, User
    from tenants import demo
    from tenants.models import Hospital

    call_command("seed_demo")
    call_command("seed_demo")
    hospital = Hospital.objects.get(code="binjiang")
    account = User.objects.get(phone=demo.CONSULT_DOCTOR["account"]["phone"])
    assert StaffMembership.objects.get(user=account, hospital=hospital).role == "doctor"
    with tenant_context(hospital):
        profile = DoctorConsultProfile.objects.get(doctor__name=demo.CONSULT_DOCTOR["doctor"])
        assert profile.is_enabled and profile.doctor.account_id == account.pk
        report = Record.objects.get(external_id=demo.LAB_REPORT["external_id"])
        assert report.patient_card.family_member.account.phone == demo.PATIENT["phone"]
        assert {i.code: i.flag for i in report.items.all()} == {"TC": "H", "TG": "", "HDL": "",
                                                                "LDL": "H"}
