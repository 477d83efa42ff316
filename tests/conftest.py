"""The test base: real PostgreSQL and Redis, two hospitals, and a cast of people.

Hospitals are created once per session (a schema each, committed) in `django_db_setup`;
every test then runs in a transaction that is rolled back. Tests that need committed data
seen by another process (a real Celery worker, a real web server) create it with unique
values and leave it; the test database is dropped at the end of the session.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent

HOSPITAL_A = {"code": "alpha", "name": "甲市人民医院", "name_en": "Alpha City Hospital",
              "city": "甲市", "level": "3A", "domain": "alpha.localhost"}
HOSPITAL_B = {"code": "beta", "name": "乙县中医院", "name_en": "Beta County TCM Hospital",
              "city": "乙县", "level": "2A", "domain": "beta.localhost"}
PLATFORM_HOST = "localhost"
PASSWORD = "correct-horse-42"

_phones = itertools.count(1)


def unique_phone() -> str:
    """A fresh valid mobile number per call (per process), never a demo or fixture number."""
    return f"170{os.getpid() % 10000:04d}{next(_phones):04d}"


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


@contextmanager
def in_schema(hospital) -> Iterator[None]:
    connection.set_tenant(hospital)
    try:
        yield
    finally:
        connection.set_schema_to_public()


@pytest.fixture
def in_hospital():
    return in_schema


def make_user(*, name: str = "", **extra):
    from portal.accounts.models import User

    return User.objects.create_user(phone=unique_phone(), password=PASSWORD, name=name, **extra)


def make_staff(hospital, role: str, name: str = ""):
    from portal.accounts.services import staff_grant

    user = make_user(name=name or f"{hospital.code}-{role}")
    staff_grant(user=user, hospital=hospital, role=role)
    return user


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


def host_client(host: str, user=None) -> Client:
    client = Client(HTTP_HOST=host)
    if user is not None:
        client.force_login(user)
    return client


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _test_database_url() -> str:
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    auth = f"{user}:{db['PASSWORD']}" if db.get("PASSWORD") else user
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child process that must see this session's test database."""
    env = dict(os.environ)
    env.update(DJANGO_SETTINGS_MODULE="portal.settings.test", DATABASE_URL=_test_database_url(),
               REDIS_URL=settings.REDIS_URL, PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def _wait_for(check, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up in {timeout}s")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_worker(log_path: Path, *extra_args: str) -> subprocess.Popen:
    import redis

    from portal.celery import WORKER_HEARTBEAT_KEY

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(WORKER_HEARTBEAT_KEY)
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "-l", "info",
         "--concurrency", "2", "--without-gossip", "--without-mingle", *extra_args],
        cwd=ROOT, env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT,
    )
    _wait_for(lambda: client.exists(WORKER_HEARTBEAT_KEY), 60, "celery worker", proc)
    return proc


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, tmp_path_factory):
    """A real Celery worker process on the test database and the tests' Redis database."""
    proc = start_worker(tmp_path_factory.mktemp("worker") / "worker.log")
    yield proc
    stop_process(proc)


def _port_up(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def live_sandbox(tmp_path_factory):
    """The sandbox payment provider as its own process, as `make run` runs it; its URL."""
    port = free_port()
    data = tmp_path_factory.mktemp("live-sandbox")
    proc = subprocess.Popen(
        [sys.executable, "-m", "portal.dev.sandbox_pay", "--port", str(port), "--data-dir",
         str(data), "--test-hooks"], cwd=ROOT, env=subprocess_env(),
        stdout=open(data / "sandbox.log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    _wait_for(lambda: _port_up(port), 30, "sandbox provider", proc)
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
    _wait_for(lambda: _port_up(port), 60, "web server", proc)
    yield port
    stop_process(proc)
