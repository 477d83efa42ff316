"""What a partner integrating from the README and the docs tripped on: unknown
ids, loose filters, FHIR errors that did not say which parameter, an _offset that broke the
database, patient field errors outside `patient`, and schema gaps."""

from __future__ import annotations

import pytest

from registration.models import Booking, TimeSlice
from tests.helpers import HOSPITAL_A, in_schema
from tests.partners.helpers import ApiClient, patient_body


@pytest.fixture
def fhir_a(partner_a):
    return ApiClient(partner_a[2], prefix=f"/fhir/r4/{HOSPITAL_A['code']}")


def test_booking_an_unknown_slot_is_a_validation_error_not_sold_out(hospital_a, api_a, slot_a):
    with in_schema(hospital_a):
        unknown = (TimeSlice.objects.order_by("-pk").values_list("pk", flat=True).first()) + 1000
        before = Booking.objects.count()
    response = api_a.post("bookings/", {"slot": unknown, "patient": patient_body()}, idem="u-1")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["slot"][0]["code"] == "does_not_exist"
    with in_schema(hospital_a):
        assert Booking.objects.count() == before
    # a real slot still books
    response = api_a.post("bookings/", {"slot": slot_a[2].pk, "patient": patient_body()})
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("field,value", [("mobile", "12345"), ("name", "  ")])
def test_patient_field_errors_are_under_patient(api_a, slot_a, field, value):
    response = api_a.post("bookings/", {"slot": slot_a[2].pk,
                                        "patient": {**patient_body(), field: value}})
    assert response.status_code == 400, response.content
    details = response.json()["error"]["details"]
    assert list(details) == ["patient"] and field in details["patient"], details
    response = api_a.post("bills/", {"patient": {**patient_body(), field: value},
                                     "items": [{"name": "x", "unit_price_fen": 100}]})
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]["patient"]


@pytest.mark.parametrize("value", ["yes", "maybe", "2"])
def test_a_bad_available_filter_is_a_400_not_ignored(api_a, slot_a, value):
    for resource in ("slots/", "schedules/"):
        response = api_a.get(resource, {"available": value})
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert error["code"] == "validation_error" and "available" in error["details"]


@pytest.mark.parametrize("value,expected", [("true", True), ("1", True), ("TRUE", True),
                                            ("false", False), ("0", False)])
def test_available_filter_accepts_true_false_1_0(hospital_a, api_a, slot_a, value, expected):
    with in_schema(hospital_a):
        TimeSlice.objects.filter(pk=slot_a[2].pk).update(booked=TimeSlice.objects.get(
            pk=slot_a[2].pk).capacity)  # the first slot is full: not "available"
    response = api_a.get("slots/", {"available": value})
    assert response.status_code == 200, response.content
    ids = [r["id"] for r in response.json()["results"]]
    assert (slot_a[2].pk not in ids) is expected
    assert ids  # the other slots of the session are free either way


def test_fhir_validation_outcome_names_the_parameter(fhir_a, slot_a):
    response = fhir_a.get("Slot", {"start": "notadate"})
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["details"]["text"] == "validation_error"
    assert issue["expression"] == ["start"] and "notadate" in issue["diagnostics"]
    issue = fhir_a.get("Slot", {"status": "open"}).json()["issue"][0]
    assert issue["expression"] == ["status"]
    # errors without field details keep one plain issue
    issue = fhir_a.get("Slot/999999").json()["issue"][0]
    assert issue["code"] == "not-found" and "expression" not in issue


@pytest.mark.parametrize("offset", ["10000000000000000000", "1" + "0" * 30, "500"])
def test_fhir_offset_past_the_end_is_an_empty_page_not_a_500(fhir_a, slot_a, offset):
    response = fhir_a.get("Slot", {"_offset": offset})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["total"] > 0 and body.get("entry", []) == []
    previous = [link["url"] for link in body["link"] if link["relation"] == "previous"]
    assert previous and previous[0].endswith(f"_offset={max(0, body['total'] - 50)}")


