"""Benchmark: reconcile one day's provider statement of N lines against N local payments.

    python -m portal.dev.devstack exec -- .venv/bin/python bench/reconcile.py [--quick]
        [--lines N] [--inject K] [--day YYYY-MM-DD] [--profile] [--no-breakdown]
        [--db-name portal_bench_reconcile] [--keep-db] [--keep-file]

Like bench/provision.py it never touches the development database: it drops and recreates a
scratch database (`portal_bench_reconcile` by default) on the server named in DATABASE_URL,
runs `migrate_schemas --shared`, `platform_ensure` and one `hospital_provision` there, and
drops it again at the end.

Generation (timed separately, not part of `seconds`), all in PostgreSQL:

* one payer in `accounts_user` (public schema), through the ORM;
* about N*20/21 orders for the day in the hospital's schema with one INSERT … SELECT over
  generate_series: provider 'sandbox', status 'paid' (every 20th one 'partially_refunded'
  with a succeeded refund of half its self-pay part), paid_at inside the day in
  Asia/Shanghai, total = insurance + self-pay, refunded <= self-pay;
* the refunds with a second INSERT … SELECT; then VACUUM ANALYZE (what autovacuum would have
  done to a table that filled up over a day);
* the statement file in the sandbox's CSV format (payments/providers/sandbox_protocol.py:
  header, PAY lines by time, REFUND lines by time, `# total_count=…` trailer), written with
  COPY (SELECT …) TO STDOUT from the same generate_series formulas, not from the tables.

Injected discrepancies, K of each (default 100), disjoint sets of orders:

    payment missing_locally      K PAY lines for orders that do not exist locally
    payment missing_at_provider  K local paid orders left out of the statement
    payment amount_mismatch      K PAY lines with the amount 1 fen higher than ours
    payment status_mismatch      K PAY lines for orders whose local status is 'closed'
    refund  missing_locally      K REFUND lines with refund numbers we never issued
    refund  missing_at_provider  K local succeeded refunds left out of the statement
    refund  amount_mismatch      K REFUND lines with the amount 1 fen higher than ours
    refund  status_mismatch      K REFUND lines for refunds still 'pending' locally

Measured: `payments.reconciliation.reconcile_day(day=…, provider=StatementFileProvider,
resolve=False)` inside the hospital's schema (`tenant_context`). The provider streams the file
through the sandbox adapter's `parse_statement`; its refund()/query_order() are local no-ops
that succeed. The bench then checks the discrepancies found, per line kind and kind, equal the
injected ones (counts and the very order/refund numbers) and exits 1 if not.

Memory: `peak_mb` is the process's peak resident set (VmHWM in /proc/self/status) during
reconcile_day, after resetting the high-water mark to the current RSS with
`echo 5 > /proc/self/clear_refs` just before; `peak_mb_sampled` is the maximum of VmRSS
sampled every 10 ms by a thread, as a cross-check; `rss_before_mb` is what Django etc. held
before reconciling. PostgreSQL's own memory is not in these figures (another process).

Breakdown: the SQL statements reconcile_day runs are timed through Django's execute_wrapper;
COPY (parsing the file, building the CSV for COPY, and PostgreSQL loading it, which overlap)
is the remainder. CPU seconds of this process and of its PostgreSQL backend (read from
/proc/<backend pid>/stat; same machine) are printed too: on a shared 2-core machine the wall
time depends on what else runs. Afterwards (unless --no-breakdown) the statement is streamed
again without PostgreSQL to show how much CPU the Python side takes: parse_statement alone,
and parse_statement + the CSV re-encoding reconcile_day feeds to COPY. `--profile` runs
reconcile_day under cProfile (slower) and prints the top functions.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from _scratch import admin_sql, scratch_urls  # bench/ is on sys.path: the script's folder

ROOT = Path(__file__).resolve().parent.parent
T_START = time.perf_counter()
CST = ZoneInfo("Asia/Shanghai")
HOSPITAL_CODE = "rcbench"
KINDS = ("missing_locally", "missing_at_provider", "amount_mismatch", "status_mismatch")




def say(msg: str) -> None:
    print(f"[bench {time.perf_counter() - T_START:6.1f}s] {msg}", flush=True)


# --------------------------------------------------------------------------- options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="100,000 lines instead of 1,000,000")
    p.add_argument("--lines", type=int, default=None, help="statement lines (default 1,000,000)")
    p.add_argument("--inject", type=int, default=100,
                   help="discrepancies injected per kind, for payments and refunds each "
                        "(default 100; capped at lines/210)")
    p.add_argument("--day", default=None,
                   help="statement day YYYY-MM-DD (default: yesterday in Asia/Shanghai)")
    p.add_argument("--profile", action="store_true", help="run reconcile_day under cProfile")
    p.add_argument("--no-breakdown", action="store_true",
                   help="skip re-streaming the file without PostgreSQL afterwards")
    p.add_argument("--db-name", default="portal_bench_reconcile",
                   help="scratch database (default portal_bench_reconcile)")
    p.add_argument("--keep-db", action="store_true", help="do not drop the scratch database")
    p.add_argument("--keep-file", action="store_true", help="do not delete the statement file")
    args = p.parse_args(argv)
    if args.lines is None:
        args.lines = 100_000 if args.quick else 1_000_000
    if args.lines < 2_000:
        p.error("--lines: at least 2000")
    args.day = date.fromisoformat(args.day) if args.day else \
        datetime.now(CST).date() - timedelta(days=1)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.db_name):
        p.error("--db-name: lowercase letters, digits and underscores only")
    return args


# --------------------------------------------------------------------------- scratch database


# --------------------------------------------------------------------------- memory


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class RssSampler(threading.Thread):
    def __init__(self, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak_kb = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak_kb = max(self.peak_kb, _status_kb("VmRSS"))
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        self.peak_kb = max(self.peak_kb, _status_kb("VmRSS"))
        return self.peak_kb


def mb(kb: int) -> float:
    return round(kb / 1024, 1)


# --------------------------------------------------------------------------- the data

# One row per local order i (1..M), a pure function of i: the local tables and the statement
# file are both written from it. Flags pick the disjoint injected sets: i = j*STEP + offset for
# j < K (STEP is a multiple of 20 and at least 100, so the offsets below never collide, and
# offsets 20/40/60 land on orders that have a refund, i % 20 = 0).
GEN = """
SELECT s.*,
       (%(day)s::timestamp + s.off * interval '1 second') AS t_local,
       (%(day)s::timestamp + (s.off + 60 + s.i %% 14000) * interval '1 second') AS rt_local
