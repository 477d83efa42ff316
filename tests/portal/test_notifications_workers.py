"""Notifications against real workers and a real Redis that goes away."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import redis
from django.db import connection

from portal.celery import WORKER_HEARTBEAT_KEY
from portal.dev.devstack import redis_server_binary
from portal.dev.fake_sms import FakeSmsGateway
from portal.notifications.models import Delivery, InboxMessage, OutboxEvent
from portal.notifications.services import notify
from tests.helpers import ROOT, free_port, in_schema, stop_process, subprocess_env

pytestmark = pytest.mark.worker


def _redis_server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis did not start")


def _start(cmd: list[str], env: dict, log) -> subprocess.Popen:
    # Own process group: kill -9 takes the worker and its pool children together.
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _worker_cmd(concurrency: int = 2) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "portal", "worker", "-l", "warning",
            "--concurrency", str(concurrency), "--without-gossip", "--without-mingle"]


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def point_celery_at():
    """Send this process's tasks to another broker for the test, then put it back."""
    from portal.celery import app

    saved = app.conf.broker_url

    def switch(url: str) -> None:
        app.conf.broker_url = url
        # connections and producers are pooled per broker URL
        app._pool = None
        app.amqp._producer_pool = None

    yield switch
    switch(saved)


def test_notification_survives_redis_down(committed_hospital_a, tmp_path, settings, point_celery_at):
    from tests.registration.helpers import make_patient, make_session

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    redis_proc = _redis_server(port)
    env = subprocess_env(REDIS_URL=url, TEST_REDIS_DB="0", NOTIFY_SWEEP_SECONDS="2")
    worker = _start(_worker_cmd(), env, open(tmp_path / "worker.log", "wb"))
    beat = _start([sys.executable, "-m", "celery", "-A", "portal", "beat", "-l", "warning",
                   "-s", str(tmp_path / "beat")], env, open(tmp_path / "beat.log", "wb"))
    try:
        _wait(lambda: redis.Redis(port=port).exists(WORKER_HEARTBEAT_KEY), 60, "worker")
        point_celery_at(url)
        settings.REDIS_URL = url
        redis_proc.kill()
        redis_proc.wait()

        hospital = committed_hospital_a
        with in_schema(hospital):
            _, schedule = make_session(fee=0, name="通知医生")
            user, member = make_patient("收通知")
            from registration.models import Booking, TimeSlice
            from registration.services import booking as svc

            slice_ = TimeSlice.objects.filter(schedule=schedule).first()
            booking = svc.booking_hold(slice_id=slice_.pk, family_member=member, account=user)
            assert Booking.objects.get(pk=booking.pk).status == "confirmed"  # Redis or not
        event = OutboxEvent.objects.get(kind="booking_confirmed", recipients=[user.pk])
        assert event.relayed_at is None and not InboxMessage.objects.filter(user=user).exists()

        redis_proc = _redis_server(port)  # Redis is back: beat's sweeper relays, workers send
        _wait(lambda: InboxMessage.objects.filter(user=user, kind="booking_confirmed").exists(),
              90, "the notification after Redis came back")
        assert InboxMessage.objects.filter(user=user).count() == 1
    finally:
        for proc in (worker, beat):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        stop_process(redis_proc)


def test_fan_out_survives_kill_9_of_a_worker(committed_hospital_a, tmp_path, settings, point_celery_at):
    """2,000 recipients; the worker is killed mid-way; another finishes; one message each."""
    from django.contrib.auth import get_user_model


    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    redis_proc = _redis_server(port)
    gateway = FakeSmsGateway().start()
    gateway.delay = 0.4  # slow enough to kill the worker half-way
    env = subprocess_env(REDIS_URL=url, TEST_REDIS_DB="0", SMS_GATEWAY_URL=gateway.url,
                         CELERY_VISIBILITY_TIMEOUT="5")
    User = get_user_model()
    base = 17500000000 + (os.getpid() % 1000) * 10000
    users = User.objects.bulk_create([User(phone=str(base + i), name=f"扇出{i}")
                                      for i in range(2000)])
    ids = [u.pk for u in users]
    point_celery_at(url)
    first = _start(_worker_cmd(), env, open(tmp_path / "first.log", "wb"))
    second = None
    try:
        _wait(lambda: redis.Redis(port=port).exists(WORKER_HEARTBEAT_KEY), 60, "first worker")
        event = notify(kind="announcement", hospital=committed_hospital_a,
                       recipients=ids, context={"title": "停诊通知", "body": "心内科明日停诊"})
        _wait(lambda: Delivery.objects.filter(event=event, status="sent").exists(), 60,
              "the first deliveries")
        os.killpg(first.pid, signal.SIGKILL)  # kill -9, mid fan-out
        first.wait()
        done = Delivery.objects.filter(event=event, status="sent").count()
        assert 0 < done < 4000, done
        second = _start(_worker_cmd(), env, open(tmp_path / "second.log", "wb"))
        _wait(lambda: Delivery.objects.filter(event=event, status="sent").count() == 4000, 240,
              "every delivery")
        inbox = list(InboxMessage.objects.filter(kind="announcement", user_id__in=ids)
                     .values_list("user_id", flat=True))
        assert sorted(inbox) == sorted(ids)  # exactly one inbox message each
        phones = sorted(m["to"] for m in gateway.accepted.values())
        assert phones == sorted(u.phone for u in users)  # exactly one SMS each
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        gateway.stop()
        stop_process(redis_proc)
        connection.set_schema_to_public()
