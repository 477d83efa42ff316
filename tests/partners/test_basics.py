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
