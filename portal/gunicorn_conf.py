"""Gunicorn settings for production: `gunicorn -c python:portal.gunicorn_conf portal.wsgi`.

`bench/booking_rush.py` serves with this same file, so its figures are what a deployment
gets. Command-line options override it (e.g. `-b 0.0.0.0:8000`).

Sizing: one worker process per core (WEB_CONCURRENCY), each with a few threads (gthread):
a request spends part of its time waiting on PostgreSQL and Redis, when another thread of the
same process can run. With the booking rush on 2 cores, 2 x 8 threads measured no better
than 2 x 4 (and, earlier, neither did 4 sync workers nor 3 x 2). Every thread keeps its own
persistent database connection (CONN_MAX_AGE), so PostgreSQL sees workers x threads
connections per machine.
"""

from __future__ import annotations

import multiprocessing
import os


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (containers)
    except AttributeError:
        return multiprocessing.cpu_count()


workers = int(os.environ.get("WEB_CONCURRENCY") or _cores())
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
# A request that takes this long is stuck: the worker is restarted.
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 30)
# Load balancers and proxies reuse connections; keep idle ones open a while (an idle
# keep-alive connection costs a socket, not a thread, with gthread).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE") or 30)
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
