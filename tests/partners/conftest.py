"""Partner API fixtures: partners with keys granted to alpha and/or beta, and API clients."""

from __future__ import annotations

import pytest

from tests.helpers import HOSPITAL_A, in_schema
from tests.partners.helpers import ApiClient, make_partner


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
    from tests.registration.helpers import make_session

    with in_schema(hospital_a):
        doctor, schedule = make_session()
        first = TimeSlice.objects.filter(schedule=schedule).order_by("start").first()
    return doctor, schedule, first
