"""Records and reports: created by staff or partners through one service, read only through
`record_access` (every read logged), visible only to the owning account, never across
hospitals."""

from __future__ import annotations

import pytest

from consult.errors import InvalidReport, RecordNotFound
from consult.models import Record, RecordAccess
from consult.services import consultations, records
from portal.notifications.models import InboxMessage, OutboxEvent
from portal.notifications.services import outbox_deliver_now
from tests.consult.helpers import make_patient
from tests.helpers import host_client, in_schema, make_staff

LIPIDS = [
    {"name": "总胆固醇", "code": "TC", "value": "6.8", "unit": "mmol/L", "reference_range": "2.8-5.2"},
    {"name": "甘油三酯", "code": "TG", "value": "1.2", "unit": "mmol/L", "reference_range": "<1.7"},
    {"name": "高密度脂蛋白", "code": "HDL", "value": "0.8", "unit": "mmol/L", "reference_range": ">1.0"},
    {"name": "尿蛋白", "value": "阳性(+)", "reference_range": "阴性", "flag": "A"},
]


def _lab_report(member, **extra):
    return records.report_create(kind=Record.Kind.LAB_REPORT, title="血脂四项", family_member=member,
                                 items=LIPIDS, doctor_name="李医生", **extra)


def test_report_create_flags_abnormal_values_and_tells_patient(hospital_a):
    user, member = make_patient("化验")
    with in_schema(hospital_a):
        record = _lab_report(member)
        flags = {i.code or i.name: i.flag for i in record.items.all()}
        assert flags == {"TC": "H", "TG": "", "HDL": "L", "尿蛋白": "A"}
        assert OutboxEvent.objects.filter(kind="report_ready", recipients=[user.pk]).count() == 1
    outbox_deliver_now()
    msg = InboxMessage.objects.get(user=user, kind="report_ready")
    assert "血脂四项" in msg.title and msg.link == f"/records/{record.pk}/"


def test_report_create_is_idempotent_on_external_id(hospital_a):
    _, member = make_patient("合作方")
    with in_schema(hospital_a):
        first = _lab_report(member, source="partner", external_id="HIS-0001")
        again = _lab_report(member, source="partner", external_id="HIS-0001")
        assert first.pk == again.pk and Record.objects.filter(external_id="HIS-0001").count() == 1
        assert OutboxEvent.objects.filter(kind="report_ready", link=f"/records/{first.pk}/").count() == 1


@pytest.mark.parametrize(("kind", "items", "code"), [
    ("nonsense", [], "invalid_report"),
    ("imaging_report", LIPIDS, "invalid_report"),
    ("lab_report", [{"name": "x"}], "invalid_report"),
    ("lab_report", [{"name": "x", "value": "1", "flag": "Z"}], "invalid_report"),
])
def test_report_create_refuses_bad_input_and_writes_nothing(hospital_a, kind, items, code):
    _, member = make_patient("坏数据")
    with in_schema(hospital_a):
        before = Record.objects.count()
        with pytest.raises(InvalidReport) as exc:
            records.report_create(kind=kind, title="t", family_member=member, items=items)
        assert exc.value.code == code and Record.objects.count() == before


def test_record_access_gate_admits_owner_and_clinical_staff_and_logs_every_read(
        hospital_a, other_patient, admin_a, registrar_a):
    user, member = make_patient("门禁")
    doctor_user = make_staff(hospital_a, "doctor")
    with in_schema(hospital_a):
        record = _lab_report(member)
        for reader, via in ((user, "patient_page"), (admin_a, "admin"), (doctor_user, "admin")):
            assert records.record_access(record_id=record.pk, user=reader, via=via).pk == record.pk
        for outsider in (other_patient, registrar_a, None):
            with pytest.raises(RecordNotFound):
                records.record_access(record_id=record.pk, user=outsider, via="patient_page")
        with pytest.raises(RecordNotFound):
            records.record_access(record_id=record.pk + 10_000, user=user, via="patient_page")
        log = list(RecordAccess.objects.filter(record=record).order_by("pk")
                   .values_list("user_id", "via"))
        assert log == [(user.pk, "patient_page"), (admin_a.pk, "admin"), (doctor_user.pk, "admin")]