def test_schema_documents_slot_status_webhook_events_and_415(api_a):
    from django.test import Client

    from tests.helpers import PLATFORM_HOST

    schema = Client(HTTP_HOST=PLATFORM_HOST).get("/api/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]

    def resolve(prop):
        ref = prop.get("$ref") or (prop.get("allOf") or [{}])[0].get("$ref")
        return components[ref.rsplit("/", 1)[1]] if ref else prop

    status = resolve(components["SlotOut"]["properties"]["status"])
    assert set(status["enum"]) == {"free", "busy", "not_yet_released"}
    events = components["EndpointOut"]["properties"]["events"]
    assert events["type"] == "array" and events["items"]["type"] == "string"
    post = schema["paths"]["/api/v1/hospitals/{hospital_code}/bookings/"]["post"]
    assert "415" in post["responses"]
    # and a POST without JSON answers what the schema says
    response = api_a.client.post(api_a.url("bookings/"), "slot=1",
                                 content_type="text/plain", headers={"X-Api-Key": api_a.key})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize("limit", ["abc", "0", "-1", "1.5"])
def test_a_bad_limit_is_a_400(api_a, slot_a, limit):
    response = api_a.get("slots/", {"limit": limit})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "limit" in error["details"]


def test_limit_above_the_maximum_is_capped_and_a_good_one_pages(api_a, slot_a):
    response = api_a.get("slots/", {"limit": "100000"})
    assert response.status_code == 200
    assert len(response.json()["results"]) <= 200
    page = api_a.get("slots/", {"limit": "2"}).json()
    assert len(page["results"]) == 2 and page["next"]
    from urllib.parse import urlsplit

    following = api_a.get("{0.path}?{0.query}".format(urlsplit(page["next"])))
    assert following.status_code == 200 and following.json()["results"][0]["id"] not in [
        r["id"] for r in page["results"]]


def test_a_damaged_cursor_is_a_400_on_cursor(api_a, slot_a):
    response = api_a.get("slots/", {"cursor": "garbage"})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "cursor" in error["details"]


def test_a_missing_trailing_slash_says_so(api_a, slot_a):
    response = api_a.get("/api/v1/hospitals/alpha/slots")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found" and "/api/v1/hospitals/alpha/slots/" in error["message"]
    response = api_a.client.post("/api/v1/hospitals/alpha/bookings", "{}",
                                 content_type="application/json",
                                 headers={"X-Api-Key": api_a.key})
    assert response.status_code == 404 and "bookings/" in response.json()["error"]["message"]
    # a path that is wrong either way keeps the plain message
    plain = api_a.get("/api/v1/hospitals/alpha/nothing").json()["error"]
    assert plain["code"] == "not_found" and "/" not in plain["message"]


def test_response_fields_always_present_are_required_in_the_schema(db):
    from django.test import Client

    from tests.helpers import PLATFORM_HOST

    schema = Client(HTTP_HOST=PLATFORM_HOST).get("/api/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]
    assert "HospitalOut" in components and "Output" not in components
    for name in ("HospitalOut", "BookingOut", "BillOut", "SlotOut", "ScheduleOut", "DoctorOut",
                 "DepartmentOut", "ReportOut", "EndpointOut", "ItemOut"):
        component = components[name]
        missing = set(component["properties"]) - set(component.get("required", []))
        # BillOut.department may be absent from the model but is always in the body (null)
        assert missing <= {"department"}, (name, missing)


def test_head_needs_the_scope_of_get(hospital_a, slot_a):
    from tests.partners.helpers import make_partner

    _partner, _key, raw = make_partner(hospital_a, scopes=["schedules:read"])
    client = ApiClient(raw, prefix=f"/api/v1/hospitals/{HOSPITAL_A['code']}")
    for resource in ("bookings/", "bills/", "webhooks/"):
        response = client.client.head(client.url(resource), headers={"X-Api-Key": raw})
        assert response.status_code == 403, (resource, response.status_code)
    response = client.client.head(client.url("slots/"), headers={"X-Api-Key": raw})
    assert response.status_code == 200
