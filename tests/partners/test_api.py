"""Smoke: the hospital list, a slot search, a booking on both entry points."""

from __future__ import annotations

from tests.partners.helpers import patient_body


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


def test_schema_per_host_and_docs_offline(platform_client, client_a):
    platform = platform_client.get("/api/schema/", {"format": "json"}).json()
    assert "/api/v1/hospitals/{hospital_code}/slots/" in platform["paths"]
    assert platform["components"]["securitySchemes"]["ApiKey"]["name"] == "X-Api-Key"
    assert "slot_sold_out" in platform["info"]["description"]
    for op in platform["paths"]["/api/v1/hospitals/{hospital_code}/bookings/"].values():
        assert {"401", "403", "404", "429"} <= set(op["responses"])
    hospital = client_a.get("/api/schema/", {"format": "json"}).json()
    assert "/api/v1/slots/" in hospital["paths"] and not any(
        p.startswith("/api/v1/hospitals/") for p in hospital["paths"])
    docs = platform_client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html and "cdn" not in html.lower()
    assert platform_client.get("/api/redoc/").status_code == 200


def test_every_operation_has_an_example(platform_client):
    schema = platform_client.get("/api/schema/", {"format": "json"}).json()
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            has = any("examples" in c for r in op["responses"].values()
                      for c in r.get("content", {}).values())
            assert has or method == "delete", f"{method} {path}"


def test_every_post_documents_its_idempotency_key_and_conflicts(platform_client, client_a):
    """A partner's client generated from the schema must know a POST may answer 409 for a
    reused or still-running Idempotency-Key (schemathesis found the undocumented 409)."""
    for client in (platform_client, client_a):
        schema = client.get("/api/schema/", {"format": "json"}).json()
        posts = [(path, ops["post"]) for path, ops in schema["paths"].items() if "post" in ops]
        assert len(posts) >= 5
        for path, op in posts:
            headers = {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}
            assert "Idempotency-Key" in headers, path
            conflict = op["responses"].get("409", {})
            examples = conflict.get("content", {}).get("application/json", {}).get("examples", {})
            codes = {e["value"]["error"]["code"] for e in examples.values()}
            assert {"idempotency_key_reused", "idempotency_request_in_progress"} <= codes, path


def test_slot_fast_path_matches_serializer(hospital_a, slot_a):
    """The slot list writes rows by hand (the hottest read): same output as SlotOut."""
    from registration.api import _SLOT_FIELDS, SlotOut, slot_rows
    from registration.models import Schedule, TimeSlice
    from tests.helpers import in_schema

    with in_schema(hospital_a):
        TimeSlice.objects.filter(pk=slot_a[2].pk).update(booked=2)
        qs = TimeSlice.objects.filter(schedule=slot_a[1]).order_by("start")
        expected = [dict(SlotOut(s).data) for s in qs.select_related("schedule__doctor__department")]
        _same(slot_rows(qs.values(*_SLOT_FIELDS)), expected)
        Schedule.objects.filter(pk=slot_a[1].pk).update(status="stopped")
        expected = [dict(SlotOut(s).data) for s in qs.select_related("schedule__doctor__department")]
        _same(slot_rows(qs.values(*_SLOT_FIELDS)), expected)


def _same(rows: list[dict], expected: list[dict]) -> None:
    assert len(rows) == len(expected)
    for a, b in zip(rows, expected, strict=True):
        assert {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)} == {}
