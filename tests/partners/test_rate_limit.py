"""The per-key rate limit: a sliding window in Redis, X-RateLimit-* headers on every answer to a
valid key (REST and FHIR, success and error), 429 with Retry-After, Redis down → no limit."""

from __future__ import annotations

import logging

import pytest
import redis

from portal.partners import auth
from tests.helpers import HOSPITAL_A
from tests.partners.helpers import ApiClient, make_partner

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@pytest.fixture
def clock(monkeypatch):
    """The limiter's clock, moved by hand: `clock.at = ...` (unix seconds)."""

    class Clock:
        at = 1_800_000_000.0

    c = Clock()
    monkeypatch.setattr(auth, "clock", lambda: c.at)
    return c


def _budget(response) -> tuple[int, int, int]:
    return tuple(int(response.headers[h]) for h in RATE_HEADERS)  # type: ignore[return-value]


def test_rate_limit_burst_gets_exactly_the_limit_then_429_with_headers(settings, api_a, clock):
    settings.PARTNER_API_RATE_LIMIT = 3
    settings.PARTNER_API_RATE_WINDOW = 60
    passed = []
    for _ in range(3):
        passed.append(api_a.get("departments/"))
        clock.at += 1
    assert [r.status_code for r in passed] == [200, 200, 200]
    # Remaining counts down, this request counted; Reset: until the first one leaves the window.
    assert [_budget(r) for r in passed] == [(3, 2, 60), (3, 1, 59), (3, 0, 58)]

    clock.at += 9.5  # 12.5 s after the first request
    refused = api_a.get("departments/")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.json()["error"]["details"] == {"retry_after": 48}
    assert refused.headers["Retry-After"] == "48"
    assert _budget(refused) == (3, 0, 48)
    # Refused requests do not count: once the first one leaves, exactly one place is free.
    clock.at += 47.5
    again = api_a.get("departments/")
    assert again.status_code == 200 and _budget(again) == (3, 0, 1)
    refused = api_a.get("departments/")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"


def test_rate_limit_burst_across_a_window_boundary_gets_no_more_than_the_limit(
        settings, api_a, clock):
    """A fixed window let a burst at the end of one window and another at the start of the next
    through: twice the limit within a second. In any window-long span at most `limit` pass."""
    settings.PARTNER_API_RATE_LIMIT = 4
    settings.PARTNER_API_RATE_WINDOW = 10
    clock.at = 1_800_000_009.5  # the last half second of a fixed 10 s window
    assert [api_a.get("departments/").status_code for _ in range(4)] == [200] * 4
    clock.at = 1_800_000_010.0  # the next fixed window
    r = api_a.get("departments/")
    assert r.status_code == 429 and r.headers["Retry-After"] == "10"

    # A steady stream, one request every 0.75 s for four windows.
    passed = []
    for step in range(54):
        clock.at = 1_800_000_010.0 + step * 0.75
        if api_a.get("departments/").status_code == 200:
            passed.append(clock.at)
    passed = [1_800_000_009.5] * 4 + passed
    for t in passed:
        in_span = [p for p in passed if t - 10 < p <= t]
        assert len(in_span) <= 4, (t, in_span)
    # ... and not stricter than it says: four more pass as soon as each four have left (the
    # first of the stream at 19.75, 10 s after 9.5 rounded up to the 0.75 s step).
    assert passed[4:] == [1_800_000_000.0 + s for s in (
        19.75, 20.5, 21.25, 22.0, 30.25, 31.0, 31.75, 32.5, 40.75, 41.5, 42.25, 43.0)]


def test_rate_limit_is_per_key_and_shared_across_hospitals_and_entry_points(
        settings, hospital_a, hospital_b, clock):
    settings.PARTNER_API_RATE_LIMIT = 4
    _, _, raw = make_partner(hospital_a, hospital_b)
    _, _, other_raw = make_partner(hospital_a)
    alpha = ApiClient(raw, prefix="/api/v1/hospitals/alpha")
    beta = ApiClient(raw, prefix="/api/v1/hospitals/beta")
    alpha_host = ApiClient(raw, host=HOSPITAL_A["domain"], prefix="/api/v1")
    fhir = ApiClient(raw, prefix="/fhir/r4/alpha")
    other = ApiClient(other_raw, prefix="/api/v1/hospitals/alpha")

    assert _budget(alpha.get("departments/"))[1] == 3
    assert _budget(beta.get("departments/"))[1] == 2
    assert _budget(alpha_host.get("departments/"))[1] == 1
    assert _budget(fhir.get("metadata"))[1] == 0
    assert beta.get("departments/").status_code == 429
    # another key: its own budget, untouched
    r = other.get("departments/")
    assert r.status_code == 200 and _budget(r) == (4, 3, 60)


