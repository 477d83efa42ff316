"""Idempotency (replay, conflict, per key, concurrency with threads), rate limits, pagination."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.db.models import F

from registration.models import Booking, TimeSlice
from tests.helpers import in_schema
from tests.partners.helpers import ApiClient, make_partner, patient_body


def _booked(hospital, slice_id: int) -> int:
    with in_schema(hospital):
        return TimeSlice.objects.get(pk=slice_id).booked


def test_idempotent_replay_returns_stored_response(hospital_a, api_a, slot_a):
    body = {"slot": slot_a[2].pk, "patient": patient_body()}
    first = api_a.post("bookings/", body, idem="order-1")
    again = api_a.post("bookings/", body, idem="order-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _booked(hospital_a, slot_a[2].pk) == 1


def test_idempotent_replay_of_an_error_is_the_same_error(hospital_a, api_a, slot_a):
    # (an unknown slot id is a 400 validation_error now: a full slot gives the 409)
    with in_schema(hospital_a):
        TimeSlice.objects.filter(pk=slot_a[2].pk).update(booked=F("capacity"))
    body = {"slot": slot_a[2].pk, "patient": patient_body()}
    first = api_a.post("bookings/", body, idem="e-1")
    again = api_a.post("bookings/", body, idem="e-1")
    assert first.status_code == again.status_code == 409
    assert first.json() == again.json() and first.json()["error"]["code"] == "slot_sold_out"


def test_idempotent_conflicting_replay_gets_409(hospital_a, api_a, slot_a):
    person = patient_body()
    assert api_a.post("bookings/", {"slot": slot_a[2].pk, "patient": person},
                      idem="k").status_code == 201
    other = api_a.post("bookings/", {"slot": slot_a[2].pk + 1, "patient": person}, idem="k")
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert _booked(hospital_a, slot_a[2].pk + 1) == 0


def test_idempotency_keys_are_per_api_key(hospital_a, api_a, slot_a):
    _, _, raw = make_partner(hospital_a)
    other = ApiClient(raw, prefix="/api/v1/hospitals/alpha")
    r1 = api_a.post("bookings/", {"slot": slot_a[2].pk, "patient": patient_body()}, idem="same")
    r2 = other.post("bookings/", {"slot": slot_a[2].pk, "patient": patient_body()}, idem="same")
    assert r1.status_code == r2.status_code == 201 and r1.json()["id"] != r2.json()["id"]


def test_idempotent_post_without_key_runs_each_time(hospital_a, api_a, slot_a):
    for _ in range(2):
        assert api_a.post("bookings/", {"slot": slot_a[2].pk,
                                        "patient": patient_body()}).status_code == 201
    assert _booked(hospital_a, slot_a[2].pk) == 2


def test_idempotent_concurrent_requests_execute_once(committed_hospital_a, monkeypatch):
    """Two threads send the same key at once: one books, the other gets the same answer."""
    from registration.models import TimeSlice
    from registration.services import partner as services
    from tests.registration.helpers import make_session

    hospital = committed_hospital_a
    _, _, raw = make_partner(hospital)
    with in_schema(hospital):
        _, schedule = make_session(name=f"并发医生{time.time_ns()}")
        slice_id = TimeSlice.objects.filter(schedule=schedule).order_by("start").first().pk
    real = services.booking_create_for_partner
    calls = []

    def slow(**kwargs):
        calls.append(1)
        time.sleep(0.5)  # both requests are in flight together
        return real(**kwargs)

    monkeypatch.setattr(services, "booking_create_for_partner", slow)
    body = {"slot": slice_id, "patient": patient_body()}
    results = []
    barrier = threading.Barrier(2)

    def send():
        client = ApiClient(raw, prefix="/api/v1/hospitals/alpha")
        barrier.wait()
        try:
            results.append(client.post("bookings/", body, idem="race-1"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(calls) == 1
    assert sorted(r.status_code for r in results) == [201, 201]
    assert results[0].json() == results[1].json()
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in results) == 1
    with in_schema(hospital):
        assert Booking.objects.filter(slice_id=slice_id).count() == 1


def test_rate_limit_429_with_retry_after(settings, api_a, slot_a):
    settings.PARTNER_API_RATE_LIMIT = 3
    for _ in range(3):
        assert api_a.get("departments/").status_code == 200
    r = api_a.get("departments/")
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= settings.PARTNER_API_RATE_WINDOW


def test_rate_limit_is_per_key_and_per_key_override(settings, hospital_a, api_a):
    settings.PARTNER_API_RATE_LIMIT = 2
    _, _, raw = make_partner(hospital_a, rate_limit=5)
    other = ApiClient(raw, prefix="/api/v1/hospitals/alpha")
    for _ in range(2):
        api_a.get("departments/")
    assert api_a.get("departments/").status_code == 429
    assert [other.get("departments/").status_code for _ in range(6)] == [200] * 5 + [429]


def test_cursor_pagination_walks_every_slot(api_a, slot_a):
    seen, url = [], None
    response = api_a.get("slots/", {"doctor": slot_a[0].pk, "limit": 3})
    while True:
        body = response.json()
        seen += [s["id"] for s in body["results"]]
        url = body["next"]
        if not url:
            break
        assert "cursor=" in url
        response = api_a.client.get(url, headers={"X-Api-Key": api_a.key})
    assert len(seen) == 4 == len(set(seen))


def test_slot_filters(hospital_a, api_a, slot_a):
    from datetime import timedelta

    from django.utils import timezone

    doctor, schedule, first = slot_a
    day = schedule.date.isoformat()
    assert len(api_a.get("slots/", {"doctor": doctor.pk, "date_from": day,
                                    "date_to": day}).json()["results"]) == 4
    later = (schedule.date + timedelta(days=1)).isoformat()
    assert api_a.get("slots/", {"doctor": doctor.pk, "date_from": later}).json()["results"] == []
    assert len(api_a.get("slots/", {"department": "cardiology", "schedule": schedule.pk}
                         ).json()["results"]) == 4
    with in_schema(hospital_a):
        TimeSlice.objects.filter(pk=first.pk).update(booked=5)
    rows = api_a.get("slots/", {"doctor": doctor.pk, "available": "true"}).json()["results"]
    assert len(rows) == 3 and all(r["status"] == "free" and r["remaining"] == 5 for r in rows)
    sched = api_a.get("schedules/", {"doctor": doctor.pk}).json()["results"]
    assert sched[0]["capacity"] == 20 and sched[0]["remaining"] == 15
    assert timezone.now()  # (times are checked in test_api)


@pytest.mark.parametrize("path", ["departments/", "doctors/", "schedules/", "slots/"])
def test_catalogue_lists_answer_on_hospital_host(api_a_host, slot_a, path):
    assert api_a_host.get(path).status_code == 200


def test_idempotency_records_expire_and_are_purged(api_a, slot_a, partner_a):
    from datetime import timedelta

    from django.utils import timezone

    from portal.partners.models import IdempotencyRecord
    from portal.partners.services import idempotency_records_purge

    body = {"slot": slot_a[2].pk, "patient": patient_body()}
    first = api_a.post("bookings/", body, idem="old")
    IdempotencyRecord.objects.filter(api_key=partner_a[1]).update(
        expires_at=timezone.now() - timedelta(seconds=1))
    # an expired key is fresh again: the request runs anew (here: the same patient, a duplicate)
    again = api_a.post("bookings/", body, idem="old")
    assert "Idempotent-Replayed" not in again.headers and again.json() != first.json()
    IdempotencyRecord.objects.filter(api_key=partner_a[1]).update(
        expires_at=timezone.now() - timedelta(seconds=1))
    assert idempotency_records_purge() >= 1
    assert not IdempotencyRecord.objects.filter(api_key=partner_a[1]).exists()
