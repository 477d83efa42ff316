"""The test base: real PostgreSQL and Redis, two hospitals, and a cast of people.

Hospitals are created once per session (a schema each, committed) in `django_db_setup`;
every test then runs in a transaction that is rolled back. Tests that need committed data
seen by another process (a real Celery worker, a real web server) or by other threads use
`committed_hospital_a`, create data with unique values and leave it; the test database is
dropped at the end of the session.

Fixtures reach tests from here, from each app's conftest and from the plugins below; the
functions tests call (makers, constants, process tools) live in `tests/helpers.py` and
`tests/<app>/helpers.py`.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from tests.helpers import (
    HOSPITAL_A,
    HOSPITAL_B,
    PLATFORM_HOST,
    ROOT,
    free_port,
    host_client,
    in_schema,
    make_staff,
    make_user,
    port_up,
    start_worker,
    stop_process,
    subprocess_env,
    wait_for,
)

pytest_plugins = ["tests.fixtures.payments"]


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    """Create the test database whatever was collected, then the platform and two hospitals.

    (pytest-django's own fixture creates nothing when no collected test asks for `db`, as
    with the browser tests alone, which would leave subprocess servers on the dev database.)
    """
    from django.test.utils import setup_databases, teardown_databases

    from tenants.services import hospital_provision, platform_ensure

    with django_db_blocker.unblock():
        db_cfg = setup_databases(verbosity=0, interactive=False, aliases={"default"},
                                 serialized_aliases=set())
        name = connection.settings_dict["NAME"]
        assert name.startswith("test_"), f"refusing to run the suite against {name!r}"
        platform_ensure(domains=[PLATFORM_HOST, "testserver", "127.0.0.1"])
        for spec in (HOSPITAL_A, HOSPITAL_B):
            hospital_provision(**spec)
        connection.set_schema_to_public()
    yield
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        teardown_databases(db_cfg, verbosity=0)


@pytest.fixture
def committed_db(django_db_setup, django_db_blocker):
    """Database access outside any test transaction: for data other processes or threads must
    see. Nothing is rolled back; use unique values. (Depends on django_db_setup, so it can
    never reach the development database.)"""
    with django_db_blocker.unblock():
        yield
        connection.set_schema_to_public()


@pytest.fixture
def committed_hospital_a(committed_db):
    """Hospital A for data other processes or threads must see (committed, never rolled
    back): the public schema is active; switch with `in_schema` where the test needs it."""
    from tenants.models import Hospital

    return Hospital.objects.get(code=HOSPITAL_A["code"])


@pytest.fixture(autouse=True)
def _public_schema_after_each_test():
    yield
    connection.set_schema_to_public()
    # A request leaves its language active in the thread (English after a test that switched
    # to it); the next test starts from the default, whatever pytest-django's order.
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def hospital_a(db):
    from tenants.models import Hospital

    return Hospital.objects.get(code=HOSPITAL_A["code"])


@pytest.fixture
def hospital_b(db):
    from tenants.models import Hospital

    return Hospital.objects.get(code=HOSPITAL_B["code"])


@pytest.fixture
def in_hospital():
    return in_schema


@pytest.fixture
def patient(db):
    return make_user(name="病人甲")


@pytest.fixture
def other_patient(db):
    return make_user(name="病人乙")


@pytest.fixture
def admin_a(hospital_a):
    return make_staff(hospital_a, "admin")


@pytest.fixture
def admin_b(hospital_b):
    return make_staff(hospital_b, "admin")


@pytest.fixture
def registrar_a(hospital_a):
    return make_staff(hospital_a, "registrar")


@pytest.fixture
def finance_a(hospital_a):
    return make_staff(hospital_a, "finance")


@pytest.fixture
def operator(db):
    return make_user(name="运营", is_staff=True)


@pytest.fixture
def platform_client(db):
    return host_client(PLATFORM_HOST)


@pytest.fixture
def client_a(db):
    return host_client(HOSPITAL_A["domain"])


@pytest.fixture
def client_b(db):
    return host_client(HOSPITAL_B["domain"])


# --------------------------------------------------------------------------- real processes


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, tmp_path_factory):
    """A real Celery worker process on the test database and the tests' Redis database."""
    proc = start_worker(tmp_path_factory.mktemp("worker") / "worker.log")
    yield proc
    stop_process(proc)


@pytest.fixture(scope="session")
def live_sandbox(tmp_path_factory):
    """The sandbox payment provider as its own process, as `make run` runs it; its URL."""
    port = free_port()
    data = tmp_path_factory.mktemp("live-sandbox")
    proc = subprocess.Popen(
        [sys.executable, "-m", "portal.dev.sandbox_pay", "--port", str(port), "--data-dir",
         str(data), "--test-hooks"], cwd=ROOT, env=subprocess_env(),
        stdout=open(data / "sandbox.log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    wait_for(lambda: port_up(port), 30, "sandbox provider", proc)
    yield f"http://localhost:{port}"
    stop_process(proc)


@pytest.fixture(scope="session")
def live_site(django_db_setup, live_sandbox, tmp_path_factory):
    """A real web server (gunicorn) on the test database; returns its port.

    Served with the production gunicorn config (portal/gunicorn_conf.py: gthread workers), with
    two workers whatever the machine and a longer timeout for slow CI machines.
    Chromium resolves *.localhost to this machine, so http://alpha.localhost:PORT/ reaches it.
    Payments go to the live sandbox provider process.
    """
    port = free_port()
    log = open(tmp_path_factory.mktemp("web") / "web.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:portal.gunicorn_conf", "portal.wsgi",
         "-b", f"127.0.0.1:{port}", "-w", "2", "--timeout", "60"],
        cwd=ROOT, env=subprocess_env(SANDBOX_PAY_URL=live_sandbox.replace("localhost", "127.0.0.1")),
        stdout=log, stderr=subprocess.STDOUT,
    )
    wait_for(lambda: port_up(port), 60, "web server", proc)
    yield port
    stop_process(proc)
