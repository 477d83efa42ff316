"""Reconciliation (对账): a provider's daily statement against this hospital's orders and refunds.

The statement is streamed from the provider adapter straight into a temporary table with
COPY (never a list in memory, never row-by-row ORM), then compared with set-based SQL; each
difference becomes a `Discrepancy` row:

- missing_locally      the provider has a payment/refund we have no record of
- missing_at_provider  we recorded a payment/refund on that day the provider does not list
- amount_mismatch      both have it, with different amounts
- status_mismatch      the provider has it as paid/refunded, our record is not (yet)

and is then resolved where a machine can: an orphan payment (missing locally) is refunded at
the provider; a payment our side missed (status mismatch) is re-queried and applied (which
refunds it if the order had closed); everything else is marked for finance.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta, tzinfo

from django.db import DataError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.errors import DomainError
from tenants.models import hospital_tz

from .models import Discrepancy, Order, ReconciliationRun
from .providers.base import PaymentProvider, ProviderError, StatementLine, StatementMalformed

log = logging.getLogger(__name__)

PAID_STATES = ("paid", "partially_refunded", "refunded")


class _CsvStream(io.RawIOBase):
    """A file-like view of statement lines as CSV, produced on demand for COPY (flat memory)."""

    def __init__(self, lines: Iterable[StatementLine]) -> None:
        self._lines: Iterator[StatementLine] = iter(lines)
        self._buffer = bytearray()
        self._text = io.StringIO()
        self._writer = csv.writer(self._text, lineterminator="\n")
        self.count = 0
        self.paid_fen = 0
        self.refunded_fen = 0

    def readable(self) -> bool:
        return True

    def _fill(self, size: int) -> None:
        writer, text = self._writer, self._text
        for line in self._lines:
            writer.writerow((line.occurred_at.isoformat(), line.out_trade_no,
                             line.provider_txn_id, line.kind, line.status, line.amount_fen,
                             line.out_refund_no))
            self.count += 1
            if line.kind == "refund":
                self.refunded_fen += line.amount_fen
            else:
                self.paid_fen += line.amount_fen
            if text.tell() >= size:
                break
        self._buffer += text.getvalue().encode()
        text.seek(0)
        text.truncate()

    def read(self, size: int = -1) -> bytes:
        want = 1 << 16 if size is None or size < 0 else size
        if len(self._buffer) < want:
            self._fill(want)
        chunk = bytes(self._buffer[:want])
        del self._buffer[:want]
        return chunk


def _window(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=tz)
    return start, start + timedelta(days=1)


_INSERT = """
INSERT INTO payments_discrepancy (run_id, kind, line_kind, out_trade_no, out_refund_no,
    provider_amount_fen, local_amount_fen, local_status, resolution, note)
"""

_PAYMENT_DIFFS = _INSERT + """
SELECT %(run)s,
       CASE WHEN o.id IS NULL THEN 'missing_locally'
            WHEN o.status NOT IN ('paid', 'partially_refunded', 'refunded') THEN 'status_mismatch'
            ELSE 'amount_mismatch' END,
       'payment', p.out_trade_no, '', p.amount_fen, o.self_pay_fen, COALESCE(o.status, ''),
       'open', ''
FROM (SELECT out_trade_no, SUM(amount_fen) AS amount_fen FROM recon_lines
      WHERE kind = 'payment' GROUP BY out_trade_no) p
LEFT JOIN payments_order o ON o.out_trade_no = p.out_trade_no
WHERE o.id IS NULL OR o.status NOT IN ('paid', 'partially_refunded', 'refunded')
   OR o.self_pay_fen <> p.amount_fen
"""

_PAYMENTS_MISSING_AT_PROVIDER = _INSERT + """
SELECT %(run)s, 'missing_at_provider', 'payment', o.out_trade_no, '', NULL, o.self_pay_fen,
       o.status, 'open', ''
FROM payments_order o
WHERE o.provider = %(provider)s AND o.paid_at >= %(start)s AND o.paid_at < %(end)s
  AND o.status IN ('paid', 'partially_refunded', 'refunded') AND o.self_pay_fen > 0
  AND NOT EXISTS (SELECT 1 FROM recon_lines l
                  WHERE l.kind = 'payment' AND l.out_trade_no = o.out_trade_no)
"""

_REFUND_DIFFS = _INSERT + """
SELECT %(run)s,
       CASE WHEN f.id IS NULL THEN 'missing_locally'
            WHEN f.status <> 'succeeded' THEN 'status_mismatch'
            ELSE 'amount_mismatch' END,
       'refund', r.out_trade_no, r.out_refund_no, r.amount_fen, f.amount_fen,
       COALESCE(f.status, ''), 'open', ''
FROM (SELECT out_refund_no, MAX(out_trade_no) AS out_trade_no, SUM(amount_fen) AS amount_fen
      FROM recon_lines WHERE kind = 'refund' GROUP BY out_refund_no) r
