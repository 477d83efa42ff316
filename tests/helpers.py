"""The test cast and its tools, imported by tests as plain functions (fixtures live in the
conftest files and in the plugins under tests/fixtures/).

The two hospitals every session provisions, the platform host, a password for everyone;
makers of users and staff; schema and client helpers; and what starts the real processes
(a Celery worker, a web server) some tests need.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"

_phones = itertools.count(1)


def unique_phone() -> str:
    """A fresh valid mobile number per call (per process), never a demo or fixture number."""
    return f"170{os.getpid() % 10000:04d}{next(_phones):04d}"


@contextmanager
def in_schema(hospital) -> Iterator[None]:
    connection.set_tenant(hospital)
    try:
        yield
    finally:
        connection.set_schema_to_public()


def make_user(*, name: str = "", **extra):
    from portal.accounts.models import User

    return User.objects.create_user(phone=unique_phone(), password=PASSWORD, name=name, **extra)


def make_staff(hospital, role: str, name: str = ""):
    from portal.accounts.services import staff_grant

    user = make_user(name=name or f"{hospital.code}-{role}")
    staff_grant(user=user, hospital=hospital, role=role)
    return user


def host_client(host: str, user=None) -> Client:
    client = Client(HTTP_HOST=host)
    if user is not None:
        client.force_login(user)
    return client


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


def wait_for(check, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up in {timeout}s")


def port_up(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


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
    wait_for(lambda: client.exists(WORKER_HEARTBEAT_KEY), 60, "celery worker", proc)
    return proc
