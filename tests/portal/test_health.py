"""/health/ reports database, Redis, worker and beat; 503 as soon as one is down."""

import subprocess
import sys
import time

import pytest
import redis

from portal.dev.devstack import redis_server_binary
from tests.helpers import ROOT, free_port, host_client, stop_process, subprocess_env


@pytest.fixture
def private_redis():
    """A Redis server of this test's own, so it can be stopped without harming the others."""
    port = free_port()
    proc = subprocess.Popen([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield proc, f"redis://127.0.0.1:{port}/0"
    stop_process(proc)


@pytest.mark.worker
def test_health_ok_with_worker_and_beat_then_503_when_redis_stops(db, private_redis, settings,
                                                                  tmp_path):
    proc, url = private_redis
    settings.REDIS_URL = url
    env = subprocess_env(REDIS_URL=url)
    env.pop("CELERY_BROKER_URL", None)
    # settings.test pins the tests' Redis database; point the children at the private server.
    env["TEST_REDIS_DB"] = "0"
    children = [
        subprocess.Popen([sys.executable, "-m", "celery", "-A", "portal", "worker", "-l",
                          "warning", "--concurrency", "1", "--without-gossip",
                          "--without-mingle"], cwd=ROOT, env=env,
                         stdout=open(tmp_path / "worker.log", "wb"), stderr=subprocess.STDOUT),
        subprocess.Popen([sys.executable, "-m", "celery", "-A", "portal", "beat", "-l",
                          "warning", "-s", str(tmp_path / "beat-schedule")], cwd=ROOT, env=env,
                         stdout=open(tmp_path / "beat.log", "wb"), stderr=subprocess.STDOUT),
    ]
    try:
        client = host_client("localhost")
        body = None
        for _ in range(300):
            r = client.get("/health/")
            body = r.json()
            if r.status_code == 200:
                break
            time.sleep(0.2)
        assert r.status_code == 200, (body, (tmp_path / "worker.log").read_text()[-2000:],
                                      (tmp_path / "beat.log").read_text()[-2000:])
        assert all(body["checks"][k]["ok"] for k in ("database", "redis", "worker", "beat"))
        # the same on a hospital's host
        assert host_client("alpha.localhost").get("/health/").status_code == 200

        stop_process(proc)
        r = client.get("/health/")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["redis"]["ok"] is False
        assert body["checks"]["database"]["ok"] is True
    finally:
        for child in children:
            stop_process(child)


def test_health_503_without_worker_heartbeat(db, private_redis, settings):
    _, url = private_redis
    settings.REDIS_URL = url
    r = host_client("localhost").get("/health/")
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["redis"]["ok"] and not checks["worker"]["ok"] and not checks["beat"]["ok"]
