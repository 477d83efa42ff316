"""FHIR R4 facade: bundles and resources validate with fhir.resources (R4B models, which are
R4-compatible for these resources: fhir.resources 8 ships R5 and R4B, no separate R4)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.schedule import Schedule
from fhir.resources.R4B.slot import Slot

from registration.models import TimeSlice
from tests.helpers import HOSPITAL_A, in_schema
from tests.partners.helpers import ApiClient, patient_body

MODELS = {"Practitioner": Practitioner, "Schedule": Schedule, "Slot": Slot,
          "Appointment": Appointment}


@pytest.fixture
def fhir_a(partner_a):
    return ApiClient(partner_a[2], prefix=f"/fhir/r4/{HOSPITAL_A['code']}")


def _bundle(response) -> dict:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/fhir+json")
    body = response.json()
    Bundle.model_validate(body)
    assert body["type"] == "searchset"
    for entry in body["entry"]:
        MODELS[entry["resource"]["resourceType"]].model_validate(entry["resource"])
    return body


def test_fhir_metadata_is_a_capability_statement(fhir_a):
    body = fhir_a.get("metadata").json()
    CapabilityStatement.model_validate(body)
    assert body["fhirVersion"] == "4.0.1"
    assert {r["type"] for r in body["rest"][0]["resource"]} == set(MODELS)


def test_fhir_bundles_validate_and_page(fhir_a, api_a, slot_a):
    doctor, schedule, first = slot_a
    api_a.post("bookings/", {"slot": first.pk, "patient": patient_body()})
    for kind in MODELS:
        body = _bundle(fhir_a.get(kind))
        assert body["total"] >= 1, kind
    page = _bundle(fhir_a.get("Slot", {"schedule": f"Schedule/{schedule.pk}", "_count": 3}))
    assert page["total"] == 4 and len(page["entry"]) == 3
    nxt = next(link["url"] for link in page["link"] if link["relation"] == "next")
    second = _bundle(fhir_a.client.get(nxt, headers={"X-Api-Key": fhir_a.key}))
    assert len(second["entry"]) == 1
    assert any(link["relation"] == "previous" for link in second["link"])
    for kind, pk in (("Practitioner", doctor.pk), ("Schedule", schedule.pk), ("Slot", first.pk)):
        MODELS[kind].model_validate(fhir_a.get(f"{kind}/{pk}").json())


def test_fhir_slot_search_by_start_status_service_type(hospital_a, fhir_a, slot_a):
    doctor, schedule, first = slot_a
    with in_schema(hospital_a):
        TimeSlice.objects.filter(pk=first.pk).update(booked=first.capacity)
        slices = list(TimeSlice.objects.filter(schedule=schedule).order_by("start"))
    ref = f"Schedule/{schedule.pk}"
    free = _bundle(fhir_a.get("Slot", {"schedule": ref, "status": "free"}))
    assert free["total"] == 3
    busy = _bundle(fhir_a.get("Slot", {"schedule": ref, "status": "busy"}))
    assert [e["resource"]["id"] for e in busy["entry"]] == [str(first.pk)]
    start = slices[1].start.isoformat()
    ge = _bundle(fhir_a.client.get(f"/fhir/r4/alpha/Slot?schedule={ref}&start=ge{start}",
                                   headers={"X-Api-Key": fhir_a.key}))
    assert ge["total"] == 3
    le = _bundle(fhir_a.get("Slot", {"schedule": ref, "start": f"le{start}"}))
    assert le["total"] == 2
    day = (schedule.date + timedelta(days=1)).isoformat()
    assert _bundle(fhir_a.get("Slot", {"schedule": ref, "start": f"ge{day}"}))["total"] == 0
    by_type = _bundle(fhir_a.get("Slot", {"service-type": "urn:hospital-portal:department|"
                                                          "cardiology", "schedule": ref}))
    assert by_type["total"] == 4
    assert _bundle(fhir_a.get("Slot", {"service-type": "dermatology",
                                       "schedule": ref}))["total"] == 0


def test_fhir_appointments_are_own_bookings_only(hospital_a, fhir_a, api_a, slot_a):
    from registration.services import booking as svc
    from tests.registration.helpers import make_patient

    ours = api_a.post("bookings/", {"slot": slot_a[2].pk, "patient": patient_body()}).json()
    user, member = make_patient()
    with in_schema(hospital_a):
        theirs = svc.booking_hold(slice_id=slot_a[2].pk, family_member=member, account=user)
    body = _bundle(fhir_a.get("Appointment"))
    assert [e["resource"]["id"] for e in body["entry"]] == [str(ours["id"])]
    assert body["entry"][0]["resource"]["status"] == "pending"
    missing = fhir_a.get(f"Appointment/{theirs.pk}")
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"


def test_fhir_grants_scopes_and_keys(partner_b, hospital_a, slot_a):
    from portal.partners.services import api_key_revoke
    from tests.partners.helpers import make_partner

    other = ApiClient(partner_b[2], prefix="/fhir/r4/alpha")
    for kind in ("metadata", "Slot", "Practitioner", "Schedule", "Appointment"):
        r = other.get(kind)
        assert r.status_code == 404 and r.json()["issue"][0]["code"] == "not-found"
    _, key, raw = make_partner(hospital_a, scopes=["bookings:read"])
    assert ApiClient(raw, prefix="/fhir/r4/alpha").get("Slot").status_code == 403
    api_key_revoke(api_key=key)
    r = ApiClient(raw, prefix="/fhir/r4/alpha").get("Appointment")
    assert r.status_code == 401 and r.json()["issue"][0]["details"]["text"] == "api_key_revoked"


def test_fhir_unknown_resource_is_an_operation_outcome(fhir_a):
    r = fhir_a.get("Patient")
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"


def test_fhir_not_yet_released_slots_are_busy(hospital_a, fhir_a):
    from datetime import timedelta

    from django.utils import timezone

    from tests.registration.helpers import make_session

    with in_schema(hospital_a):
        _, far = make_session(day=timezone.localdate() + timedelta(days=8), name="远期医生")
    ref = f"Schedule/{far.pk}"
    assert _bundle(fhir_a.get("Slot", {"schedule": ref, "status": "free"}))["total"] == 0
    busy = _bundle(fhir_a.get("Slot", {"schedule": ref, "status": "busy"}))
    assert busy["total"] == 4 and {e["resource"]["status"] for e in busy["entry"]} == {"busy"}
