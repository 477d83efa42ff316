"""Registration fixtures: a doctor with a session tomorrow."""

from __future__ import annotations

import pytest

from tests.helpers import in_schema
from tests.registration.helpers import make_session


@pytest.fixture
def session_a(hospital_a):
    with in_schema(hospital_a):
        return make_session()