FROM (SELECT i,
             'B' || %(tag)s || lpad(i::text, 9, '0') AS otn,
             'SBX' || %(tag)s || lpad(i::text, 12, '0') AS txn,
             100 + (i * 7919) %% 49900 AS self_pay,
             ((i * 13) %% 4) * 500 AS ins,
             (i * 104729) %% 72000 AS off,
             i %% 20 = 0 AS refunded,
             (100 + (i * 7919) %% 49900) / 2 AS refund_amt,
             i %% %(step)s = 1 AND i / %(step)s < %(k)s AS pay_omitted,
             i %% %(step)s = 2 AND i / %(step)s < %(k)s AS pay_amount_off,
             i %% %(step)s = 3 AND i / %(step)s < %(k)s AS closed,
             i %% %(step)s = 20 AND i / %(step)s < %(k)s AS refund_omitted,
             i %% %(step)s = 40 AND i / %(step)s < %(k)s AS refund_amount_off,
             i %% %(step)s = 60 AND i / %(step)s < %(k)s AS refund_pending
      FROM generate_series(1::bigint, %(m)s::bigint) AS i) s
"""

INSERT_ORDERS = """
INSERT INTO payments_order (out_trade_no, kind, description, payer_id, total_fen, insurance_fen,
    self_pay_fen, refunded_fen, currency, status, provider, provider_txn_id, notify_url,
    expires_at, paid_at, closed_at, close_reason, needs_attention, attention_reason,
    created_at, updated_at)
SELECT g.otn, CASE WHEN g.i %% 3 = 0 THEN 'registration' ELSE 'clinic_bill' END,
       'bench order', %(payer)s, g.ins + g.self_pay, g.ins, g.self_pay,
       CASE WHEN g.refunded AND NOT g.refund_pending THEN g.refund_amt ELSE 0 END,
       'CNY',
       CASE WHEN g.closed THEN 'closed'
            WHEN g.refunded AND NOT g.refund_pending THEN 'partially_refunded'
            ELSE 'paid' END,
       'sandbox', CASE WHEN g.closed THEN '' ELSE g.txn END, '',
       (g.t_local + interval '14 minutes') AT TIME ZONE 'Asia/Shanghai',
       CASE WHEN g.closed THEN NULL ELSE g.t_local AT TIME ZONE 'Asia/Shanghai' END,
       CASE WHEN g.closed THEN (g.t_local + interval '15 minutes') AT TIME ZONE 'Asia/Shanghai' END,
       CASE WHEN g.closed THEN 'expired' ELSE '' END, false, '',
       (g.t_local - interval '1 minute') AT TIME ZONE 'Asia/Shanghai',
       g.t_local AT TIME ZONE 'Asia/Shanghai'
