"""Booking through the API obeys every registration rule, with the documented codes, and
changes nothing when it refuses; cancel; bills; partner webhooks see only their own bookings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.partners.services import patient_resolve
from registration.models import Booking, BookingBan, Schedule, TimeSlice
from tests.helpers import in_schema
from tests.partners.helpers import patient_body
from tests.registration.helpers import make_session


def _first(schedule):
    return TimeSlice.objects.filter(schedule=schedule).order_by("start").first()


@pytest.mark.parametrize("rule", ["sold_out", "limit", "duplicate", "banned", "stopped",
                                  "not_released", "past", "mismatch", "bad_id", "bad_mobile"])
def test_booking_api_rules_refuse_with_documented_code(hospital_a, api_a, rule):
    person = patient_body()
    with in_schema(hospital_a):
        _, schedule = make_session(capacity=1)
        target = _first(schedule)
    expected = {"sold_out": (409, "slot_sold_out"), "limit": (409, "booking_limit_reached"),
                "duplicate": (409, "duplicate_booking"), "banned": (409, "patient_banned"),
                "stopped": (409, "schedule_stopped"), "not_released": (409, "not_yet_released"),
                "past": (409, "slot_in_the_past"), "mismatch": (422, "patient_mismatch"),
                "bad_id": (400, "validation_error"), "bad_mobile": (400, "validation_error")}[rule]
    body = {"slot": target.pk, "patient": person}
    if rule == "sold_out":
        assert api_a.post("bookings/", {"slot": target.pk,
                                        "patient": patient_body()}).status_code == 201
    elif rule == "limit":
        for i in range(3):
            with in_schema(hospital_a):
                _, other = make_session(name=f"医生{i}")
                other_slot = _first(other).pk
            assert api_a.post("bookings/", {"slot": other_slot, "patient": person}
                              ).status_code == 201
    elif rule == "duplicate":
        with in_schema(hospital_a):
            second = TimeSlice.objects.filter(schedule=schedule).order_by("start")[1]
        assert api_a.post("bookings/", {"slot": second.pk, "patient": person}).status_code == 201
    elif rule == "banned":
        _, member = patient_resolve(**person)
        with in_schema(hospital_a):
            BookingBan.objects.create(family_member=member, reason="3 次爽约",
                                      until=timezone.localdate() + timedelta(days=30))
    elif rule == "stopped":
        with in_schema(hospital_a):
            Schedule.objects.filter(pk=schedule.pk).update(status="stopped")
    elif rule == "not_released":
        with in_schema(hospital_a):
            _, far = make_session(day=timezone.localdate() + timedelta(days=8), name="远期医生")
            body["slot"] = _first(far).pk
    elif rule == "past":
        with in_schema(hospital_a):
            _, old = make_session(day=timezone.localdate() - timedelta(days=1), name="昨日医生")
            body["slot"] = _first(old).pk
    elif rule == "mismatch":
        patient_resolve(**person)
        body["patient"] = {**person, "name": "李四"}
    elif rule == "bad_id":
        body["patient"] = {**person, "id_number": person["id_number"][:-1] +
                           ("0" if person["id_number"][-1] != "0" else "1")}
    elif rule == "bad_mobile":
        body["patient"] = {**person, "mobile": "12345"}
    with in_schema(hospital_a):
        before = (Booking.objects.count(), TimeSlice.objects.get(pk=body["slot"]).booked)
    response = api_a.post("bookings/", body)
    assert response.status_code == expected[0], response.content
    error = response.json()["error"]
    assert error["code"] == expected[1] and error["message"]
    if rule == "bad_id":
        # under "patient", where the request has the field (as for a missing patient.name)
        assert error["details"]["patient"]["id_number"][0]["code"] == "id_bad_check_digit"
    with in_schema(hospital_a):
        assert (Booking.objects.count(), TimeSlice.objects.get(pk=body["slot"]).booked) == before


def test_booking_api_creates_account_and_member_once(api_a, slot_a):
    from portal.accounts.models import FamilyMember, User

    person = patient_body(name="王芳")
    first = api_a.post("bookings/", {"slot": slot_a[2].pk, "patient": person}).json()
    assert first["patient"]["id_number"].count("*") == 8  # masked, never in full
    assert first["patient"]["name"] == "王芳"
    user = User.objects.get(phone=person["mobile"])
    assert not user.has_usable_password()
    member = FamilyMember.objects.get(account=user)
    assert (member.name, member.relation, member.id_number) == ("王芳", "self",
                                                                person["id_number"])


def test_booking_api_uses_existing_account_and_adds_member(api_a, slot_a, patient):
    from portal.accounts.models import FamilyMember

    person = patient_body(name="小明", mobile=patient.phone)
    assert api_a.post("bookings/", {"slot": slot_a[2].pk, "patient": person}).status_code == 201
    member = FamilyMember.objects.get(account=patient, id_number=person["id_number"])
    assert member.relation == "other"


def test_booking_api_records_partner_and_source(hospital_a, partner_a, api_a, slot_a):
    from portal.partners.models import PartnerRecord

    body = api_a.post("bookings/", {"slot": slot_a[2].pk, "patient": patient_body()}).json()
    assert PartnerRecord.objects.get(kind="booking", object_id=body["id"],
                                     hospital=hospital_a).partner_id == partner_a[0].pk
    with in_schema(hospital_a):
        booking = Booking.objects.get(pk=body["id"])
        assert booking.source == "api" and booking.events.first().source == "api"


def test_booking_api_returns_cashier_url_from_provider(sandbox, api_a, slot_a):
    body = api_a.post("bookings/", {"slot": slot_a[2].pk, "patient": patient_body()}).json()
    payment = body["payment"]
    assert payment["cashier_url"].startswith(sandbox.base_url + "/cashier/")
    assert payment["amount_fen"] == 2000 and payment["expires_at"].endswith("+08:00")


def test_booking_api_read_and_cancel(hospital_a, api_a, api_a_host, slot_a):
    created = api_a.post("bookings/", {"slot": slot_a[2].pk, "patient": patient_body()}).json()
    assert api_a_host.get(f"bookings/{created['id']}/").json()["status"] == "held"
    assert [b["id"] for b in api_a.get("bookings/").json()["results"]] == [created["id"]]
    cancelled = api_a.post(f"bookings/{created['id']}/cancel/", {"reason": "改期"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["payment"]["status"] == "closed"
    again = api_a.post(f"bookings/{created['id']}/cancel/", {})
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_cancellable"
    with in_schema(hospital_a):
        assert TimeSlice.objects.get(pk=slot_a[2].pk).booked == 0


def test_booking_api_cancel_after_cutoff_refused(hospital_a, api_a):
    with in_schema(hospital_a):
        _, schedule = make_session(fee=0, name="义诊医生")
        slot = _first(schedule)
    created = api_a.post("bookings/", {"slot": slot.pk, "patient": patient_body()}).json()
    assert created["status"] == "confirmed" and created["payment"] is None
    hospital_a.cancel_cutoff_hour = 0  # saved (not .update()): caches of hospitals follow saves
    hospital_a.save(update_fields=["cancel_cutoff_hour"])
    response = api_a.post(f"bookings/{created['id']}/cancel/", {})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "cancel_cutoff_passed"


def test_bills_create_and_read(hospital_a, api_a):
    person = patient_body()
    response = api_a.post("bills/", {"patient": person, "department": "cardiology",
                                     "doctor_name": "王建国", "items": [
                                         {"name": "血常规", "item_class": "A",
                                          "unit_price_fen": 2500},
                                         {"name": "阿司匹林", "item_class": "B",
                                          "unit_price_fen": 1330, "quantity": 10}]})
    assert response.status_code == 201, response.content
    bill = response.json()
    assert bill["total_fen"] == 15800 and bill["status"] == "unpaid"
    assert [i["amount_fen"] for i in bill["items"]] == [2500, 13300]
    assert api_a.get(f"bills/{bill['bill_no']}/").json()["status"] == "unpaid"


@pytest.mark.parametrize("items", [[], [{"name": "x", "unit_price_fen": -1}],
                                   [{"name": "x", "unit_price_fen": 1.5}],
                                   [{"name": "x", "unit_price_fen": 100, "quantity": 0}]])
def test_bills_bad_items_change_nothing(hospital_a, api_a, items):
    from registration.models import ClinicBill

    with in_schema(hospital_a):
        before = ClinicBill.objects.count()
    response = api_a.post("bills/", {"patient": patient_body(), "items": items})
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"
    with in_schema(hospital_a):
        assert ClinicBill.objects.count() == before


def test_webhooks_partner_endpoint_gets_own_bookings_only(hospital_a, partner_a, api_a, slot_a):
    """The decision: an endpoint a partner registers receives booking events only for its own
    bookings (plus hospital-wide announcements); a hospital-registered one receives all."""
    from portal.notifications.models import OutboxEvent, WebhookEndpoint
    from portal.notifications.webhooks import deliveries_for_event, endpoint_receives
    from tests.partners.helpers import make_partner

    created = api_a.post("webhooks/", {"url": "https://p.example/h", "events": ["*"]})
    assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
    assert "secret" not in api_a.get(f"webhooks/{created.json()['id']}/").json()
    own_ep = WebhookEndpoint.objects.get(pk=created.json()["id"])
    assert own_ep.own_events_only and own_ep.partner_id == partner_a[0].pk
    other_partner = make_partner(hospital_a)[0]
    hospital_ep = WebhookEndpoint.objects.create(hospital=hospital_a, partner=other_partner,
                                                 url="https://h.example/", events=["*"])
    ours = api_a.post("bookings/", {"slot": slot_a[2].pk, "patient": patient_body()}).json()
    from registration.services import booking as svc
    from tests.registration.helpers import make_patient

    user, member = make_patient()
    with in_schema(hospital_a):
        theirs = svc.booking_hold(slice_id=slot_a[2].pk, family_member=member, account=user)
    ev = {b: OutboxEvent.objects.filter(kind="booking_held", link=f"/bookings/{b}/").get()
          for b in (ours["id"], theirs.pk)}
    assert endpoint_receives(own_ep, ev[ours["id"]])
    assert not endpoint_receives(own_ep, ev[theirs.pk])
    assert endpoint_receives(hospital_ep, ev[theirs.pk])
    announcement = OutboxEvent.objects.create(hospital=hospital_a, kind="announcement",
                                              context={"title": "t"})
    assert endpoint_receives(own_ep, announcement)
    waitlist = OutboxEvent.objects.create(hospital=hospital_a, kind="waitlist_closed", context={})
    assert not endpoint_receives(own_ep, waitlist) and endpoint_receives(hospital_ep, waitlist)
    assert len(deliveries_for_event(ev[theirs.pk])) == 1


def test_webhooks_api_validates_and_deletes(api_a):
    bad = api_a.post("webhooks/", {"url": "ftp://x", "events": ["nope"]})
    assert bad.status_code == 400
    assert set(bad.json()["error"]["details"]) == {"url", "events"}
    made = api_a.post("webhooks/", {"url": "https://p.example/h", "events": ["booking_held"]})
    assert api_a.delete(f"webhooks/{made.json()['id']}/").status_code == 204
    assert api_a.get(f"webhooks/{made.json()['id']}/").status_code == 404
