"""Provider callbacks, refunds and expiry against the sandbox provider over real HTTP.

The sandbox signs callbacks with its own RSA key and posts them to a catcher; the tests then
deliver exactly those bytes and headers to the hospital's notify URL.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection

from payments import services
from payments.models import Order, OrderEvent, PaymentNotification, Refund
from tests.helpers import host_client, in_schema, make_user
from tests.payments.helpers import sandbox_hook

NOTIFY = "/payments/notify/sandbox/"


def _new_order(hospital, payer, catcher, total=5000, insurance=0) -> Order:
    with in_schema(hospital):
        order = services.order_create(kind="clinic_bill", description="血常规", payer=payer,
                                      total_fen=total, insurance_fen=insurance)
        services.payment_start(order=order, notify_url=catcher.url,
                               return_url="http://alpha.localhost/back/")
        order.refresh_from_db()
    return order


def _pay_at_provider(sandbox, order, hospital=None, **override):
    mchid = f"sbx_{hospital.code if hospital else 'alpha'}"
    return sandbox_hook(sandbox, "/_test/pay", {"mchid": mchid,
                                                "out_trade_no": order.out_trade_no, **override})


def _deliver(client, caught, *, body=None, headers=None):
    sent = {k: v for k, v in caught.headers.items() if k.lower().startswith("sandbox-")}
    sent.update(headers or {})
    return client.post(NOTIFY, data=body if body is not None else caught.body,
                       content_type="application/json", headers=sent)


def _reload(hospital, order) -> Order:
    with in_schema(hospital):
        return Order.objects.get(pk=order.pk)


def _actions(hospital, order) -> list[str]:
    with in_schema(hospital):
        return list(OrderEvent.objects.filter(order=order).values_list("action", flat=True))


@pytest.fixture
def payer(db):
    return make_user(name="付款人")


def test_callback_valid_marks_order_paid(sandbox, catcher, hospital_a, payer, client_a):
    order = _new_order(hospital_a, payer, catcher)
    _pay_at_provider(sandbox, order)
    caught = catcher.wait_for("TRANSACTION.SUCCESS", order.out_trade_no)
    r = _deliver(client_a, caught)
    assert r.status_code == 200 and r.json() == {"code": "SUCCESS"}
    order = _reload(hospital_a, order)
    assert order.status == Order.Status.PAID and order.provider_txn_id.startswith("SBX")
    assert _actions(hospital_a, order) == ["created", "payment_started", "paid"]


def test_callback_duplicate_changes_state_once(sandbox, catcher, hospital_a, payer, client_a):
    order = _new_order(hospital_a, payer, catcher)
    _pay_at_provider(sandbox, order)
    caught = catcher.wait_for("TRANSACTION.SUCCESS", order.out_trade_no)
    assert _deliver(client_a, caught).status_code == 200
    assert _deliver(client_a, caught).status_code == 200
    assert _actions(hospital_a, order).count("paid") == 1
    with in_schema(hospital_a):
        assert PaymentNotification.objects.filter(out_trade_no=order.out_trade_no).count() == 1


def test_callback_replayed_by_provider_is_a_no_op(sandbox, catcher, hospital_a, payer, client_a):
    order = _new_order(hospital_a, payer, catcher)
    _pay_at_provider(sandbox, order)
    first = catcher.wait_for("TRANSACTION.SUCCESS", order.out_trade_no)
    assert _deliver(client_a, first).status_code == 200
    catcher.requests.clear()
    sandbox_hook(sandbox, "/_test/replay", {"notification_id": first.json["id"]})
    again = catcher.wait_for("TRANSACTION.SUCCESS", order.out_trade_no)
    assert again.headers["Sandbox-Signature"] != first.headers["Sandbox-Signature"]
    assert _deliver(client_a, again).status_code == 200
    assert _actions(hospital_a, order).count("paid") == 1


def test_callback_stale_replay_outside_window_is_rejected(sandbox, catcher, hospital_a, payer,
                                                          client_a):
    order = _new_order(hospital_a, payer, catcher)
    _pay_at_provider(sandbox, order)
    caught = catcher.wait_for("TRANSACTION.SUCCESS", order.out_trade_no)
    import time as real_time

    later = real_time.time() + 301
    with mock.patch("payments.providers.sandbox.time.time", return_value=later):
        assert _deliver(client_a, caught).status_code == 401
    assert _reload(hospital_a, order).status == Order.Status.CREATED


@pytest.mark.parametrize("tamper", ["body", "signature", "missing", "serial"])
def test_callback_forged_is_401_and_changes_nothing(sandbox, catcher, hospital_a, payer,
                                                    client_a, tamper):
    order = _new_order(hospital_a, payer, catcher)
    _pay_at_provider(sandbox, order)
    caught = catcher.wait_for("TRANSACTION.SUCCESS", order.out_trade_no)
    if tamper == "body":
        r = _deliver(client_a, caught, body=caught.body.replace(b'"payer_total": 5000',
                                                                 b'"payer_total": 1'))
    elif tamper == "signature":
        r = _deliver(client_a, caught, headers={"Sandbox-Signature": "AAAA" + caught.headers[
            "Sandbox-Signature"][4:]})
    elif tamper == "serial":
        r = _deliver(client_a, caught, headers={"Sandbox-Serial": "0000"})
    else:
        r = client_a.post(NOTIFY, data=caught.body, content_type="application/json")
    assert r.status_code == 401
    order = _reload(hospital_a, order)
    assert order.status == Order.Status.CREATED and not order.provider_txn_id
    with in_schema(hospital_a):
        assert not PaymentNotification.objects.filter(out_trade_no=order.out_trade_no).exists()


def test_callback_for_another_hospital_is_rejected(sandbox, catcher, hospital_a, payer, client_b):
    order = _new_order(hospital_a, payer, catcher)
    _pay_at_provider(sandbox, order)
    caught = catcher.wait_for("TRANSACTION.SUCCESS", order.out_trade_no)
    # Signed by the provider, but hospital B has no such order: acknowledged, nothing changes.
    r = _deliver(client_b, caught)
    assert r.status_code == 200
    assert _reload(hospital_a, order).status == Order.Status.CREATED


def test_callback_after_return_query_is_applied_once(sandbox, catcher, hospital_a, payer,
                                                     client_a):
    order = _new_order(hospital_a, payer, catcher)
    _pay_at_provider(sandbox, order)
    with in_schema(hospital_a):
        assert services.payment_sync(order=order) == "paid"  # patient came back first
    caught = catcher.wait_for("TRANSACTION.SUCCESS", order.out_trade_no)
    assert _deliver(client_a, caught).status_code == 200  # the callback arrives later
    assert _actions(hospital_a, order).count("paid") == 1


def test_callbacks_out_of_order_each_apply(sandbox, catcher, hospital_a, payer, client_a):
    first, second = (_new_order(hospital_a, payer, catcher) for _ in range(2))
    _pay_at_provider(sandbox, first)
    _pay_at_provider(sandbox, second)
    c1 = catcher.wait_for("TRANSACTION.SUCCESS", first.out_trade_no)
    c2 = catcher.wait_for("TRANSACTION.SUCCESS", second.out_trade_no)
    assert _deliver(client_a, c2).status_code == 200
    assert _deliver(client_a, c1).status_code == 200
    assert _reload(hospital_a, first).status == _reload(hospital_a, second).status == "paid"


@pytest.mark.parametrize("override, reason_part", [({"amount": 4999}, "4999"),
                                                   ({"currency": "USD"}, "USD")])
def test_callback_amount_or_currency_mismatch_is_flagged_not_paid(
        sandbox, catcher, hospital_a, payer, client_a, override, reason_part):
    order = _new_order(hospital_a, payer, catcher)
    _pay_at_provider(sandbox, order, **override)
    caught = catcher.wait_for("TRANSACTION.SUCCESS", order.out_trade_no)
    assert _deliver(client_a, caught).status_code == 200
    order = _reload(hospital_a, order)
    assert order.status == Order.Status.CREATED
    assert order.needs_attention and reason_part in order.attention_reason
    assert "payment_mismatch" in _actions(hospital_a, order)


def test_late_payment_after_expiry_is_refunded(sandbox, catcher, hospital_a, payer, client_a):
    order = _new_order(hospital_a, payer, catcher)
    with in_schema(hospital_a):
        Order.objects.filter(pk=order.pk).update(expires_at=order.expires_at - timedelta(hours=1))
        assert services.orders_close_expired() == 1
    assert _reload(hospital_a, order).status == Order.Status.CLOSED
    _pay_at_provider(sandbox, order)  # the patient's money arrives anyway
    paid = catcher.wait_for("TRANSACTION.SUCCESS", order.out_trade_no)
    assert _deliver(client_a, paid).status_code == 200
    with in_schema(hospital_a):
        refund = Refund.objects.get(order_id=order.pk)
    assert refund.amount_fen == 5000 and refund.reason  # "自动退款：付款到账时订单已关闭。"
    refunded = catcher.wait_for("REFUND.SUCCESS", order.out_trade_no)
    assert _deliver(client_a, refunded).status_code == 200
    order = _reload(hospital_a, order)
    assert order.status == Order.Status.REFUNDED and order.refunded_fen == 5000
    assert "paid_after_close" in _actions(hospital_a, order)


def _paid_order(sandbox, catcher, hospital, payer, client, total=5000):
    order = _new_order(hospital, payer, catcher, total=total)
    _pay_at_provider(sandbox, order, hospital)
    assert _deliver(client, catcher.wait_for("TRANSACTION.SUCCESS", order.out_trade_no)
                    ).status_code == 200
    return _reload(hospital, order)


def test_refund_partial_then_full(sandbox, catcher, hospital_a, payer, client_a):
    order = _paid_order(sandbox, catcher, hospital_a, payer, client_a)
    with in_schema(hospital_a):
        first = services.refund_request(order=order, amount_fen=2000, reason="少做一项检查")
        assert first.status == Refund.Status.PENDING
    _deliver(client_a, catcher.wait_for("REFUND.SUCCESS", order.out_trade_no))
    order = _reload(hospital_a, order)
    assert (order.status, order.refunded_fen) == (Order.Status.PARTIALLY_REFUNDED, 2000)
    catcher.requests.clear()
    with in_schema(hospital_a):
        services.refund_request(order=order, amount_fen=3000, reason="患者取消")
        with pytest.raises(services.RefundNotAllowed):
            services.refund_request(order=order, amount_fen=1, reason="多退")
    _deliver(client_a, catcher.wait_for("REFUND.SUCCESS", order.out_trade_no))
    order = _reload(hospital_a, order)
    assert (order.status, order.refunded_fen) == (Order.Status.REFUNDED, 5000)


def test_refund_is_idempotent_for_the_same_key(sandbox, catcher, hospital_a, payer, client_a):
    order = _paid_order(sandbox, catcher, hospital_a, payer, client_a)
    with in_schema(hospital_a):
        a = services.refund_request(order=order, amount_fen=1000, reason="x", idempotency_key="k1")
        b = services.refund_request(order=order, amount_fen=1000, reason="x", idempotency_key="k1")
        assert a.pk == b.pk and Refund.objects.filter(order=order).count() == 1


@pytest.mark.parametrize("amount", [0, -5, 5001])
def test_refund_bad_amount_changes_nothing(sandbox, catcher, hospital_a, payer, client_a, amount):
    order = _paid_order(sandbox, catcher, hospital_a, payer, client_a)
    with in_schema(hospital_a):
        with pytest.raises(services.DomainError):
            services.refund_request(order=order, amount_fen=amount, reason="x")
        assert not Refund.objects.filter(order=order).exists()


def test_callback_fired_from_many_threads_pays_exactly_once(sandbox, catcher, committed_hospital_a):
    """Eight deliveries of one callback at the same instant, each on its own connection."""
    if True:  # committed data: the threads use their own connections

        hospital = committed_hospital_a
        payer = make_user(name="并发")
        order = _new_order(hospital, payer, catcher)  # committed: threads must see it
        _pay_at_provider(sandbox, order)
        caught = catcher.wait_for("TRANSACTION.SUCCESS", order.out_trade_no)
        barrier = threading.Barrier(8)
        statuses: list[int] = []

        def deliver():
            client = host_client("alpha.localhost")
            barrier.wait()
            try:
                statuses.append(_deliver(client, caught).status_code)
            finally:
                connection.close()

        threads = [threading.Thread(target=deliver) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [200] * 8
        assert _actions(hospital, order).count("paid") == 1
        with in_schema(hospital):
            assert PaymentNotification.objects.filter(out_trade_no=order.out_trade_no).count() == 1
            assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
