"""Benchmark: partner API slot search vs the trivial hospital page, over real HTTP.

    python -m portal.dev.devstack exec -- .venv/bin/python bench/api_read.py [--quick]
        [--hospitals 20] [--clients 50] [--workers 2] [--threads 4] [--db-name portal_apiread]

One run: a scratch database (never the development one; dropped at the end, see
bench/_scratch.py), `--hospitals` hospitals provisioned through `hospital_provision`
(hosts h01.localhost ...), each seeded with doctors and a week of sessions (two a day,
30-minute slices of 5 places); one partner with one API key granted every hospital. A private
Redis and gunicorn with production settings (bench/booking_rush.py's helpers), the API rate
limit raised out of the way. Load: `--clients` Python threads, one keep-alive connection each,
all starting together:

  (a) trivial page: GET / of the hospitals' hosts in turn (home page), in two halves around (b);
  (b) slot search: GET /api/v1/hospitals/{code}/slots/?department=cardiology&available=true
      &date_from=..&date_to=.. on the platform host with the key, hospitals in turn (50 slots a
      page: auth, grant, schema switch, one slot query, serialisation).

`trivial_rps` is (a), `api_rps` (b), `ratio` their quotient (target >= 0.4), `p99_ms` the
slot search's 99th percentile, `errors` any non-2xx answer or connection failure. The last
line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import time as dtime
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import booking_rush as br
from _scratch import admin_sql, scratch_urls

ROOT = Path(__file__).resolve().parent.parent
T_START = time.perf_counter()


def say(msg: str) -> None:
    print(f"[bench {time.perf_counter() - T_START:6.1f}s] {msg}", flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer requests: about a minute")
    p.add_argument("--hospitals", type=int, default=20)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--doctors", type=int, default=None, help="per hospital (default 12; 6 quick)")
    p.add_argument("--requests", type=int, default=None,
                   help="requests per client per phase (default 120; 30 with --quick)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--db-name", default="portal_apiread")
    p.add_argument("--keep-db", action="store_true")
    args = p.parse_args(argv)
    args.doctors = args.doctors or (6 if args.quick else 12)
    args.requests = args.requests or (30 if args.quick else 120)
    return args


def seed(args) -> tuple[list[str], str]:
    """Hospitals with doctors and a week of sessions, a partner key granted all of them."""
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from portal.partners.models import Partner
    from portal.partners.services import api_key_create, grant_create
    from registration.models import Department, Doctor
    from registration.services.schedules import schedule_create
    from tenants.services import hospital_provision

    codes = []
    partner = Partner.objects.create(name="bench partner")
    for i in range(1, args.hospitals + 1):
        code = f"h{i:02d}"
        t = time.perf_counter()
        hospital = hospital_provision(code=code, name=f"压测医院{i:02d}", domain=f"{code}.localhost")
        connection.set_schema_to_public()
        grant_create(partner=partner, hospital=hospital)
        with tenant_context(hospital):
            dept = Department.objects.get(code="cardiology")
            today = timezone.localdate()
            for d in range(args.doctors):
                doctor = Doctor.objects.create(department=dept, name=f"医生{d:02d}",
                                               title="attending")
                for day in range(1, 8):
                    for period, start, end in (("am", dtime(8), dtime(12)),
                                               ("pm", dtime(14), dtime(17, 30))):
                        schedule_create(doctor=doctor, day=today + timedelta(days=day),
                                        period=period, start_time=start, end_time=end,
                                        slice_minutes=30, capacity=5)
        connection.set_schema_to_public()
        codes.append(code)
        say(f"hospital {code} provisioned and seeded in {time.perf_counter() - t:.2f}s")
    _key, raw = api_key_create(partner=partner, scopes=["schedules:read"])
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return codes, raw


def main(argv=None) -> int:
    args = parse_args(argv)
    bench_url, admin_url = scratch_urls(args.db_name)
    tmp = Path(tempfile.mkdtemp(prefix="bench_api_"))
    settings_module = br.write_settings(tmp)
    env = {
        "DATABASE_URL": bench_url,
        "SECRET_KEY": "bench-api-" + secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": ".localhost,localhost,127.0.0.1",
        **br.production_env(tmp),
        "DJANGO_SETTINGS_MODULE": settings_module,
        "CONN_MAX_AGE": "60",
        "LOG_LEVEL": "WARNING",
        "PARTNER_API_RATE_LIMIT": "100000000",
        "PYTHONPATH": os.pathsep.join([str(tmp), str(ROOT)]),
    }
    say(f"quick={args.quick} hospitals={args.hospitals} clients={args.clients} gunicorn "
        f"{args.workers}x{args.threads}")
    admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
    admin_sql(admin_url, f'CREATE DATABASE "{args.db_name}"')
    redis_proc, redis_url = br.redis_start(tmp)
    env.update({"REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url,
                "CELERY_RESULT_BACKEND": redis_url})
    os.environ.update(env)
    sys.path[:0] = [str(tmp), str(ROOT)]
    procs: list[subprocess.Popen] = []
    result: dict = {}
    try:
        result = run(args, env, tmp, procs)
    finally:
        for proc in procs:
            br.stop(proc)
        from django.db import connections

        connections.close_all()
        br.stop(redis_proc)
        if not args.keep_db:
            admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
            say(f"dropped scratch database {args.db_name}")
        shutil.rmtree(tmp, ignore_errors=True)
    result["wall_seconds"] = round(time.perf_counter() - T_START, 1)
    result["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


def run(args, env: dict, tmp: Path, procs: list) -> dict:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from tenants.services import platform_ensure

    assert not settings.DEBUG and settings.DATABASES["default"]["NAME"] == args.db_name
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
    connection.set_schema_to_public()
    platform_ensure(domains=["localhost"])
    call_command("collectstatic", interactive=False, verbosity=0)
    codes, key = seed(args)
    today = timezone.localdate()
    date_from, date_to = (today + timedelta(days=1)).isoformat(), \
        (today + timedelta(days=6)).isoformat()

    port = br.free_port()
    web_log = open(tmp / "web.log", "wb")  # noqa: SIM115
    worker_args = ["-w", str(args.workers)]
    if args.threads > 1:
        worker_args += ["-k", "gthread", "--threads", str(args.threads)]
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi", "-b", f"127.0.0.1:{port}",
         *worker_args, "--timeout", "120", "--keep-alive", "30"],
        cwd=ROOT, env={**os.environ, **env}, stdout=web_log, stderr=subprocess.STDOUT)
    procs.append(web)
    deadline = time.time() + 60
    while not br.port_open(port):
        if web.poll() is not None or time.time() > deadline:
            raise SystemExit("[bench] gunicorn did not start:\n" + (tmp / "web.log").read_text())
        time.sleep(0.1)
    br.CPU_METER = br.CpuMeter(web.pid, args.db_name)

    def api_req(k: int) -> tuple:
        code = codes[k % len(codes)]
        query = urlencode({"department": "cardiology", "available": "true",
                           "date_from": date_from, "date_to": date_to})
        return ("GET", f"/api/v1/hospitals/{code}/slots/?{query}", None,
                {"Host": "localhost", "X-Api-Key": key, "Accept": "application/json"})

    def page_req(k: int) -> tuple:
        # Accept */* as in booking_rush: a browser's text/html first gets the passive SSO check
        return ("GET", "/", None, {"Host": f"{codes[k % len(codes)]}.localhost",
                                   "Accept": "*/*"})

    # Sanity: one slot search returns a full page of slots.
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    method, path, _body, headers = api_req(0)
    c.request(method, path, headers=headers)
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    if r.status != 200 or len(body.get("results", [])) != 50:
        raise SystemExit(f"[bench] slot search answered {r.status}: {str(body)[:300]}")

    C, N = args.clients, args.requests
    br.run_phase("warm-up", port, [[page_req(k + i) for i in range(5)] +
                                   [api_req(k + i) for i in range(5)] for k in range(C)])
    time.sleep(1)
    halves = [br.run_phase("(a) GET / (hospital home), first half", port,
                           [[page_req(k + i) for i in range(N // 2)] for k in range(C)])]
    time.sleep(1)
    api = br.run_phase("(b) GET slots (partner API)", port,
                       [[api_req(k + i) for i in range(N)] for k in range(C)])
    time.sleep(1)
    halves.append(br.run_phase("(a) GET / (hospital home), second half", port,
                               [[page_req(k + i) for i in range(N // 2)] for k in range(C)]))
    trivial = br.combine("(a) GET / (hospital home)", halves)
    errors = trivial["errors"] + api["errors"]
    if errors:
        br.show_server_errors(tmp / "web.log")
    ratio = api["rps"] / trivial["rps"]
    say(f"ratio {ratio:.2f} (target >= 0.4), slot search p99 {api['p99_ms']:.0f} ms, "
        f"errors {errors}")
    return {
        "bench": "api_read", "quick": args.quick, "hospitals": len(codes),
        "clients": C, "gunicorn": f"{args.workers}x{args.threads}",
        "trivial_rps": round(trivial["rps"], 1), "api_rps": round(api["rps"], 1),
        "ratio": round(ratio, 3), "p50_ms": round(api["p50_ms"], 1),
        "p99_ms": round(api["p99_ms"], 1), "trivial_p99_ms": round(trivial["p99_ms"], 1),
        "errors": errors, "requests": trivial["requests"] + api["requests"],
        "cpu_ms_per_request": {"trivial": {k: round(v, 2) for k, v in
                                           trivial["cpu_ms_per_request"].items()},
                               "api": {k: round(v, 2) for k, v in
                                       api["cpu_ms_per_request"].items()}},
    }


if __name__ == "__main__":
    sys.exit(main())
