"""Consult fixtures: an online doctor with a staff login."""

from __future__ import annotations

import pytest

from tests.consult.helpers import make_online_doctor
from tests.helpers import in_schema


@pytest.fixture
def alpha_doctor(hospital_a):
    with in_schema(hospital_a):
        return make_online_doctor(hospital_a)
