"""Partner API fixtures: partners with keys granted to alpha and/or beta, and API clients."""

from __future__ import annotations

import itertools
import json

import pytest
from django.test import Client

from portal.partners.models import Scope
from portal.partners.services import api_key_create, grant_create
from tests.conftest import HOSPITAL_A, HOSPITAL_B, PLATFORM_HOST, in_schema

ALL_SCOPES = list(Scope.values)
_names = itertools.count(1)


class ApiClient:
    """A test client that sends the key and JSON, on a given host."""

    def __init__(self, key: str | None, host: str = PLATFORM_HOST, prefix: str = "") -> None:
        self.client = Client(HTTP_HOST=host)
        self.key = key
        self.prefix = prefix  # "/api/v1/hospitals/alpha" on the platform, "/api/v1" on a host

    def _headers(self, extra: dict | None) -> dict:
        headers = {"X-Api-Key": self.key} if self.key else {}
        headers.update(extra or {})
        return headers

    def url(self, path: str) -> str:
        return path if path.startswith("/") else f"{self.prefix}/{path}"

    def get(self, path: str, data=None, **headers):
        return self.client.get(self.url(path), data or {}, headers=self._headers(headers))

    def post(self, path: str, body=None, idem: str | None = None, **headers):
        if idem:
            headers["Idempotency-Key"] = idem
        return self.client.post(self.url(path), json.dumps(body or {}),
                                content_type="application/json", headers=self._headers(headers))

    def delete(self, path: str, **headers):
        return self.client.delete(self.url(path), headers=self._headers(headers))


def make_partner(*hospitals, scopes=None, name: str | None = None, **key_kwargs):
    from portal.partners.models import Partner

    partner = Partner.objects.create(name=name or f"partner-{next(_names)}")
    for h in hospitals:
        grant_create(partner=partner, hospital=h)
    key, raw = api_key_create(partner=partner, scopes=ALL_SCOPES if scopes is None else scopes,
                              **key_kwargs)
    return partner, key, raw


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Key ids restart with each test database; old windows in Redis must not count."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    for k in client.scan_iter("partners:ratelimit:*"):
        client.delete(k)


@pytest.fixture
def partner_a(hospital_a):
    """A partner granted alpha only, with every scope: (partner, key row, plaintext)."""
    return make_partner(hospital_a)


@pytest.fixture
def partner_b(hospital_b):
    return make_partner(hospital_b)


@pytest.fixture
def api_a(partner_a):
    """partner_a's client on the platform host, for alpha's resources."""
    return ApiClient(partner_a[2], prefix=f"/api/v1/hospitals/{HOSPITAL_A['code']}")


@pytest.fixture
def api_a_host(partner_a):
    """partner_a's client on alpha's own host."""
    return ApiClient(partner_a[2], host=HOSPITAL_A["domain"], prefix="/api/v1")


@pytest.fixture
def slot_a(hospital_a):
    """A doctor with a session tomorrow at alpha (fee 2000 fen); returns (doctor, schedule,
    first slice)."""
    from registration.models import TimeSlice
    from tests.registration.conftest import make_session

    with in_schema(hospital_a):
        doctor, schedule = make_session()
        first = TimeSlice.objects.filter(schedule=schedule).order_by("start").first()
    return doctor, schedule, first


def patient_body(name: str = "张伟", id_number: str | None = None, mobile: str | None = None):
    from tests.conftest import unique_phone
    from tests.registration.conftest import valid_id

    return {"name": name, "id_number": id_number or valid_id(), "mobile": mobile or unique_phone()}


__all__ = ["ApiClient", "make_partner", "patient_body", "HOSPITAL_B"]


# The sandbox payment provider over HTTP (cashier URLs), shared with the payments tests.
from tests.payments.conftest import sandbox, sandbox_server  # noqa: E402, F401