def test_record_pages_show_own_records_with_abnormal_values_and_log_the_read(hospital_a, client_a):
    user, member = make_patient("看报告")
    with in_schema(hospital_a):
        record = _lab_report(member)
    client_a.force_login(user)
    listing = client_a.get("/records/")
    assert listing.status_code == 200 and "血脂四项" in listing.content.decode()
    page = client_a.get(f"/records/{record.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('class="abnormal"') == 3  # TC high, HDL low, urine protein abnormal
    with in_schema(hospital_a):
        assert RecordAccess.objects.filter(record=record, user=user, via="patient_page").count() == 1


def test_record_of_another_account_is_404_by_id_and_not_listed(hospital_a, client_a, other_patient):
    _, member = make_patient("别人的报告")
    with in_schema(hospital_a):
        record = _lab_report(member)
    client_a.force_login(other_patient)
    assert client_a.get(f"/records/{record.pk}/").status_code == 404
    assert client_a.get("/records/999999/").status_code == 404
    assert "血脂四项" not in client_a.get("/records/").content.decode()
    with in_schema(hospital_a):
        assert not RecordAccess.objects.filter(record=record).exists()
    # Not signed in: to the login page, never the record.
    anonymous = host_client("alpha.localhost")
    assert anonymous.get(f"/records/{record.pk}/").status_code == 302


def test_record_in_admin_is_read_through_the_gate_and_never_across_hospitals(
        hospital_a, hospital_b, admin_a, admin_b):
    _, member = make_patient("跨院")
    with in_schema(hospital_a):
        record = _lab_report(member)
    url = f"/admin/consult/record/{record.pk}/change/"
    page = host_client("alpha.localhost", admin_a).get(url)
    assert page.status_code == 200 and "血脂四项" in page.content.decode()
    with in_schema(hospital_a):
        assert RecordAccess.objects.filter(record=record, user=admin_a, via="admin").count() == 1
    # B's admin, on B's site: the id means nothing there; on A's site: not admitted.
    other = host_client("beta.localhost", admin_b).get(url)
    assert "血脂四项" not in other.content.decode()
    assert host_client("alpha.localhost", admin_b).get(url).status_code == 302  # to login
    # The access log: hospital admins read it; doctors do not.
    log = host_client("alpha.localhost", admin_a).get("/admin/consult/recordaccess/")
    assert log.status_code == 200 and "血脂四项" in log.content.decode()
    doctor_user = make_staff(hospital_a, "doctor")
    assert host_client("alpha.localhost", doctor_user).get(
        "/admin/consult/recordaccess/").status_code == 403


def test_record_created_in_admin_flags_items_and_notifies(hospital_a, admin_a):
    user, member = make_patient("后台录入")
    with in_schema(hospital_a):
        from registration.services.patients import patient_card_for

        card = patient_card_for(family_member=member)
    client = host_client("alpha.localhost", admin_a)
    data = {"medical_record_number": card.medical_record_number, "kind": "lab_report",
            "title": "血常规", "department": "", "doctor_name": "王医生", "issued_at_0": "",
            "issued_at_1": "", "body": "", "conclusion": "",
            "items-TOTAL_FORMS": "1", "items-INITIAL_FORMS": "0", "items-MIN_NUM_FORMS": "0",
            "items-MAX_NUM_FORMS": "1000", "items-0-name": "白细胞", "items-0-value": "12.5",
            "items-0-unit": "10^9/L", "items-0-reference_range": "3.5-9.5", "items-0-flag": "",
            "items-0-sort_order": "0", "items-0-code": "WBC"}
    response = client.post("/admin/consult/record/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    with in_schema(hospital_a):
        record = Record.objects.get(title="血常规", patient_card=card)
        assert record.created_by == admin_a and record.items.get().flag == "H"
        assert OutboxEvent.objects.filter(kind="report_ready", recipients=[user.pk]).exists()


def test_report_create_by_medical_record_number_for_partners(hospital_a):
    from registration.services.patients import patient_card_for

    user, member = make_patient("病历号")
    with in_schema(hospital_a):
        card = patient_card_for(family_member=member)
        record = records.report_create(kind="imaging_report", title="胸部 CT",
                                       medical_record_number=card.medical_record_number,
                                       body="双肺纹理清晰。", conclusion="未见明显异常。",
                                       source="partner", external_id="PACS-77")
        assert record.patient_card == card and record.source == "partner"
        with pytest.raises(InvalidReport) as exc:
            records.report_create(kind="imaging_report", title="x", medical_record_number="0000")
        assert exc.value.code == "unknown_patient"


def test_consultations_in_admin_never_cross_hospitals(hospital_a, hospital_b, admin_a, admin_b):
    from tests.consult.helpers import make_online_doctor, pay, start_consultation

    user, member = make_patient("后台跨院")
    with in_schema(hospital_a):
        doctor, _ = make_online_doctor(hospital_a)
        c = pay(start_consultation(doctor=doctor, user=user, member=member,
                                   question="只在甲院可见的问题"))
    url = f"/admin/consult/consultation/{c.pk}/change/"
    assert "只在甲院可见的问题" in host_client("alpha.localhost", admin_a).get(url).content.decode()
    assert "只在甲院可见的问题" not in host_client("beta.localhost", admin_b).get(url).content.decode()
    listing = host_client("beta.localhost", admin_b).get("/admin/consult/consultation/")
    assert listing.status_code == 200 and "后台跨院" not in listing.content.decode()


def test_consultation_summary_in_admin_is_read_through_the_record_gate(hospital_a, admin_a):
    from tests.consult.helpers import make_online_doctor, pay, start_consultation

    user, member = make_patient("小结")
    with in_schema(hospital_a):
        doctor, doctor_user = make_online_doctor(hospital_a)
        c = pay(start_consultation(doctor=doctor, user=user, member=member))
        consultations.message_send(consultation=c, author=doctor_user, body="好")
        record = consultations.consultation_close(consultation=c, by=doctor_user, summary="只在病历中的小结")
    client = host_client("alpha.localhost", admin_a)
    page = client.get(f"/admin/consult/consultation/{c.pk}/change/").content.decode()
    assert "只在病历中的小结" not in page and f"/admin/consult/record/{record.pk}/change/" in page
    assert "只在病历中的小结" in client.get(f"/admin/consult/record/{record.pk}/change/").content.decode()
    with in_schema(hospital_a):
        assert RecordAccess.objects.filter(record=record, user=admin_a, via="admin").count() == 1
