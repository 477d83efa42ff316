"""Smoke: the hospital list, a slot search, a booking on both entry points."""

from __future__ import annotations

from tests.partners.conftest import patient_body


def test_hospitals_list_shows_granted_only(api_a):
    r = api_a.get("/api/v1/hospitals/")
    assert r.status_code == 200, r.content
    assert [h["code"] for h in r.json()["results"]] == ["alpha"]


def test_slots_on_both_entry_points(api_a, api_a_host, slot_a):
    for client in (api_a, api_a_host):
        r = client.get("slots/", {"doctor": slot_a[0].pk})
        assert r.status_code == 200, r.content
        rows = r.json()["results"]
        assert len(rows) == 4 and rows[0]["remaining"] == 5
        assert rows[0]["start"].endswith("+08:00")


def test_booking_create_returns_payment(api_a, slot_a):
    r = api_a.post("bookings/", {"slot": slot_a[2].pk, "patient": patient_body()},
                   idem="k1")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "held" and body["payment"]["amount_fen"] == 2000
    assert body["payment"]["order_no"].startswith("P")
