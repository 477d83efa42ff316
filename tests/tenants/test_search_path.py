"""TENANT_LIMIT_SET_CALLS: one persistent connection switching hospitals never reads the wrong
schema.

With the setting on, django-tenants sends `SET search_path` once after each switch and then
trusts what it sent. These tests hold it to that on the paths this project uses: requests
through the tenant middleware, Celery tasks (tenant-schemas-celery switches before and
restores after each task), and transactions or savepoints that roll back a SET (PostgreSQL
undoes it; django-tenants must forget it too, see django-tenants issue #1262).
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from portal.celery import app
from registration.models import Department
from tests.helpers import HOSPITAL_A, HOSPITAL_B, host_client, in_schema


@app.task(name="tests.department_codes")
def department_codes_task(prefix: str) -> list[str]:
    """The codes this task's hospital has under `prefix` (eager only: a test helper)."""
    return sorted(Department.objects.filter(code__startswith=prefix).values_list("code",
                                                                                flat=True))


class _Undo(Exception):
    pass


@pytest.fixture
def marked(hospital_a, hospital_b):
    """One department in each hospital with the same table and different rows."""
    with in_schema(hospital_a):
        Department.objects.create(code="sp-only-a", name="甲院独有科", name_en="Only in A")
    with in_schema(hospital_b):
        Department.objects.create(code="sp-only-b", name="乙院独有科", name_en="Only in B")
    return hospital_a, hospital_b


def _codes() -> list[str]:
    return sorted(Department.objects.filter(code__startswith="sp-").values_list("code",
                                                                               flat=True))


def _sets(ctx: CaptureQueriesContext) -> int:
    return sum(q["sql"].startswith("SET search_path") for q in ctx.captured_queries)


def test_search_path_limit_is_on():
    assert settings.TENANT_LIMIT_SET_CALLS is True


def _search_path() -> str:
    with connection.cursor() as cur:
        cur.execute("SHOW search_path")
        return cur.fetchone()[0]


def test_search_path_requests_a_then_b_then_a_on_one_connection(marked):
    clients = {"a": host_client(HOSPITAL_A["domain"]), "b": host_client(HOSPITAL_B["domain"])}
    names = {"a": "甲院独有科", "b": "乙院独有科"}
    for c in clients.values():
        c.get("/")  # warm the host -> hospital cache (a miss reads the domain on public)
    raw = connection.connection
    for which in ("a", "b", "a", "b", "a"):
        with CaptureQueriesContext(connection) as ctx:
            html = clients[which].get("/").content.decode()
        other = "b" if which == "a" else "a"
        assert names[which] in html and names[other] not in html, which
        # One SET per request (the limit works), not one per query.
        assert _sets(ctx) == 1, ctx.captured_queries
        # ... and it is the same database session all along (a persistent connection).
        assert connection.connection is raw


def test_search_path_celery_tasks_a_then_b_then_a(marked):
    hospital_a, hospital_b = marked
    expected = {hospital_a.pk: ["sp-only-a"], hospital_b.pk: ["sp-only-b"]}
    for hospital in (hospital_a, hospital_b, hospital_a, hospital_b):
        # As a worker runs it: the connection is on public (restored after the previous
        # task), the header names the sending hospital, the task switches to it.
        assert connection.schema_name == "public"
        result = department_codes_task.apply(
            args=["sp-"], headers={"_schema_name": hospital.schema_name})
        assert result.get() == expected[hospital.pk]
        # Restored afterwards, and the next query follows the restored schema.
        assert connection.schema_name == "public"
        assert _search_path() == "public"


def test_search_path_switch_inside_rolled_back_savepoint(marked):
    hospital_a, hospital_b = marked
    with in_schema(hospital_a):
        assert _codes() == ["sp-only-a"]
        with pytest.raises(_Undo):
            with transaction.atomic():  # a savepoint (the test runs in a transaction)
                connection.set_tenant(hospital_b)
                assert _codes() == ["sp-only-b"]  # the SET for B is sent in here ...
                raise _Undo
        # ... and undone by ROLLBACK TO SAVEPOINT, while the connection stays switched to B:
        # the next query must send it again.
        assert _search_path().startswith(hospital_b.schema_name)
        assert _codes() == ["sp-only-b"]


def test_search_path_switch_in_rolled_back_transaction(committed_db, hospital_a, hospital_b):
    # Outside the test transaction, so the atomic block below is a real transaction.
    with in_schema(hospital_a):
        list(Department.objects.all()[:1])
        with pytest.raises(_Undo):
            with transaction.atomic():
                connection.set_tenant(hospital_b)
                list(Department.objects.all()[:1])  # SET for B, then ROLLBACK undoes it
                raise _Undo
        assert _search_path().startswith(hospital_b.schema_name)


def test_search_path_not_sent_again_for_the_same_hospital(marked):
    """The middleware switches to public and back on every request; when the connection
    already holds the host's path (portal.db keeps track), no SET is sent at all."""
    client_a = host_client(HOSPITAL_A["domain"])
    client_b = host_client(HOSPITAL_B["domain"])
    client_a.get("/")
    counts = []
    for c, name in ((client_a, "甲院独有科"), (client_a, "甲院独有科"), (client_b, "乙院独有科"),
                    (client_b, "乙院独有科"), (client_a, "甲院独有科")):
        with CaptureQueriesContext(connection) as ctx:
            assert name in c.get("/").content.decode()
        counts.append(_sets(ctx))
    assert counts == [0, 0, 1, 0, 1]


def test_search_path_sent_again_after_a_rollback_on_the_same_hospital(committed_db, hospital_a,
                                                                      hospital_b):
    """A rolled-back SET leaves the server on the old path: the next query re-sends it even
    though the connection is switched to the same hospital again."""
    with in_schema(hospital_b):
        list(Department.objects.all()[:1])
    with in_schema(hospital_a):
        list(Department.objects.all()[:1])  # the server holds A's path
        with pytest.raises(_Undo):
            with transaction.atomic():
                connection.set_tenant(hospital_b)
                list(Department.objects.all()[:1])  # SET for B, undone by the ROLLBACK
                raise _Undo
        connection.set_tenant(hospital_b)
        assert _search_path().startswith(hospital_b.schema_name)
        connection.set_tenant(hospital_a)
        assert _search_path().startswith(hospital_a.schema_name)
