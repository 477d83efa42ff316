"""Scopes and grants: every resource with another hospital's key → 404, a missing scope → 403,
a revoked key → 401; every error in the one JSON shape."""

from __future__ import annotations

import pytest

from portal.partners.services import api_key_revoke
from tests.helpers import HOSPITAL_A, HOSPITAL_B
from tests.partners.helpers import ApiClient, make_partner, patient_body

# (method, path, scope it needs)
RESOURCES = [
    ("get", "departments/", "schedules:read"),
    ("get", "doctors/", "schedules:read"),
    ("get", "doctors/{doctor}/", "schedules:read"),
    ("get", "schedules/", "schedules:read"),
    ("get", "slots/", "schedules:read"),
    ("get", "bookings/", "bookings:read"),
    ("post", "bookings/", "bookings:write"),
    ("get", "bookings/{booking}/", "bookings:read"),
    ("post", "bookings/{booking}/cancel/", "bookings:write"),
    ("get", "bills/", "bills:write"),
    ("post", "bills/", "bills:write"),
    ("get", "bills/{bill}/", "bills:write"),
    ("post", "reports/", "reports:write"),
    ("get", "webhooks/", "webhooks:manage"),
    ("post", "webhooks/", "webhooks:manage"),
    ("get", "webhooks/{webhook}/", "webhooks:manage"),
    ("delete", "webhooks/{webhook}/", "webhooks:manage"),
]


@pytest.fixture
def objects_a(api_a, slot_a):
    """One of each object at alpha, made by partner_a through the API."""
    booking = api_a.post("bookings/", {"slot": slot_a[2].pk, "patient": patient_body()}).json()
    bill = api_a.post("bills/", {"patient": patient_body(), "items": [
        {"name": "血常规", "unit_price_fen": 2500}]}).json()
    hook = api_a.post("webhooks/", {"url": "https://p.example/h", "events": ["*"]}).json()
    return {"doctor": slot_a[0].pk, "booking": booking["id"], "bill": bill["bill_no"],
            "webhook": hook["id"], "slot": slot_a[2].pk}


def _call(client: ApiClient, method: str, path: str, ids: dict):
    path = path.format(**ids)
    if method == "post":
        body = {"slot": ids["slot"], "patient": patient_body()} if path == "bookings/" else \
            {"patient": patient_body(), "items": [{"name": "x", "unit_price_fen": 1}]} \
            if path == "bills/" else {"url": "https://x.example/", "events": ["*"]} \
            if path == "webhooks/" else {"patient": patient_body(), "kind": "visit_summary",
                                         "title": "门诊小结"} \
            if path == "reports/" else {}
        return client.post(path, body)
    return getattr(client, method)(path)


def _assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code and body["error"]["message"]


def test_access_objects_exist_for_their_partner(api_a, objects_a):
    for method, path, _scope in RESOURCES:
        if method == "get":
            assert _call(api_a, method, path, objects_a).status_code == 200, path


@pytest.mark.parametrize(("method", "path", "scope"), RESOURCES)
def test_access_key_of_another_hospital_gets_404(partner_b, objects_a, method, path, scope):
    raw = partner_b[2]
    for client in (ApiClient(raw, prefix=f"/api/v1/hospitals/{HOSPITAL_A['code']}"),
                   ApiClient(raw, host=HOSPITAL_A["domain"], prefix="/api/v1")):
        _assert_error(_call(client, method, path, objects_a), 404, "not_found")
    # The same partner on its own hospital: beta's ids are not alpha's; nothing of alpha leaks.
    own = ApiClient(raw, prefix=f"/api/v1/hospitals/{HOSPITAL_B['code']}")
    if "{" in path:
        _assert_error(_call(own, method, path, objects_a), 404, "not_found")


def test_access_other_partner_same_hospital_sees_none_of_our_objects(hospital_a, objects_a):
    _, _, raw = make_partner(hospital_a)
    other = ApiClient(raw, prefix="/api/v1/hospitals/alpha")
    for path in ("bookings/{booking}/", "bills/{bill}/", "webhooks/{webhook}/"):
        _assert_error(other.get(path.format(**objects_a)), 404, "not_found")
    _assert_error(other.post(f"bookings/{objects_a['booking']}/cancel/"), 404, "not_found")
    assert other.get("bookings/").json()["results"] == []
    assert other.get("bills/").json()["results"] == []


