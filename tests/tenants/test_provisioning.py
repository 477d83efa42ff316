"""create_hospital: schema, domain and defaults in one go; a second call changes nothing."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils.translation import override
from django_tenants.utils import schema_exists

from registration.models import Department
from tenants.models import Domain, Hospital
from tenants.services import hospital_provision


def _state():
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.schemata")
        schemas = cur.fetchone()[0]
    return Hospital.objects.count(), Domain.objects.count(), schemas


def test_provisioning_creates_schema_domain_and_default_departments(db, in_hospital, capsys):
    call_command("create_hospital", code="gamma", name="丙市妇幼保健院", domain="Gamma.localhost",
                 name_en="Gamma Maternity", city="丙市")
    hospital = Hospital.objects.get(code="gamma")
    assert hospital.is_ready and hospital.schema_name == "h_gamma"
    assert schema_exists("h_gamma")
    assert hospital.get_primary_domain().domain == "gamma.localhost"
    with in_hospital(hospital):
        assert Department.objects.filter(code="cardiology", parent__code="internal").exists()
    assert hospital.hold_minutes == 15 and hospital.booking_window_days == 7
    assert "is ready" in capsys.readouterr().out


def test_provisioning_twice_with_same_code_fails_cleanly(db, hospital_a):
    before = _state()
    with override("en"), pytest.raises(CommandError, match="already exists. Nothing was created"):
        call_command("create_hospital", code="alpha", name="另一家", domain="other.localhost")
    assert _state() == before
    assert not Domain.objects.filter(domain="other.localhost").exists()


def test_provisioning_with_used_host_fails_cleanly(db, hospital_a):
    before = _state()
    with override("en"), pytest.raises(CommandError, match="already in use"):
        call_command("create_hospital", code="delta", name="丁医院", domain="alpha.localhost")
    assert _state() == before
    assert not schema_exists("h_delta")


@pytest.mark.parametrize("code", ["A", "1abc", "ab-c", "public", "x" * 31, ""])
def test_provisioning_rejects_bad_codes(db, code):
    before = _state()
    with pytest.raises(CommandError):
        call_command("create_hospital", code=code, name="医院", domain="bad.localhost")
    assert _state() == before


def test_provisioning_failure_midway_leaves_nothing(db, monkeypatch):
    import tenants.services as services

    def boom(hospital):
        raise RuntimeError("disk full")

    # Registration's seeder (registered from its ready()) fails after the schema exists.
    monkeypatch.setitem(services._seeders, "registration", boom)
    before = _state()
    with pytest.raises(RuntimeError):
        hospital_provision(code="epsilon", name="戊医院", domain="epsilon.localhost")
    assert _state() == before
    assert not schema_exists("h_epsilon")


def test_create_staff_command_grants_role(db, hospital_a):
    from portal.accounts.models import StaffMembership

    call_command("create_staff", hospital="alpha", phone="13712345678", password="staff-pass-1",
                 role="registrar")
    m = StaffMembership.objects.get(user__phone="13712345678")
    assert (m.hospital_id, m.role) == (hospital_a.pk, "registrar")
    assert m.user.check_password("staff-pass-1")
    with pytest.raises(CommandError):
        call_command("create_staff", hospital="nope", phone="13712345678", password="x",
                     role="registrar")
    with pytest.raises(CommandError):
        call_command("create_staff", hospital="alpha", phone="123", password="x", role="doctor")


def test_seed_demo_is_idempotent(db):
    from portal.accounts.models import FamilyMember, User

    call_command("seed_demo")
    counts = (Hospital.objects.count(), User.objects.count(), FamilyMember.objects.count())
    call_command("seed_demo")
    assert (Hospital.objects.count(), User.objects.count(), FamilyMember.objects.count()) == counts
    assert Hospital.objects.filter(code__in=["binjiang", "qinghe"]).count() == 2
    assert User.objects.get(phone="13800138000").family_members.count() == 2
    from django_tenants.utils import tenant_context

    from registration.models import ClinicBill

    with tenant_context(Hospital.objects.get(code="binjiang")):
        bill = ClinicBill.objects.get()  # exactly one, however often seeded
        assert (bill.status, bill.total_fen) == ("unpaid", 4500 + 8800 + 2 * 3260 + 6800)


def test_platform_admin_provisions_hospital(db, operator):
    from tests.helpers import host_client

    client = host_client("localhost", operator)
    r = client.post("/admin/tenants/hospital/add/", {
        "code": "zeta", "name": "己市医院", "name_en": "", "city": "己市", "level": "",
        "domain": "zeta.localhost"})
    assert r.status_code == 302, r.content.decode()[:1500]
    assert Hospital.objects.get(code="zeta").is_ready
    r = client.post("/admin/tenants/hospital/add/", {
        "code": "zeta", "name": "重复", "city": "", "level": "", "domain": "zeta2.localhost"})
    assert r.status_code == 200
    assert not Domain.objects.filter(domain="zeta2.localhost").exists()


def test_new_schema_migration_history_is_complete_and_consistent(db):
    """The shared apps' migrations recorded up front (tenants/schema_migrations.py) leave the
    same history as migrate itself: every migration recorded, nothing left to apply."""
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.recorder import MigrationRecorder

    hospital = hospital_provision(code="eta", name="庚医院", domain="eta.localhost")
    connection.set_schema(hospital.schema_name, include_public=False)
    try:
        executor = MigrationExecutor(connection)
        executor.loader.check_consistent_history(connection)
        assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
        expected = set(executor.loader.graph.nodes)
        for key in list(expected):
            expected.update(executor.loader.graph.nodes[key].replaces or [])
        recorded = set(MigrationRecorder(connection).migration_qs.values_list("app", "name"))
        assert recorded == expected
    finally:
        connection.set_schema_to_public()
