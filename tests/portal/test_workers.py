"""Celery with tenants, against a real worker process, real Redis and PostgreSQL."""

import pytest
from django.db import connection

from registration.models import Department
from registration.tasks import departments_seed_defaults_task
from tenants.models import Hospital

pytestmark = pytest.mark.worker


def test_worker_runs_task_in_the_sending_hospitals_schema(celery_worker, committed_hospital_a):
    # Committed for real (no test transaction): the worker is another process.
    if True:
        a = committed_hospital_a
        b = Hospital.objects.get(code="beta")
        connection.set_tenant(a)
        Department.objects.filter(code="dermatology").delete()
        assert not Department.objects.filter(code="dermatology").exists()
        result = departments_seed_defaults_task.delay()
        connection.set_schema_to_public()
        assert result.get(timeout=60) == {"schema": "h_alpha", "created": 1}
        connection.set_tenant(a)
        assert Department.objects.filter(code="dermatology").exists()
        connection.set_tenant(b)
        result_b = departments_seed_defaults_task.delay()
        assert result_b.get(timeout=60) == {"schema": "h_beta", "created": 0}
        connection.set_schema_to_public()