LEFT JOIN payments_refund f ON f.out_refund_no = r.out_refund_no
WHERE f.id IS NULL OR f.status <> 'succeeded' OR f.amount_fen <> r.amount_fen
"""

_REFUNDS_MISSING_AT_PROVIDER = _INSERT + """
SELECT %(run)s, 'missing_at_provider', 'refund', o.out_trade_no, f.out_refund_no, NULL,
       f.amount_fen, f.status, 'open', ''
FROM payments_refund f JOIN payments_order o ON o.id = f.order_id
WHERE o.provider = %(provider)s AND f.status = 'succeeded'
  AND f.succeeded_at >= %(start)s AND f.succeeded_at < %(end)s
  AND NOT EXISTS (SELECT 1 FROM recon_lines l
                  WHERE l.kind = 'refund' AND l.out_refund_no = f.out_refund_no)
"""

_LOCAL_TOTALS = """
SELECT (SELECT COALESCE(SUM(self_pay_fen), 0) FROM payments_order
        WHERE provider = %(provider)s AND paid_at >= %(start)s AND paid_at < %(end)s
          AND status IN ('paid', 'partially_refunded', 'refunded')),
       (SELECT COALESCE(SUM(f.amount_fen), 0) FROM payments_refund f
        JOIN payments_order o ON o.id = f.order_id
        WHERE o.provider = %(provider)s AND f.status = 'succeeded'
          AND f.succeeded_at >= %(start)s AND f.succeeded_at < %(end)s)
