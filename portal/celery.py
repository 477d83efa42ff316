"""The Celery app. Tasks run in the schema of the hospital that sent them.

tenant-schemas-celery puts the sender's schema in a `_schema_name` header and the worker
switches to it before the task runs. Beat runs entries without `tenant_schemas` once per
active, ready hospital.
"""

from __future__ import annotations

import os
import threading
import time

from celery import signals
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")

app = CeleryApp("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Beat wakes at least this often, so its heartbeat stays fresh even with nothing due.
app.conf.beat_max_loop_interval = 10
app.autodiscover_tasks()

WORKER_HEARTBEAT_KEY = "portal:health:worker"
BEAT_HEARTBEAT_KEY = "portal:health:beat"
HEARTBEAT_SECONDS = 10


def _redis():
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def _beat_heartbeat_now() -> None:
    try:
        _redis().set(BEAT_HEARTBEAT_KEY, str(time.time()), ex=3600)
    except Exception:  # Redis down: /health/ reports it; beat itself must keep going
        pass


@signals.worker_ready.connect
def _start_worker_heartbeat(sender=None, **kwargs) -> None:
    """Write a heartbeat key from the worker's main process every few seconds."""

    def beat() -> None:
        client = _redis()
        while True:
            try:
                client.set(WORKER_HEARTBEAT_KEY, str(time.time()), ex=3600)
            except Exception:
                pass
            time.sleep(HEARTBEAT_SECONDS)

    threading.Thread(target=beat, name="portal-worker-heartbeat", daemon=True).start()
