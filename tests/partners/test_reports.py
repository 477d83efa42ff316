"""Reports push (reports:write): a HIS pushes lab reports and records for a patient."""

from __future__ import annotations

from consult.models import Record
from tests.helpers import in_schema
from tests.partners.helpers import ApiClient, make_partner, patient_body

LAB = {"kind": "lab_report", "title": "血常规", "department": "cardiology",
       "items": [{"name": "白细胞计数", "code": "WBC", "value": "11.2", "unit": "10^9/L",
                  "reference_range": "3.5-9.5"},
                 {"name": "血红蛋白", "value": "135", "unit": "g/L",
                  "reference_range": "130-175"}]}


def test_reports_push_by_identity_then_by_record_number(hospital_a, api_a):
    from portal.notifications.models import OutboxEvent

    r = api_a.post("reports/", {**LAB, "patient": patient_body(), "external_id": "LIS-1"})
    assert r.status_code == 201, r.content
    body = r.json()
    assert [i["flag"] for i in body["items"]] == ["H", ""]  # worked out from the range
    assert body["external_id"] == "LIS-1" and body["patient"]["id_number"].count("*") == 8
    assert OutboxEvent.objects.filter(kind="report_ready", link=f"/records/{body['id']}/").exists()
    mrn = body["medical_record_number"]
    again = api_a.post("reports/", {"patient": {"medical_record_number": mrn},
                                    "kind": "imaging_report", "title": "胸部 CT",
                                    "conclusion": "未见明显异常"})
    assert again.status_code == 201 and again.json()["medical_record_number"] == mrn
    with in_schema(hospital_a):
        assert Record.objects.get(pk=again.json()["id"]).source == "api"


def test_reports_external_id_is_idempotent_per_partner(hospital_a, api_a):
    person = patient_body()
    first = api_a.post("reports/", {**LAB, "patient": person, "external_id": "LIS-7"})
    second = api_a.post("reports/", {**LAB, "patient": person, "external_id": "LIS-7"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    _, _, raw = make_partner(hospital_a)
    other = ApiClient(raw, prefix="/api/v1/hospitals/alpha")
    theirs = other.post("reports/", {**LAB, "patient": person, "external_id": "LIS-7"})
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]


def test_reports_bad_input_changes_nothing(hospital_a, api_a):
    with in_schema(hospital_a):
        before = Record.objects.count()
    cases = [
        ({"patient": {"medical_record_number": "0000"}, "kind": "visit_summary", "title": "x"},
         422, "unknown_patient"),
        ({**LAB, "kind": "imaging_report", "patient": patient_body()}, 422, "invalid_report"),
        ({"patient": {"name": "张三"}, "kind": "visit_summary", "title": "x"}, 400,
         "validation_error"),
        ({**LAB, "kind": "consultation_summary", "patient": patient_body()}, 400,
         "validation_error"),
    ]
    for body, status, code in cases:
        r = api_a.post("reports/", body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.content
    with in_schema(hospital_a):
        assert Record.objects.count() == before
