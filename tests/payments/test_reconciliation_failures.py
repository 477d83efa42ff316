"""A reconciliation that fails (provider unreachable, statement unreadable, an error after the
comparison began) is recorded as failed with no discrepancy, changes no order, and tells
finance what failed and what to do; the technical detail stays on the run for admins."""

from __future__ import annotations

import socket
import threading
from datetime import datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from payments import services
from payments.models import Discrepancy, Order, ReconciliationRun
from payments.providers.base import Notice
from payments.reconciliation import ReconciliationFailed, reconcile_day
from tests.helpers import host_client, in_schema, make_staff

CST = timezone.get_fixed_timezone(8 * 60)
HEADER = "trade_time,out_trade_no,transaction_id,type,state,amount_fen,currency,out_refund_no,refund_id"


def _yesterday():
    return timezone.localdate(timezone=CST) - timedelta(days=1)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def statement_server(settings):
    """Stands where the sandbox would be and answers every statement request with `body`."""
    state = {"body": HEADER + "\n"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - stdlib name
            body = state["body"].encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.SANDBOX_PAY_URL = f"http://127.0.0.1:{server.server_port}"
    yield state
    server.shutdown()


def _paid_yesterday(hospital, patient) -> Order:
    """An order we hold as paid yesterday: a clean run would flag it (missing at provider)."""
    with in_schema(hospital):
        order = services.order_create(kind="clinic_bill", description="化验", payer=patient,
                                      total_fen=700)
        services.notice_apply(provider="sandbox", notice=Notice(
            notification_id=f"manual-{order.out_trade_no}", kind="payment",
            out_trade_no=order.out_trade_no, status="paid", amount_fen=700, currency="CNY",
            provider_txn_id="SBXLOCAL", occurred_at=timezone.now()))
        Order.objects.filter(pk=order.pk).update(
            paid_at=datetime.combine(_yesterday(), time(10), tzinfo=CST))
        return Order.objects.get(pk=order.pk)


def _assert_failed_and_nothing_changed(hospital, run_id: int, failure: str, order: Order):
    with in_schema(hospital):
        run = ReconciliationRun.objects.get(pk=run_id)
        assert (run.status, run.failure, run.discrepancies) == ("failed", failure, 0)
        assert run.finished_at is not None and run.error
        assert not Discrepancy.objects.filter(run=run).exists()
        after = Order.objects.get(pk=order.pk)
        assert (after.status, after.needs_attention, after.attention_reason) == (
            order.status, order.needs_attention, order.attention_reason)
        return run


def test_reconciliation_provider_unreachable_is_explained_to_finance(hospital_a, admin_a,
                                                                     patient, settings):
    order = _paid_yesterday(hospital_a, patient)
    settings.SANDBOX_PAY_URL = f"http://127.0.0.1:{_closed_port()}"
    finance = host_client("alpha.localhost", make_staff(hospital_a, "finance"))
    page = finance.post("/admin/payments/reconciliationrun/add/",
                        {"day": _yesterday().isoformat()})
    assert page.status_code == 200
    html = page.content.decode()
    with in_schema(hospital_a):
        run_id = ReconciliationRun.objects.get(day=_yesterday()).pk
    # In words: what failed, nothing changed, what to do, the run's number; no exception text.
    assert "无法连接支付渠道" in html and "未做任何更改" in html and "稍后重试" in html
    assert f"运行编号 {run_id}" in html
    for raw in ("ProviderError", "Connection refused", "Errno", "could not be reached"):
        assert raw not in html
    run = _assert_failed_and_nothing_changed(hospital_a, run_id, "provider_unreachable", order)
    assert "ProviderError" in run.error and "refused" in run.error.lower()

    # The run's page: finance reads the explanation, hospital admins also the detail.
    url = f"/admin/payments/reconciliationrun/{run_id}/change/"
    finance_page = finance.get(url).content.decode()
    assert "未做任何更改" in finance_page and "ProviderError" not in finance_page
    admin_page = host_client("alpha.localhost", admin_a).get(url).content.decode()
    assert "未做任何更改" in admin_page and "ProviderError" in admin_page


def test_reconciliation_malformed_statement_fails_cleanly(hospital_a, patient, statement_server):
    order = _paid_yesterday(hospital_a, patient)
    day = _yesterday().isoformat()
    # A good line (an orphan payment: a clean run would record and refund it), then a bad one.
    statement_server["body"] = "\n".join([
        HEADER,
        f"{day} 09:00:00,PORPHANFAIL0001,SBX1,PAY,SUCCESS,999,CNY,,",
        f"{day} 09:30:00,PBROKEN0001,SBX2,PAY,SUCCESS,twelve,CNY,,",
    ]) + "\n"
    with in_schema(hospital_a), pytest.raises(ReconciliationFailed) as failed:
        reconcile_day(day=_yesterday())
    assert failed.value.code == "statement_malformed"
    assert failed.value.details["run"] == failed.value.run.pk
    run = _assert_failed_and_nothing_changed(hospital_a, failed.value.run.pk,
                                             "statement_malformed", order)
    assert "StatementMalformed" in run.error and "twelve" in run.error

    # Through the admin: the same, in words.
    statement_server["body"] = "not,a,statement\n"
    finance = host_client("alpha.localhost", make_staff(hospital_a, "finance"))
    html = finance.post("/admin/payments/reconciliationrun/add/", {"day": day}).content.decode()
    assert "对账单文件无法读取" in html and "未做任何更改" in html
    assert "StatementMalformed" not in html and "no header line" not in html


def test_reconciliation_error_after_comparing_leaves_no_discrepancies(
        hospital_a, patient, statement_server, monkeypatch):
    """The discrepancies are written, then the run fails: none of them stays."""
    order = _paid_yesterday(hospital_a, patient)
    day = _yesterday().isoformat()
    statement_server["body"] = f"{HEADER}\n{day} 09:00:00,PORPHANFAIL0002,SBX1,PAY,SUCCESS,999,CNY,,\n"
    written = []
    real_save = ReconciliationRun.save

    def save_then_fail(self, *args, **kwargs):
        if self.status == ReconciliationRun.Status.DONE:  # the comparison's last write
            written.append(Discrepancy.objects.filter(run=self).count())
            raise RuntimeError("disk on fire")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(ReconciliationRun, "save", save_then_fail)
    with in_schema(hospital_a), pytest.raises(ReconciliationFailed) as failed:
        reconcile_day(day=_yesterday())
    assert written == [2]  # missing locally (the orphan) and missing at the provider (ours)
    assert failed.value.code == "internal"
    run = _assert_failed_and_nothing_changed(hospital_a, failed.value.run.pk, "internal", order)
    assert "RuntimeError: disk on fire" in run.error
    monkeypatch.undo()
    with in_schema(hospital_a):
        assert not Discrepancy.objects.exists()
        # The same day reconciles once the fault is gone, with both differences found.
        again = reconcile_day(day=_yesterday(), resolve=False)
        assert (again.status, again.failure, again.discrepancies) == ("done", "", 2)