FROM (""" + GEN + """) g
"""

INSERT_REFUNDS = """
INSERT INTO payments_refund (order_id, out_refund_no, amount_fen, reason, status,
    provider_refund_id, failure_reason, requested_by_id, created_at, succeeded_at)
SELECT o.id, 'R' || g.otn, g.refund_amt, 'bench refund',
       CASE WHEN g.refund_pending THEN 'pending' ELSE 'succeeded' END,
       CASE WHEN g.refund_pending THEN '' ELSE 'SBR' || g.txn END, '', NULL,
       (g.rt_local - interval '30 seconds') AT TIME ZONE 'Asia/Shanghai',
       CASE WHEN g.refund_pending THEN NULL ELSE g.rt_local AT TIME ZONE 'Asia/Shanghai' END
FROM (""" + GEN + """) g JOIN payments_order o ON o.out_trade_no = g.otn
WHERE g.refunded
"""

# The statement: what the provider saw, one query per section (t, otn, txn, amount,
# out_refund_no, refund_id), printed by STATEMENT_COPY and summed by STATEMENT_TOTALS.
PAY_ROWS = """
SELECT g.t_local AS t, g.otn, g.txn,
       g.self_pay + CASE WHEN g.pay_amount_off THEN 1 ELSE 0 END AS amount,
       NULL::text AS out_refund_no, NULL::text AS refund_id
FROM (""" + GEN + """) g WHERE NOT g.pay_omitted
UNION ALL  -- payments for orders we never created
SELECT %(day)s::timestamp + (3600 + j * 7) * interval '1 second',
       'BX' || %(tag)s || lpad(j::text, 9, '0'), 'SBXX' || %(tag)s || lpad(j::text, 11, '0'),
       1000 + j, NULL, NULL
FROM generate_series(1, %(k)s) AS j
"""

REFUND_ROWS = """
SELECT g.rt_local AS t, g.otn, g.txn,
       g.refund_amt + CASE WHEN g.refund_amount_off THEN 1 ELSE 0 END AS amount,
       'R' || g.otn AS out_refund_no, 'SBR' || g.txn AS refund_id
FROM (""" + GEN + """) g WHERE g.refunded AND NOT g.refund_omitted
UNION ALL  -- refunds we never asked for, on orders that exist
SELECT %(day)s::timestamp + (80000 + j) * interval '1 second',
       'B' || %(tag)s || lpad((j * %(step)s + 5)::text, 9, '0'),
       'SBX' || %(tag)s || lpad((j * %(step)s + 5)::text, 12, '0'), 100 + j,
       'RX' || %(tag)s || lpad(j::text, 9, '0'), 'SBRX' || %(tag)s || lpad(j::text, 9, '0')
FROM generate_series(0, %(k)s - 1) AS j
"""

# NULL prints as an empty unquoted CSV field, as in the sandbox's own file (an empty string
# would print as ""). The sandbox lists payments by time, then refunds by time.
STATEMENT_COPY = """
COPY (SELECT to_char(t, 'YYYY-MM-DD HH24:MI:SS'), otn, txn, '{type}', 'SUCCESS', amount, 'CNY',
             out_refund_no, refund_id
      FROM ({rows}) s ORDER BY t, otn, out_refund_no) TO STDOUT WITH (FORMAT csv)