def test_rate_limit_key_override(settings, hospital_a, clock):
    settings.PARTNER_API_RATE_LIMIT = 2
    _, _, raw = make_partner(hospital_a, rate_limit=5)
    client = ApiClient(raw, prefix="/api/v1/hospitals/alpha")
    responses = [client.get("departments/") for _ in range(6)]
    assert [r.status_code for r in responses] == [200] * 5 + [429]
    assert [_budget(r)[:2] for r in responses] == [(5, 4), (5, 3), (5, 2), (5, 1), (5, 0), (5, 0)]


def test_rate_limit_headers_on_errors_and_fhir(settings, hospital_a, clock):
    """Every answer to a valid key carries the headers, whatever its status; refusals for the
    scope or the hospital count. No key, or a wrong one: no budget to show."""
    settings.PARTNER_API_RATE_LIMIT = 7
    _, _, raw = make_partner(hospital_a, scopes=["schedules:read"])
    client = ApiClient(raw, prefix="/api/v1/hospitals/alpha")
    fhir = ApiClient(raw, prefix="/fhir/r4/alpha")
    answers = [
        client.get("departments/"),                                   # 200
        client.get("/api/v1/hospitals/beta/departments/"),            # 404: not granted
        client.get("bookings/"),                                      # 403: scope
        client.get("slots/", {"date_from": "not-a-date"}),            # 400
        fhir.get("metadata"),                                         # 200, FHIR
        fhir.get("Patient"),                                          # 404, FHIR
    ]
    assert [r.status_code for r in answers] == [200, 404, 403, 400, 200, 404]
    assert [_budget(r)[1] for r in answers] == [6, 5, 4, 3, 2, 1]
    client.get("departments/")
    refused = fhir.get("Slot")
    assert refused.status_code == 429
    assert refused.json()["issue"][0]["code"] == "throttled"
    assert refused.headers["Retry-After"] == "60" and _budget(refused) == (7, 0, 60)

    for anonymous in (ApiClient(None, prefix="/api/v1/hospitals/alpha"),
                      ApiClient("hpk_nope0000_wrong", prefix="/api/v1/hospitals/alpha")):
        r = anonymous.get("departments/")
        assert r.status_code == 401
        assert not any(h in r.headers for h in RATE_HEADERS)


def test_rate_limit_redis_down_lets_requests_through_without_headers(
        settings, monkeypatch, caplog, api_a, clock):
    from tests.helpers import free_port

    settings.PARTNER_API_RATE_LIMIT = 1
    down = redis.Redis(host="127.0.0.1", port=free_port(), socket_timeout=0.5,
                       socket_connect_timeout=0.5)
    monkeypatch.setattr(auth, "_client", lambda: down)
    with caplog.at_level(logging.WARNING, logger="portal.partners.auth"):
        answers = [api_a.get("departments/") for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert not any(h in r.headers for r in answers for h in RATE_HEADERS)
    warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 3 and all(r.levelno == logging.WARNING for r in warnings)


def test_rate_limit_headers_are_in_the_schema(platform_client, client_a):
    for client in (platform_client, client_a):
        schema = client.get("/api/schema/", {"format": "json"}).json()
        assert "X-RateLimit-Remaining" in schema["info"]["description"]
        for path, ops in schema["paths"].items():
            for method, op in ops.items():
                for status, response in op["responses"].items():
                    headers = response.get("headers", {})
                    assert set(RATE_HEADERS) <= set(headers), (method, path, status)
                    assert headers["X-RateLimit-Reset"]["schema"]["type"] == "integer"
                assert op["responses"]["429"]["headers"]["Retry-After"]["required"] is True
