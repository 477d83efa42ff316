"""Reconciliation with one injected discrepancy of each kind, against the sandbox's statement."""

from datetime import timedelta

from django.utils import timezone

from payments import services
from payments.models import Discrepancy, Order, ReconciliationRun
from payments.providers.base import Notice, PaymentRequest
from payments.reconciliation import reconcile_day
from tests.helpers import in_schema
from tests.payments.helpers import sandbox_hook
from tests.payments.test_callbacks import _deliver, _new_order, _pay_at_provider


def _today():
    return timezone.localdate(timezone=timezone.get_fixed_timezone(8 * 60))


def test_reconciliation_finds_and_resolves_each_kind(fresh_sandbox, catcher, hospital_a, patient,
                                                     client_a):
    sandbox = fresh_sandbox
    # Three orders everyone agrees on.
    for _ in range(3):
        order = _new_order(hospital_a, patient, catcher, total=1800)
        _pay_at_provider(sandbox, order)
        _deliver(client_a, catcher.wait_for("TRANSACTION.SUCCESS", order.out_trade_no))

    # status_mismatch: paid at the provider, but the callback never reached us.
    lost = _new_order(hospital_a, patient, catcher, total=2500)
    _pay_at_provider(sandbox, lost)

    # amount_mismatch: both sides paid, our amount later differs from the provider's.
    drift = _new_order(hospital_a, patient, catcher, total=3000)
    _pay_at_provider(sandbox, drift)
    _deliver(client_a, catcher.wait_for("TRANSACTION.SUCCESS", drift.out_trade_no))
    with in_schema(hospital_a):
        Order.objects.filter(pk=drift.pk).update(total_fen=3100, self_pay_fen=3100)

    # missing_at_provider: we think it was paid; the provider never saw it.
    with in_schema(hospital_a):
        ghost = services.order_create(kind="clinic_bill", description="ghost", payer=patient,
                                      total_fen=700)
        services.notice_apply(provider="sandbox", notice=Notice(
            notification_id="manual-ghost", kind="payment", out_trade_no=ghost.out_trade_no,
            status="paid", amount_fen=700, currency="CNY", provider_txn_id="SBXGHOST",
            occurred_at=timezone.now()))

    # missing_locally: money at the provider for an order we never created.
    with in_schema(hospital_a):
        adapter = services.provider_for()
    adapter.create_payment(PaymentRequest(
        out_trade_no="PORPHAN0000001", amount_fen=999, description="orphan",
        notify_url=catcher.url, return_url="", expires_at=timezone.now() + timedelta(minutes=5)))
    sandbox_hook(sandbox, "/_test/pay", {"mchid": "sbx_alpha", "out_trade_no": "PORPHAN0000001"})

    with in_schema(hospital_a):
        run = reconcile_day(day=_today())
        found = {d.kind: d for d in Discrepancy.objects.filter(run=run)}
        assert run.status == ReconciliationRun.Status.DONE
        assert run.statement_lines == 6  # 3 agreed + lost + drift + orphan
        assert sorted(found) == sorted(Discrepancy.Kind.values)
        assert run.discrepancies == 4
        assert found["status_mismatch"].out_trade_no == lost.out_trade_no
        assert found["amount_mismatch"].out_trade_no == drift.out_trade_no
        assert (found["amount_mismatch"].provider_amount_fen,
                found["amount_mismatch"].local_amount_fen) == (3000, 3100)
        assert found["missing_at_provider"].out_trade_no == ghost.out_trade_no
        assert found["missing_locally"].out_trade_no == "PORPHAN0000001"
        assert run.provider_paid_fen == 3 * 1800 + 2500 + 3000 + 999

        # Resolutions: the orphan refunded, the lost payment applied, the rest to finance.
        resolved = {d.kind: d.resolution for d in Discrepancy.objects.filter(run=run)}
        assert resolved == {
            "missing_locally": "auto_refunded", "status_mismatch": "requeried",
            "amount_mismatch": "for_finance", "missing_at_provider": "for_finance"}
        assert Order.objects.get(pk=lost.pk).status == Order.Status.PAID
        assert Order.objects.get(pk=drift.pk).needs_attention
        assert Order.objects.get(pk=ghost.pk).needs_attention


def test_reconciliation_clean_day_has_no_discrepancies(fresh_sandbox, catcher, hospital_a,
                                                       patient, client_a):
    for _ in range(2):
        order = _new_order(hospital_a, patient, catcher, total=1000)
        _pay_at_provider(fresh_sandbox, order)
        _deliver(client_a, catcher.wait_for("TRANSACTION.SUCCESS", order.out_trade_no))
    with in_schema(hospital_a):
        order = Order.objects.filter(status="paid").first()
        services.refund_request(order=order, amount_fen=400, reason="部分退款")
    _deliver(client_a, catcher.wait_for("REFUND.SUCCESS", order.out_trade_no))
    with in_schema(hospital_a):
        run = reconcile_day(day=_today())
        assert (run.statement_lines, run.discrepancies) == (3, 0)
        assert (run.provider_paid_fen, run.local_paid_fen) == (2000, 2000)
        assert (run.provider_refunded_fen, run.local_refunded_fen) == (400, 400)


def test_reconciliation_admin_reconciles_a_chosen_day(fresh_sandbox, catcher, hospital_a, patient,
                                                      client_a):
    from tests.helpers import host_client, make_staff

    order = _new_order(hospital_a, patient, catcher, total=1500)
    _pay_at_provider(fresh_sandbox, order)
    _deliver(client_a, catcher.wait_for("TRANSACTION.SUCCESS", order.out_trade_no))
    client = host_client("alpha.localhost", make_staff(hospital_a, "finance"))
    yesterday = _today() - timedelta(days=1)
    r = client.post("/admin/payments/reconciliationrun/add/", {"day": yesterday.isoformat()})
    assert r.status_code == 302
    with in_schema(hospital_a):
        run = ReconciliationRun.objects.get(day=yesterday)
        # today's payment is not on yesterday's statement, and nothing local was paid yesterday
        assert (run.statement_lines, run.discrepancies, run.status) == (0, 0, "done")
    # the provider by name, as in the orders' list (not its code "sandbox")
    page = client.get(f"/admin/payments/reconciliationrun/{run.pk}/change/").content.decode()
    assert "沙箱（内置测试渠道）" in page and f"{yesterday} sandbox" not in page
    listing = client.get("/admin/payments/reconciliationrun/").content.decode()
    assert '<td class="field-provider">沙箱（内置测试渠道）</td>' in listing
    # today has not ended: refused with a form error, nothing run
    r = client.post("/admin/payments/reconciliationrun/add/", {"day": _today().isoformat()})
    assert r.status_code == 200
    with in_schema(hospital_a):
        assert not ReconciliationRun.objects.filter(day=_today()).exists()


def test_reconcile_yesterday_job_is_idempotent(fresh_sandbox, hospital_a):
    from payments.reconciliation import reconcile_yesterday

    with in_schema(hospital_a):
        first = reconcile_yesterday()
        again = reconcile_yesterday()
        assert first.pk == again.pk
        assert ReconciliationRun.objects.count() == 1