"""

STATEMENT_TOTALS = "SELECT count(*), COALESCE(sum(amount), 0) FROM ({rows}) s"

HEADER = ("trade_time,out_trade_no,transaction_id,type,state,amount_fen,currency,"
          "out_refund_no,refund_id\n")


def plan(lines: int, inject: int) -> tuple[int, int, int]:
    """(orders M, injected per kind K, STEP) so that the statement has about `lines` lines.

    Statement lines = M - K + K (payments) + M//20 - K + K (refunds) = M + M//20.
    """
    m = lines * 20 // 21
    while m + m // 20 < lines:
        m += 1
    k = max(1, min(inject, m // 210))
    step = (m // k) // 20 * 20
    assert step >= 100 and (k - 1) * step + 60 <= m, (m, k, step)
    return m, k, step


def expected_sets(p: dict) -> dict[str, set[str]]:
    """The order (payments) or refund (refunds) numbers each injected discrepancy is about."""
    tag, k, step = p["tag"], p["k"], p["step"]

    def otn(i: int) -> str:
        return f"B{tag}{i:09d}"

    return {
        "payment/missing_locally": {f"BX{tag}{j:09d}" for j in range(1, k + 1)},
        "payment/missing_at_provider": {otn(j * step + 1) for j in range(k)},
        "payment/amount_mismatch": {otn(j * step + 2) for j in range(k)},
        "payment/status_mismatch": {otn(j * step + 3) for j in range(k)},
        "refund/missing_locally": {f"RX{tag}{j:09d}" for j in range(k)},
        "refund/missing_at_provider": {"R" + otn(j * step + 20) for j in range(k)},
        "refund/amount_mismatch": {"R" + otn(j * step + 40) for j in range(k)},
        "refund/status_mismatch": {"R" + otn(j * step + 60) for j in range(k)},
    }


# --------------------------------------------------------------------------- the provider


def make_provider_class():
    from payments.providers.base import (
        CallbackAck,
        OrderStatus,
        PaymentProvider,
        RefundResult,
    )
    from payments.providers.sandbox import parse_statement

    class StatementFileProvider(PaymentProvider):
        """The sandbox's statement read from a file; everything else a local no-op."""

        name = "sandbox"

        def __init__(self, path: str) -> None:
            self.path = path

        def fetch_statement(self, day):
            with open(self.path, encoding="utf-8", newline="") as f:
                yield from parse_statement(f)

        def create_payment(self, request):
            raise NotImplementedError("the bench provider takes no payments")

        def parse_callback(self, headers, body):
            raise NotImplementedError("the bench provider sends no callbacks")

        def ack(self, ok, message=""):
            return CallbackAck(200, b'{"code": "SUCCESS"}')

        def query_order(self, out_trade_no):
            return OrderStatus(out_trade_no=out_trade_no, status="paid")

        def close_order(self, out_trade_no):
            return None

        def refund(self, *, out_trade_no, out_refund_no, amount_fen, total_fen, reason,
                   notify_url):
            return RefundResult(out_refund_no=out_refund_no, status="succeeded",
                                provider_refund_id="BENCH" + out_refund_no[:40])

    return StatementFileProvider


# --------------------------------------------------------------------------- phases


def setup_hospital():
    from django.core.management import call_command
    from django.db import connection

    from tenants.services import hospital_provision, platform_ensure

    t = time.perf_counter()
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
    connection.set_schema_to_public()
    platform_ensure(domains=["localhost"])
    hospital = hospital_provision(code=HOSPITAL_CODE, name="对账测试医院", name_en="Recon bench",
                                  domain=f"{HOSPITAL_CODE}.bench.localhost")
    connection.set_schema_to_public()
    from django.contrib.auth import get_user_model

    payer = get_user_model().objects.create_user("13800000000", None, name="对账付款人")
    say(f"shared schema, platform and hospital {hospital.schema_name} ready in "
        f"{time.perf_counter() - t:.2f}s; payer user id {payer.pk}")
    return hospital, payer


