"""Benchmark: one notification event fanned out to N recipients over inbox + SMS by 2 workers.

    python -m portal.dev.devstack exec -- .venv/bin/python bench/fanout.py [--quick]
        [--recipients N] [--workers 2] [--redis-db 7] [--timeout 300]
        [--db-name portal_bench_fanout] [--keep-db] [--keep-logs]

Like bench/provision.py and bench/reconcile.py it never touches the development database: it
drops and recreates a scratch database (`portal_bench_fanout` by default) on the server named
in DATABASE_URL, runs `migrate_schemas --shared`, `platform_ensure` and one
`hospital_provision` there, and drops it again at the end.

Set-up (not timed):

* N accounts bulk-created in the public schema (default 10,000; `--quick` 2,000), each with a
  distinct mobile number, no email (so exactly two channels: inbox and SMS);
* the fake SMS gateway (portal.dev.fake_sms.FakeSmsGateway) in a thread of this
  process, on a free port;
* `--workers` (default 2) separate Celery worker *processes*, each
  `celery -A portal worker --concurrency 1 --pool prefork` (so 2 processes do the work, one
  task at a time each), with DJANGO_SETTINGS_MODULE=portal.settings.local, DEBUG=false,
  DATABASE_URL = the scratch database, REDIS_URL / broker / result backend = the dev Redis on
  its own database number (`--redis-db`, default 7, FLUSHDB'd before the run so no stale
  tasks are picked up) and SMS_GATEWAY_URL = the fake gateway. The bench waits until each
  worker logged "ready".

Measured: `notify(kind="announcement", hospital=…, recipients=all N, context=…)` in one
transaction; the clock starts just before COMMIT (the on-commit hook queues the relay task),
and stops at the last delivery: max(Delivery.sent_at), which a worker sets after the inbox
insert or the gateway's 200 for its batch. The bench polls every 50 ms until every
recipient has its inbox message and its SMS (or `--timeout`).

Checks:

* duplicates = inbox rows beyond one per recipient for this event + SMS accepted by the
  gateway beyond one per recipient's mobile number (must be 0). `sms_resubmitted` is the
  gateway's count of repeated message ids it acknowledged without sending (redeliveries
  made harmless by the dedupe key; reported, not a duplicate);
* lost = recipients without exactly one inbox message and exactly one SMS (must be 0);
* delivered = inbox messages + SMS accepted for the recipients (2 N when all arrived).

The last line printed is one JSON object:
{"bench": "fanout", "recipients", "delivered", "seconds", "per_s", "duplicates", "lost", …}
Exit code 1 if anything was lost or duplicated, or the deliveries did not finish in time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

from _scratch import admin_sql, scratch_urls  # bench/ is on sys.path: the script's folder

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS = "redis://127.0.0.1:56379/0"
T_START = time.perf_counter()
HOSPITAL_CODE = "fobench"
PHONE_BASE = 16600000000




def say(msg: str) -> None:
    print(f"[bench {time.perf_counter() - T_START:6.1f}s] {msg}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2,000 recipients instead of 10,000")
    p.add_argument("--recipients", type=int, default=None)
    p.add_argument("--workers", type=int, default=2,
                   help="worker processes, each --concurrency 1 (default 2)")
    p.add_argument("--redis-db", type=int, default=7,
                   help="database number on the dev Redis for the broker (default 7; flushed)")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="give up waiting for the last delivery after this many seconds")
    p.add_argument("--db-name", default="portal_bench_fanout")
    p.add_argument("--keep-db", action="store_true")
    p.add_argument("--keep-logs", action="store_true", help="keep the workers' log files")
    args = p.parse_args(argv)
    if args.recipients is None:
        args.recipients = 2_000 if args.quick else 10_000
    if not 1 <= args.recipients <= 1_000_000:
        p.error("--recipients: 1 .. 1,000,000")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.db_name):
        p.error("--db-name: lowercase letters, digits and underscores only")
    if args.redis_db == 0:
        p.error("--redis-db: not 0 (the development database)")
    return args


# --------------------------------------------------------------------------- scratch services


def redis_url_for(db: int) -> str:
    base = os.environ.get("REDIS_URL") or DEFAULT_REDIS
    return re.sub(r"/\d*$", "", base.rstrip("/")) + f"/{db}"


def start_workers(n: int, env: dict, logdir: str) -> list[tuple[subprocess.Popen, Path]]:
    procs = []
    for i in range(n):
        log = Path(logdir) / f"worker{i + 1}.log"
        cmd = [sys.executable, "-m", "celery", "-A", "portal", "worker", "-l", "info",
               "--concurrency", "1", "--pool", "prefork", "-n", f"fanout{i + 1}@%h",
               "--without-gossip", "--without-mingle", "--without-heartbeat"]
        # own process group: stopping it takes the pool child too
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "wb"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        procs.append((proc, log))
    deadline = time.monotonic() + 90
    for proc, log in procs:
        while b" ready." not in log.read_bytes():
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}:\n"
                                   + log.read_text(errors="replace")[-3000:])
            if time.monotonic() > deadline:
                raise RuntimeError("worker not ready in 90 s:\n"
                                   + log.read_text(errors="replace")[-3000:])
            time.sleep(0.1)
    return procs


def stop_workers(procs) -> None:
    for proc, _log in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc, _log in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --------------------------------------------------------------------------- the run


def setup(n: int):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from tenants.services import hospital_provision, platform_ensure

    t = time.perf_counter()
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
    connection.set_schema_to_public()
    platform_ensure(domains=["localhost"])
    hospital = hospital_provision(code=HOSPITAL_CODE, name="通知扇出测试医院",
                                  name_en="Fan-out bench", domain=f"{HOSPITAL_CODE}.bench.localhost")
    connection.set_schema_to_public()
    say(f"shared schema, platform and hospital {hospital.schema_name} in "
        f"{time.perf_counter() - t:.2f}s")
    t = time.perf_counter()
    User = get_user_model()
    users = User.objects.bulk_create(
        [User(phone=str(PHONE_BASE + i), name=f"收件人{i}") for i in range(n)], batch_size=2000)
    ids = [u.pk for u in users]
    phones = {u.pk: u.phone for u in users}
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE accounts_user")
    say(f"{n:,} accounts bulk-created in {time.perf_counter() - t:.2f}s")
    return hospital, ids, phones


def progress(event_id: int) -> tuple[int, int]:
    from django.db.models import Count, Q

    from portal.notifications.models import Delivery

    row = Delivery.objects.filter(event_id=event_id).aggregate(
        total=Count("pk"), sent=Count("pk", filter=Q(status=Delivery.Status.SENT)))
    return row["total"], row["sent"]


def run(args: argparse.Namespace, env: dict, logdir: str) -> tuple[dict, bool]:
    import django

    django.setup()
    from django.db import connection, transaction
    from django.db.models import Count, Max, Min

    from portal.dev.fake_sms import FakeSmsGateway
    from portal.notifications.models import Delivery, InboxMessage
    from portal.notifications.services import CHUNK_SIZE, notify

    n = args.recipients
    hospital, ids, phones = setup(n)
    gateway = FakeSmsGateway().start()
    env["SMS_GATEWAY_URL"] = gateway.url
    say(f"fake SMS gateway at {gateway.url}")
    procs = []
    try:
        t = time.perf_counter()
        procs = start_workers(args.workers, env, logdir)
        say(f"{args.workers} worker processes (celery -A portal worker --concurrency 1 each) "
            f"ready in {time.perf_counter() - t:.1f}s; broker {env['REDIS_URL']}")

        from django.utils import timezone

        load_before = os.getloadavg()[0]
        with transaction.atomic():
            event = notify(kind="announcement", hospital=hospital, recipients=ids,
                           context={"title": "停诊通知",
                                    "body": "心内科张医生明日上午停诊，已预约的患者请改约或退号。"})
            wall0 = timezone.now()
            t0 = time.perf_counter()
        commit_s = time.perf_counter() - t0
        say(f"notify(): event {event.pk} for {n:,} recipients committed "
            f"({commit_s * 1000:.0f} ms for COMMIT + queuing the relay); {CHUNK_SIZE} per chunk "
            f"-> {-(-n // CHUNK_SIZE)} chunk tasks")

        want = 2 * n
        deadline = t0 + args.timeout
        last_report = 0.0
        sent = total = 0
        while time.perf_counter() < deadline:
            total, sent = progress(event.pk)
            if sent >= want and len(gateway.accepted) >= n:
                break
            if time.perf_counter() - last_report >= 5:
                last_report = time.perf_counter()
                say(f"  {time.perf_counter() - t0:5.1f}s: {sent:,}/{want:,} deliveries sent "
                    f"({total:,} rows), {len(gateway.accepted):,} SMS at the gateway")
            time.sleep(0.05)
        polled_s = time.perf_counter() - t0
        finished = sent >= want and len(gateway.accepted) >= n
        say(("all deliveries sent" if finished else "TIMED OUT") +
            f" after {polled_s:.2f}s (polled): {sent:,}/{want:,}")
        time.sleep(1.0)  # let anything late (a redelivered chunk) show up in the counts

        # ------------------------------------------------------------------ checks
        event.refresh_from_db()
        agg = Delivery.objects.filter(event=event).aggregate(
            first=Min("sent_at"), last=Max("sent_at"))
        per_channel = {row["channel"]: row for row in Delivery.objects.filter(event=event)
                       .values("channel").annotate(rows=Count("pk"), last=Max("sent_at"))}
        inbox_per_user = dict(InboxMessage.objects.filter(dedupe_key__startswith=f"{event.pk}:")
                              .values("user_id").annotate(c=Count("pk"))
                              .values_list("user_id", "c"))
        sms_per_phone: dict[str, int] = {}
        with gateway.lock:
            accepted = list(gateway.accepted.values())
            resubmitted = gateway.duplicates
        for m in accepted:
            sms_per_phone[m["to"]] = sms_per_phone.get(m["to"], 0) + 1
        dup_inbox = sum(c - 1 for c in inbox_per_user.values() if c > 1)
        dup_sms = sum(c - 1 for c in sms_per_phone.values() if c > 1)
        lost_users = [uid for uid in ids if inbox_per_user.get(uid) != 1
                      or sms_per_phone.get(phones[uid]) != 1]
        delivered = sum(min(inbox_per_user.get(uid, 0), 1) + min(sms_per_phone.get(phones[uid], 0), 1)
                        for uid in ids)
        strangers = set(sms_per_phone) - set(phones.values())
        seconds = ((agg["last"] - wall0).total_seconds() if agg["last"] else polled_s)
        relay_s = (event.relayed_at - wall0).total_seconds() if event.relayed_at else None
        first_s = (agg["first"] - wall0).total_seconds() if agg["first"] else None
        statuses = dict(Delivery.objects.filter(event=event).values("status")
                        .annotate(c=Count("pk")).values_list("status", "c"))
        retries = Delivery.objects.filter(event=event, attempts__gt=1).count()
        logs = "".join(log.read_text(errors="replace") for _p, log in procs)
        chunk_runs = len(re.findall(r"deliver_chunk\[[^\]]+\] succeeded", logs))
        chunk_retries = len(re.findall(r"notifications\.deliver_chunk\[[^\]]+\] retry", logs))
        per_worker = [len(re.findall(r"deliver_chunk\[[^\]]+\] succeeded",
                                     log.read_text(errors="replace"))) for _p, log in procs]
        say(f"event relayed {relay_s:.2f}s after commit; first delivery at {first_s:.2f}s, "
            f"last at {seconds:.2f}s" if relay_s is not None and first_s is not None else
            "event never relayed")
        for ch, row in sorted(per_channel.items()):
            last = (row["last"] - wall0).total_seconds() if row["last"] else float("nan")
            say(f"  channel {ch}: {row['rows']:,} delivery rows, last sent at {last:.2f}s")
        say(f"  statuses {statuses}; chunk tasks succeeded {chunk_runs} "
            f"(per worker {per_worker}), retried {chunk_retries}")
        say(f"  inbox: {len(inbox_per_user):,} recipients, {dup_inbox} extra rows; SMS: "
            f"{len(sms_per_phone):,} numbers, {dup_sms} extra, {resubmitted} repeated ids "
            f"acknowledged without sending, {len(strangers)} to unknown numbers")
        duplicates = dup_inbox + dup_sms
        lost = len(lost_users)
        per_s = delivered / seconds if seconds > 0 else 0.0
        say(f"{delivered:,} messages delivered in {seconds:.2f}s = {per_s:,.0f}/s; "
            f"duplicates {duplicates}, lost {lost}"
            + (f" (e.g. user ids {lost_users[:5]})" if lost else ""))
        ok = finished and duplicates == 0 and lost == 0 and not strangers
        out = {
            "bench": "fanout",
            "recipients": n,
            "delivered": delivered,
            "seconds": round(seconds, 3),
            "per_s": round(per_s, 1),
            "duplicates": duplicates,
            "lost": lost,
            "ok": ok,
            "target_met": (ok and seconds < 60) if n >= 10_000 else None,
            "channels": ["inbox", "sms"],
            "workers": f"{args.workers} processes x --concurrency 1",
            "chunk_size": CHUNK_SIZE,
            "chunks": -(-n // CHUNK_SIZE),
            "chunks_per_worker": per_worker,
            "chunk_retries": chunk_retries,
            "relay_seconds": round(relay_s, 3) if relay_s is not None else None,
            "first_delivery_seconds": round(first_s, 3) if first_s is not None else None,
            "last_inbox_seconds": round((per_channel["inbox"]["last"] - wall0).total_seconds(), 3)
            if per_channel.get("inbox", {}).get("last") else None,
            "last_sms_seconds": round((per_channel["sms"]["last"] - wall0).total_seconds(), 3)
            if per_channel.get("sms", {}).get("last") else None,
            "polled_seconds": round(polled_s, 3),
            "commit_ms": round(commit_s * 1000, 1),
            "duplicates_inbox": dup_inbox,
            "duplicates_sms": dup_sms,
            "sms_resubmitted": resubmitted,
            "deliveries_retried": retries,
            "statuses": statuses,
            "loadavg_1m_before": round(load_before, 2),
            "cpus": os.cpu_count(),
            "quick": args.quick,
        }
        return out, ok
    finally:
        stop_workers(procs)
        gateway.stop()
        connection.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench_url, admin_url = scratch_urls(args.db_name)
    redis_url = redis_url_for(args.redis_db)
    os.environ.update(DATABASE_URL=bench_url, REDIS_URL=redis_url, CELERY_BROKER_URL=redis_url,
                      CELERY_RESULT_BACKEND=redis_url, DJANGO_SETTINGS_MODULE="portal.settings.local",
                      DEBUG="false")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    say(f"recipients={args.recipients:,} workers={args.workers} quick={args.quick}")
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    say(f"flushed {redis_url} (the bench's broker database)")
    say(f"recreating scratch database {args.db_name} on {urlparse(bench_url).netloc}")
    admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
    admin_sql(admin_url, f'CREATE DATABASE "{args.db_name}"')
    logdir = tempfile.mkdtemp(prefix="fanout_bench_")
    result: dict = {}
    ok = False
    try:
        result, ok = run(args, env, logdir)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
            say(f"dropped scratch database {args.db_name}")
        redis.Redis.from_url(redis_url).flushdb()
        if args.keep_logs or not ok:
            say(f"worker logs in {logdir}")
        else:
            import shutil

            shutil.rmtree(logdir, ignore_errors=True)
    result["wall_seconds"] = round(time.perf_counter() - T_START, 1)
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
