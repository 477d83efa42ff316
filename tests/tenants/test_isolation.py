"""Data, cache keys and task headers stay inside their hospital."""

from django.core.cache import cache
from django.db import connection

from portal.accounts.models import StaffMembership
from registration.tasks import departments_seed_defaults_task
from tests.helpers import host_client, unique_phone


def test_cache_keys_are_per_hospital(hospital_a, hospital_b, in_hospital):
    with in_hospital(hospital_a):
        cache.set("rules", "a-only", 30)
        assert cache.get("rules") == "a-only"
    with in_hospital(hospital_b):
        assert cache.get("rules") is None
    assert cache.get("rules") is None  # nor on the platform
    with in_hospital(hospital_a):
        cache.delete("rules")


def test_task_headers_carry_the_sending_hospital(hospital_a, in_hospital):
    with in_hospital(hospital_a):
        sig = departments_seed_defaults_task.s()
        # tenant-schemas-celery adds the schema to the message headers when it is sent
        captured = {}

        def fake_send(*args, **kwargs):
            captured.update(kwargs.get("headers") or {})

        from unittest import mock

        import celery

        # Stop at the plain Celery layer, below the tenant-aware app that adds the header.
        with mock.patch.object(celery.Celery, "send_task", side_effect=fake_send):
            sig.apply_async()
    assert captured.get("_schema_name") == "h_alpha"
    assert connection.schema_name == "public"


def test_hospital_admin_adds_staff_to_own_hospital_only(admin_a, hospital_a, patient):
    client = host_client("alpha.localhost", admin_a)
    r = client.post("/admin/accounts/hospitalstaff/add/", {
        "phone": patient.phone, "role": "registrar", "is_active": "on"})
    assert r.status_code == 302, r.content.decode()[:1500]
    m = StaffMembership.objects.get(user=patient)
    assert (m.hospital_id, m.role) == (hospital_a.pk, "registrar")
    # an unknown number is a form error, and nothing is created
    r = client.post("/admin/accounts/hospitalstaff/add/", {
        "phone": unique_phone(), "role": "doctor", "is_active": "on"})
    assert r.status_code == 200
    assert StaffMembership.objects.filter(hospital=hospital_a).count() == 2
