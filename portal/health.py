"""/health/: database, Redis, worker heartbeat and beat heartbeat; 503 when any is down."""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from portal.celery import BEAT_HEARTBEAT_KEY, WORKER_HEARTBEAT_KEY


def _check_database() -> dict:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": exc.__class__.__name__}


def _heartbeat(client: redis.Redis, key: str) -> dict:
    raw = client.get(key)
    if raw is None:
        return {"ok": False, "error": "no heartbeat yet"}
    age = max(0.0, time.time() - float(raw))
    return {"ok": age <= settings.HEALTH_HEARTBEAT_MAX_AGE, "age_seconds": round(age, 1)}


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    checks: dict[str, dict] = {"database": _check_database()}
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
        checks["redis"] = {"ok": True}
        checks["worker"] = _heartbeat(client, WORKER_HEARTBEAT_KEY)
        checks["beat"] = _heartbeat(client, BEAT_HEARTBEAT_KEY)
    except redis.RedisError as exc:
        checks["redis"] = {"ok": False, "error": exc.__class__.__name__}
        checks["worker"] = {"ok": False, "error": "unknown: Redis is down"}
        checks["beat"] = {"ok": False, "error": "unknown: Redis is down"}
    finally:
        client.close()
    ok = all(c["ok"] for c in checks.values())
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                        status=200 if ok else 503)