@pytest.mark.parametrize(("method", "path", "scope"), RESOURCES)
def test_access_missing_scope_gets_403(hospital_a, objects_a, method, path, scope):
    from portal.partners.models import Scope

    _, _, raw = make_partner(hospital_a, scopes=[s for s in Scope.values if s != scope])
    client = ApiClient(raw, prefix="/api/v1/hospitals/alpha")
    response = _call(client, method, path, objects_a)
    _assert_error(response, 403, "missing_scope")
    assert scope in response.json()["error"]["message"]


def test_access_revoked_unknown_missing_key_get_401(partner_a, api_a, slot_a):
    assert api_a.get("slots/").status_code == 200
    api_key_revoke(api_key=partner_a[1])
    r = api_a.get("slots/")
    _assert_error(r, 401, "api_key_revoked")
    assert r.headers["WWW-Authenticate"]
    _assert_error(ApiClient(None, prefix="/api/v1/hospitals/alpha").get("slots/"), 401,
                  "not_authenticated")
    _assert_error(ApiClient("hpk_deadbeef_nope", prefix="/api/v1/hospitals/alpha").get("slots/"),
                  401, "invalid_api_key")
    wrong_secret = partner_a[2][:-4] + "AAAA"
    _assert_error(ApiClient(wrong_secret, prefix="/api/v1/hospitals/alpha").get("slots/"), 401,
                  "invalid_api_key")
    _assert_error(ApiClient(None).get("/api/v1/hospitals/"), 401, "not_authenticated")


def test_access_inactive_partner_gets_401(partner_a, api_a):
    partner_a[0].is_active = False
    partner_a[0].save()
    _assert_error(api_a.get("departments/"), 401, "partner_inactive")


def test_access_error_shapes_405_404_400(api_a, api_a_host, slot_a):
    _assert_error(api_a.client.put("/api/v1/hospitals/alpha/slots/", headers={
        "X-Api-Key": api_a.key}), 405, "method_not_allowed")
    _assert_error(api_a.get("/api/v1/nowhere/"), 404, "not_found")
    _assert_error(api_a_host.get("/api/v1/nowhere/"), 404, "not_found")
    _assert_error(api_a.get("/api/v1/hospitals/nosuch/slots/"), 404, "not_found")
    _assert_error(api_a.get("slots/", {"doctor": "1.5"}), 400, "validation_error")
    _assert_error(api_a.get("slots/", {"date_from": "tomorrow"}), 400, "validation_error")
    bad = api_a.client.post("/api/v1/hospitals/alpha/bookings/", "{not json",
                            content_type="application/json", headers={"X-Api-Key": api_a.key})
    _assert_error(bad, 400, "parse_error")


def test_access_last_used_is_recorded(partner_a, api_a):
    assert partner_a[1].last_used_at is None
    api_a.get("departments/")
    partner_a[1].refresh_from_db()
    assert partner_a[1].last_used_at is not None


def test_access_key_is_stored_hashed(partner_a):
    key, raw = partner_a[1], partner_a[2]
    assert raw.startswith(f"hpk_{key.prefix}_") and raw not in key.key_hash
    assert len(key.key_hash) == 64


def test_access_key_cache_follows_revocation_everywhere(partner_a, api_a, slot_a):
    """Keys and grants are cached per process; a revocation made elsewhere (here: a bare
    UPDATE, then the generation bump every revoking path makes) ends them within a second."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from portal.partners.auth import auth_cache
    from portal.partners.models import ApiKey

    assert api_a.get("slots/").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert api_a.get("slots/").status_code == 200
    # cached key and hospital: no key or grant lookup, only the schema switch and the slots
    assert not any("partners_apikey" in q["sql"] or "partners_grant" in q["sql"]
                   for q in queries.captured_queries)
    ApiKey.objects.filter(pk=partner_a[1].pk).update(revoked_at=timezone.now())
    auth_cache.invalidate()
    _assert_error(api_a.get("slots/"), 401, "api_key_revoked")