def generate(hospital, payer, params: dict, path: str) -> dict:
    from django.db import connection
    from django_tenants.utils import tenant_context

    times: dict = {}
    with tenant_context(hospital), connection.cursor() as cur:
        t = time.perf_counter()
        cur.execute(INSERT_ORDERS, {**params, "payer": payer.pk})
        orders = cur.rowcount
        times["orders"] = time.perf_counter() - t
        say(f"  {orders:,} orders inserted in {times['orders']:.2f}s")
        t = time.perf_counter()
        cur.execute(INSERT_REFUNDS, params)
        refunds = cur.rowcount
        times["refunds"] = time.perf_counter() - t
        say(f"  {refunds:,} refunds inserted in {times['refunds']:.2f}s")
        t = time.perf_counter()
        cur.execute("VACUUM ANALYZE payments_order")  # autocommit: outside any transaction
        cur.execute("VACUUM ANALYZE payments_refund")
        times["vacuum_analyze"] = time.perf_counter() - t
        say(f"  VACUUM ANALYZE in {times['vacuum_analyze']:.2f}s")

        t = time.perf_counter()
        import psycopg

        raw = psycopg.ClientCursor(connection.connection)  # binds client-side: has mogrify()
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(HEADER)
            f.flush()
            counts = {}
            for kind, rows in (("PAY", PAY_ROWS), ("REFUND", REFUND_ROWS)):
                sql = STATEMENT_COPY.format(type=kind, rows=rows)
                with raw.copy(raw.mogrify(sql, params)) as copy:
                    for data in copy:
                        f.write(bytes(data).decode())
                cur.execute(STATEMENT_TOTALS.format(rows=rows), params)
                counts[kind] = cur.fetchone()
            (pay_count, pay_total), (refund_count, refund_total) = counts["PAY"], counts["REFUND"]
            f.write(f"# total_count={pay_count + refund_count},pay_total_fen={pay_total},"
                    f"refund_total_fen={refund_total}\n")
        times["statement_file"] = time.perf_counter() - t
    size = os.path.getsize(path)
    say(f"  statement file {path}: {pay_count + refund_count:,} lines ({pay_count:,} PAY, "
        f"{refund_count:,} REFUND), {size / 1e6:.1f} MB, written in "
        f"{times['statement_file']:.2f}s")
    return {"orders": orders, "refunds": refunds, "pay_lines": pay_count,
            "refund_lines": refund_count, "pay_total_fen": int(pay_total),
            "refund_total_fen": int(refund_total), "file_bytes": size, "times": times}


class StatementTimer:
    """Times the SQL statements reconcile_day runs (COPY goes around it: the remainder)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []

    def __call__(self, execute, sql, params, many, context):
        t = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.rows.append((self.label(sql), time.perf_counter() - t))

    @staticmethod
    def label(sql: str) -> str:
        s = " ".join(sql.split())
        for needle, name in (("'missing_at_provider', 'payment'", "payments missing at provider"),
                             ("'missing_at_provider', 'refund'", "refunds missing at provider"),
                             ("GROUP BY out_trade_no", "payment diffs"),
                             ("GROUP BY out_refund_no", "refund diffs"),
                             ("COALESCE(SUM(self_pay_fen)", "local totals")):
            if needle in s:
                return name
        return s[:60]


def reconcile(hospital, provider, day: date, profile: bool) -> dict:
    from django.db import connection
    from django_tenants.utils import tenant_context

    from payments.reconciliation import reconcile_day

    timer = StatementTimer()
    gc.collect()
    rss_before = _status_kb("VmRSS")
    hwm_reset = reset_peak_rss()
    sampler = RssSampler()
    sampler.start()
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
    backend = backend_cpu_reader()
    with tenant_context(hospital), connection.execute_wrapper(timer):
        pg_cpu0 = backend()
        load_before = os.getloadavg()[0]
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        run = reconcile_day(day=day, provider=provider, resolve=False)
        if prof:
            prof.disable()
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        pg_cpu = backend() - pg_cpu0 if pg_cpu0 is not None else None
    sampled = sampler.stop()
    hwm = _status_kb("VmHWM")
    return {"run": run, "seconds": seconds, "timer": timer, "rss_before_kb": rss_before,
            "hwm_kb": hwm if hwm_reset else None, "sampled_kb": sampled, "profile": prof,
            "cpu_seconds": cpu, "pg_cpu_seconds": pg_cpu, "loadavg_before": load_before}


def backend_cpu_reader():
    """A function returning this connection's PostgreSQL backend CPU seconds (user + system),
    read from /proc (same machine); None if it cannot be read."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    tick = os.sysconf("SC_CLK_TCK")

    def read():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            return None

    return read


def found_sets(hospital, run) -> dict[str, set[str]]:
    from django_tenants.utils import tenant_context

    from payments.models import Discrepancy

    out: dict[str, set[str]] = {f"{lk}/{k}": set() for lk in ("payment", "refund") for k in KINDS}
    dupes = 0
    with tenant_context(hospital):
        for line_kind, kind, otn, orn in Discrepancy.objects.filter(run=run).values_list(
                "line_kind", "kind", "out_trade_no", "out_refund_no").iterator():
            key = f"{line_kind}/{kind}"
            ident = orn if line_kind == "refund" else otn
            if ident in out.setdefault(key, set()):
                dupes += 1
            out[key].add(ident)
    if dupes:
        say(f"  {dupes} duplicate discrepancy rows")
    return out