"""


def reconcile_day(*, day: date, provider: PaymentProvider | None = None, actor=None,
                  resolve: bool = True) -> ReconciliationRun:
    """Reconcile one statement day for the current hospital; returns the finished run."""
    from . import services

    provider = provider or services.provider_for()
    start, end = _window(day, hospital_tz())
    run = ReconciliationRun.objects.create(day=day, provider=provider.name, started_by=actor)
    params = {"run": run.pk, "provider": provider.name, "start": start, "end": end}
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("""CREATE TEMP TABLE recon_lines (
                occurred_at timestamptz, out_trade_no text, provider_txn_id text, kind text,
                status text, amount_fen bigint, out_refund_no text) ON COMMIT DROP""")
            stream = _CsvStream(provider.fetch_statement(day))
            # psycopg 3's COPY (Django's cursor wrapper passes copy() through, DEBUG or not).
            with cur.copy("COPY recon_lines FROM STDIN WITH (FORMAT csv)") as copy:
                while chunk := stream.read(1 << 16):
                    copy.write(chunk)
            # No index on out_trade_no: the payment queries read every payment line anyway and
            # hash-join them; such an index cost more to build than it saved, and steered the
            # planner into a merge join that reads the temp table in index order, one page per
            # line from the small temp_buffers (twice the database time at a million lines).
            cur.execute("CREATE INDEX ON recon_lines (out_refund_no) WHERE kind = 'refund'")
            cur.execute("ANALYZE recon_lines")
            for sql in (_PAYMENT_DIFFS, _PAYMENTS_MISSING_AT_PROVIDER, _REFUND_DIFFS,
                        _REFUNDS_MISSING_AT_PROVIDER):
                cur.execute(sql, params)
            cur.execute(_LOCAL_TOTALS, params)
            local_paid, local_refunded = cur.fetchone()
            run.statement_lines = stream.count
            run.provider_paid_fen, run.provider_refunded_fen = stream.paid_fen, stream.refunded_fen
            run.local_paid_fen, run.local_refunded_fen = local_paid, local_refunded
            run.discrepancies = Discrepancy.objects.filter(run=run).count()
            run.status, run.finished_at = ReconciliationRun.Status.DONE, timezone.now()
            run.save()
    except Exception as exc:
        failure = _failure_kind(exc)
        # The technical detail goes to the log and to the run's record (hospital admins read
        # it there); finance is told what failed in words, by ReconciliationFailed.
        log.exception("reconciliation run %s of %s failed (%s)", run.pk, day, failure)
        try:
            _run_failed(run=run, failure=failure, error=_technical(exc))
        except Exception:  # the database itself is gone: the log above is all there is
            log.exception("could not record reconciliation run %s as failed", run.pk)
            run.failure = failure
        raise ReconciliationFailed(run=run) from exc
    if resolve:
        discrepancies_resolve(run=run, provider=provider)
    return run


class ReconciliationFailed(DomainError):
    """A run that failed and changed nothing; the message says what failed and what to do."""

    code = "reconciliation_failed"

    def __init__(self, *, run: ReconciliationRun) -> None:
        self.run = run
        super().__init__(failure_message(run), code=run.failure or "reconciliation_failed",
                         details={"run": run.pk, "day": run.day.isoformat()})


_FAILURE_WHAT = {
    ReconciliationRun.Failure.PROVIDER_UNREACHABLE: gettext_lazy(
        "the payment provider could not be reached or did not hand over the statement"),
    ReconciliationRun.Failure.STATEMENT_MALFORMED: gettext_lazy(
        "the statement file the payment provider sent could not be read"),
    ReconciliationRun.Failure.INTERNAL: gettext_lazy("an unexpected error stopped the comparison"),
}


def failure_message(run: ReconciliationRun) -> str:
    """What staff read about a failed run: what failed, that nothing changed, what to do."""
    what = _FAILURE_WHAT.get(run.failure, _FAILURE_WHAT[ReconciliationRun.Failure.INTERNAL])
    return _("Reconciliation of %(day)s failed: %(what)s. Nothing was changed: no discrepancy "
             "was recorded and no order was touched. Please try again later; if it keeps "
             "failing, contact support and give them run number %(run)d.") % {
        "day": run.day.isoformat(), "what": what, "run": run.pk}


def _failure_kind(exc: BaseException) -> str:
    if isinstance(exc, StatementMalformed | DataError):  # DataError: a value COPY refused
        return ReconciliationRun.Failure.STATEMENT_MALFORMED
    if isinstance(exc, ProviderError):
        return ReconciliationRun.Failure.PROVIDER_UNREACHABLE
    return ReconciliationRun.Failure.INTERNAL


def _technical(exc: BaseException) -> str:
    """The exception's class, message and details (a ProviderError's reason lives there)."""
    text = f"{type(exc).__name__}: {exc}"
    details = getattr(exc, "details", None)
    if details:
        text += f" {details}"
    cause = exc.__cause__
    if cause is not None:
        text += f" (caused by {type(cause).__name__}: {cause})"
    return text[:2000]


@transaction.atomic
def _run_failed(*, run: ReconciliationRun, failure: str, error: str) -> None:
    """Record the run as failed. Its discrepancies were written inside the comparison's
    transaction and rolled back with it; deleting them again keeps 'a failed run has none'
    true even if a later change moves a write outside that transaction."""
    Discrepancy.objects.filter(run=run).delete()
    run.status, run.failure, run.error = ReconciliationRun.Status.FAILED, failure, error
    run.statement_lines = run.discrepancies = 0
    run.provider_paid_fen = run.provider_refunded_fen = 0
    run.local_paid_fen = run.local_refunded_fen = 0
    run.finished_at = timezone.now()
    run.save()


def discrepancies_resolve(*, run: ReconciliationRun, provider: PaymentProvider) -> None:
    """Resolve what a machine can; everything else waits for finance with a clear note."""
    from . import services

    for d in Discrepancy.objects.filter(run=run, resolution=Discrepancy.Resolution.OPEN).iterator():
        resolution, note = Discrepancy.Resolution.FOR_FINANCE, ""
        try:
            if d.kind == Discrepancy.Kind.MISSING_LOCALLY and d.line_kind == "payment":
                refund_no = "RX" + hashlib.sha256(d.out_trade_no.encode()).hexdigest()[:30].upper()
                result = provider.refund(out_trade_no=d.out_trade_no, out_refund_no=refund_no,
                                         amount_fen=d.provider_amount_fen,
                                         total_fen=d.provider_amount_fen,
                                         reason="orphan payment", notify_url="")
                if result.status != "failed":
                    resolution = Discrepancy.Resolution.AUTO_REFUNDED
                    note = _("Refund %(no)s sent to the provider.") % {"no": refund_no}
                else:
                    note = result.failure_reason
            elif d.kind == Discrepancy.Kind.STATUS_MISMATCH and d.line_kind == "payment":
                order = Order.objects.get(out_trade_no=d.out_trade_no)
                outcome = services.payment_sync(order=order)
                resolution = Discrepancy.Resolution.REQUERIED
                note = _("Provider re-queried: %(outcome)s.") % {"outcome": outcome}
            else:
                _flag_order(d)
        except Exception as exc:  # one bad line must not stop the others
            log.warning("could not resolve discrepancy %s: %s", d.pk, exc)
            note = str(exc)[:300]
        Discrepancy.objects.filter(pk=d.pk).update(
            resolution=resolution, note=note[:300],
            resolved_at=timezone.now() if resolution != Discrepancy.Resolution.FOR_FINANCE else None)


def _flag_order(d: Discrepancy) -> None:
    Order.objects.filter(out_trade_no=d.out_trade_no).update(
        needs_attention=True,
        attention_reason=(_("Reconciliation %(day)s: %(kind)s") % {
            "day": d.run.day, "kind": d.get_kind_display()})[:200])


def discrepancy_resolve_manually(*, discrepancy: Discrepancy, note: str, by) -> None:
    """Finance closes a discrepancy with a note saying what was done."""
    Discrepancy.objects.filter(pk=discrepancy.pk).update(
        resolution=Discrepancy.Resolution.RESOLVED, resolved_at=timezone.now(),
        note=(f"{note} — {by}" if by else note)[:300])


def reconcile_yesterday() -> ReconciliationRun:
    """The nightly job: reconcile the day that just ended in the hospital's time zone."""
    tz = hospital_tz()
    yesterday = timezone.now().astimezone(tz).date() - timedelta(days=1)
    done = ReconciliationRun.objects.filter(day=yesterday, status=ReconciliationRun.Status.DONE)
    if done.exists():  # beat fired twice, or a retry after success
        return done.first()
    return reconcile_day(day=yesterday)