def stream_breakdown(provider, day: date) -> dict:
    """Stream the file again with no database: parse only, and parse + the CSV for COPY.

    CPU seconds of this process (wall time on a busy machine says little about Python's share).
    """
    from payments.reconciliation import _CsvStream

    t = time.process_time()
    n = 0
    for _line in provider.fetch_statement(day):
        n += 1
    parse = time.process_time() - t
    t = time.process_time()
    stream = _CsvStream(provider.fetch_statement(day))
    nbytes = 0
    while chunk := stream.read(1 << 16):
        nbytes += len(chunk)
    both = time.process_time() - t
    return {"parse_only_cpu_seconds": parse, "parse_and_csv_cpu_seconds": both, "lines": n,
            "copy_bytes": nbytes}


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench_url, admin_url = scratch_urls(args.db_name)
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings.test"
    sys.path.insert(0, str(ROOT))

    say(f"lines={args.lines:,} inject={args.inject} day={args.day} quick={args.quick}")
    say(f"recreating scratch database {args.db_name} on {urlparse(bench_url).netloc}")
    admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
    admin_sql(admin_url, f'CREATE DATABASE "{args.db_name}"')
    fd, path = tempfile.mkstemp(prefix=f"statement_{args.day}_", suffix=".csv")
    os.close(fd)
    result: dict = {}
    ok = False
    try:
        result, ok = run(args, path)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
            say(f"dropped scratch database {args.db_name}")
        if args.keep_file:
            say(f"kept statement file {path}")
        else:
            os.unlink(path)
    result["wall_seconds"] = round(time.perf_counter() - T_START, 1)
    result["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0 if ok else 1


def run(args: argparse.Namespace, path: str) -> tuple[dict, bool]:
    import django

    django.setup()

    hospital, payer = setup_hospital()
    m, k, step = plan(args.lines, args.inject)
    params = {"day": args.day.isoformat(), "tag": args.day.strftime("%y%m%d"), "m": m, "k": k,
              "step": step}
    say(f"generating {m:,} orders, ~{m // 20:,} refunds, {k} injected discrepancies per kind "
        f"for payments and for refunds (every {step}th order)")
    t = time.perf_counter()
    gen = generate(hospital, payer, params, path)
    generation_seconds = time.perf_counter() - t
    lines = gen["pay_lines"] + gen["refund_lines"]
    say(f"generation took {generation_seconds:.2f}s (not part of the measurement)")

    provider = make_provider_class()(path)
    say(f"reconciling {lines:,} statement lines"
        + (" under cProfile" if args.profile else ""))
    rec = reconcile(hospital, provider, args.day, args.profile)
    run_ = rec["run"]
    seconds = rec["seconds"]
    sql_total = sum(s for _n, s in rec["timer"].rows)
    say(f"reconcile_day: {seconds:.2f}s, {lines / seconds:,.0f} lines/s, run {run_.pk} "
        f"status {run_.status}, {run_.statement_lines:,} lines, {run_.discrepancies} discrepancies")
    say(f"  CPU: this process {rec['cpu_seconds']:.2f}s, its PostgreSQL backend "
        + (f"{rec['pg_cpu_seconds']:.2f}s" if rec["pg_cpu_seconds"] is not None else "unknown")
        + f"; load average before {rec['loadavg_before']:.1f} on {os.cpu_count()} CPUs")
    say(f"  COPY (stream + parse + load) and Python around it: {seconds - sql_total:.2f}s")
    for name, s in rec["timer"].rows:
        if s >= 0.005:
            say(f"  {s:7.3f}s  {name}")
    peak_kb = rec["hwm_kb"] if rec["hwm_kb"] is not None else rec["sampled_kb"]
    say(f"memory: RSS before {mb(rec['rss_before_kb'])} MB, peak during reconcile "
        f"{mb(peak_kb)} MB ({'VmHWM after clear_refs' if rec['hwm_kb'] is not None else 'sampled'})"
        f", sampled every 10 ms {mb(rec['sampled_kb'])} MB")

    if rec["profile"] is not None:
        import io
        import pstats

        for order in ("tottime", "cumulative"):
            s = io.StringIO()
            pstats.Stats(rec["profile"], stream=s).sort_stats(order).print_stats(18)
            say(f"cProfile, top by {order}:\n" + s.getvalue())

    # ------------------------------------------------------------------ checks
    expected = expected_sets(params)
    found = found_sets(hospital, run_)
    injected_counts = {key: len(v) for key, v in expected.items()}
    found_counts = {key: len(found.get(key, ())) for key in sorted(set(expected) | set(found))}
    problems = []
    for key in sorted(set(expected) | set(found)):
        exp, got = expected.get(key, set()), found.get(key, set())
        if exp != got:
            problems.append(f"{key}: injected {len(exp)}, found {len(got)}; "
                            f"missed {sorted(exp - got)[:3]}, unexpected {sorted(got - exp)[:3]}")
    if run_.status != "done":
        problems.append(f"run status {run_.status}: {run_.error}")
    if run_.statement_lines != lines:
        problems.append(f"statement_lines {run_.statement_lines} != {lines} lines in the file")
    if run_.discrepancies != sum(injected_counts.values()):
        problems.append(f"run.discrepancies {run_.discrepancies} != "
                        f"{sum(injected_counts.values())} injected")
    if (run_.provider_paid_fen, run_.provider_refunded_fen) != (gen["pay_total_fen"],
                                                                gen["refund_total_fen"]):
        problems.append(f"provider totals {run_.provider_paid_fen}/{run_.provider_refunded_fen} "
                        f"!= file {gen['pay_total_fen']}/{gen['refund_total_fen']}")
    per_kind_injected = {kind: sum(v for key, v in injected_counts.items()
                                   if key.endswith("/" + kind)) for kind in KINDS}
    per_kind_found = {kind: sum(v for key, v in found_counts.items()
                                if key.endswith("/" + kind)) for kind in KINDS}
    for p in problems:
        say("MISMATCH " + p)
    if not problems:
        say(f"all {sum(injected_counts.values())} injected discrepancies found, nothing else "
            f"(per kind {per_kind_found})")

    breakdown = {}
    if not args.no_breakdown:
        breakdown = stream_breakdown(provider, args.day)
        say(f"without PostgreSQL, CPU: parse_statement alone "
            f"{breakdown['parse_only_cpu_seconds']:.2f}s, parse_statement + CSV for COPY "
            f"{breakdown['parse_and_csv_cpu_seconds']:.2f}s "
            f"({breakdown['copy_bytes'] / 1e6:.1f} MB fed to COPY)")

    peak_mb = mb(peak_kb)
    out = {
        "bench": "reconcile",
        "lines": lines,
        "seconds": round(seconds, 3),
        "lines_per_s": round(lines / seconds),
        "peak_mb": peak_mb,
        "peak_mb_sampled": mb(rec["sampled_kb"]),
        "rss_before_mb": mb(rec["rss_before_kb"]),
        "peak_method": "VmHWM after clear_refs" if rec["hwm_kb"] is not None else "sampled",
        "injected": per_kind_injected,
        "found": per_kind_found,
        "injected_detail": injected_counts,
        "found_detail": found_counts,
        "ok": not problems,
        "target_met": seconds < 60 and peak_mb < 300 if lines >= 1_000_000 else None,
        "orders": gen["orders"],
        "refunds": gen["refunds"],
        "generation_seconds": round(generation_seconds, 2),
        "generation_detail": {k2: round(v, 2) for k2, v in gen["times"].items()},
        "cpu_seconds": round(rec["cpu_seconds"], 2),
        "pg_backend_cpu_seconds": (round(rec["pg_cpu_seconds"], 2)
                                   if rec["pg_cpu_seconds"] is not None else None),
        "loadavg_1m_before": round(rec["loadavg_before"], 2),
        "copy_phase_seconds": round(seconds - sql_total, 3),
        "sql_seconds": {name: round(s, 3) for name, s in rec["timer"].rows if s >= 0.005},
        "profiled": args.profile,
        "day": args.day.isoformat(),
        "quick": args.quick,
    }
    if breakdown:
        out["parse_only_cpu_seconds"] = round(breakdown["parse_only_cpu_seconds"], 2)
        out["parse_and_csv_cpu_seconds"] = round(breakdown["parse_and_csv_cpu_seconds"], 2)
    return out, not problems


if __name__ == "__main__":
    sys.exit(main())
