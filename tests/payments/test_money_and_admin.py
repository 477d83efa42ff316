"""Yuan at the edges, fen inside; finance refunds from admin with a reason."""

import pytest
from django.core.exceptions import ValidationError

from payments import services
from payments.models import Order, Refund
from portal.money import fen_to_yuan, yuan_to_fen
from tests.helpers import host_client, in_schema, make_staff
from tests.payments.test_callbacks import _paid_order


@pytest.mark.parametrize("text, fen", [("12", 1200), ("12.5", 1250), ("0.05", 5), ("¥1,234.56", 123456)])
def test_money_yuan_to_fen(text, fen):
    assert yuan_to_fen(text) == fen


@pytest.mark.parametrize("text", ["1.234", "-1", "abc", "", "1e3"])
def test_money_bad_yuan_is_rejected(text):
    with pytest.raises(ValidationError):
        yuan_to_fen(text)


def test_money_fen_to_yuan():
    assert (fen_to_yuan(5), fen_to_yuan(123456), fen_to_yuan(0)) == ("0.05", "1,234.56", "0.00")


def test_order_create_rejects_floats_and_bad_totals(hospital_a, patient):
    with in_schema(hospital_a):
        for total, insurance in [(12.5, 0), (0, 0), (100, 101), (100, -1)]:
            with pytest.raises(services.InvalidAmount):
                services.order_create(kind="clinic_bill", description="x", payer=patient,
                                      total_fen=total, insurance_fen=insurance)
        assert not Order.objects.exists()


@pytest.mark.parametrize("role, allowed", [("finance", True), ("admin", True),
                                           ("registrar", False)])
def test_admin_refund_by_role(sandbox, catcher, hospital_a, patient, client_a, role, allowed):
    order = _paid_order(sandbox, catcher, hospital_a, patient, client_a)
    staff = make_staff(hospital_a, role)
    client = host_client("alpha.localhost", staff)
    r = client.post(f"/admin/payments/order/{order.pk}/refund/", {"amount": "12.34",
                                                                 "reason": "重复收费"})
    with in_schema(hospital_a):
        refunds = list(Refund.objects.filter(order_id=order.pk))
    if allowed:
        assert r.status_code == 302
        assert [(x.amount_fen, x.reason, x.requested_by_id) for x in refunds] == [
            (1234, "重复收费", staff.pk)]
    else:
        assert refunds == []


def test_admin_refund_over_the_paid_amount_is_a_form_error(sandbox, catcher, hospital_a, patient,
                                                           client_a):
    order = _paid_order(sandbox, catcher, hospital_a, patient, client_a)
    client = host_client("alpha.localhost", make_staff(hospital_a, "finance"))
    r = client.post(f"/admin/payments/order/{order.pk}/refund/", {"amount": "50.01",
                                                                 "reason": "x"})
    assert r.status_code == 200 and "50.00" in r.content.decode()
    with in_schema(hospital_a):
        assert not Refund.objects.filter(order_id=order.pk).exists()


def test_admin_orders_of_b_invisible_to_finance_of_a(sandbox, catcher, hospital_b, patient,
                                                     client_b, hospital_a):
    order_b = _paid_order(sandbox, catcher, hospital_b, patient, client_b)
    client = host_client("alpha.localhost", make_staff(hospital_a, "finance"))
    assert client.get(f"/admin/payments/order/{order_b.pk}/change/").status_code == 302
    assert order_b.out_trade_no not in client.get("/admin/payments/order/").content.decode()
    assert client.post(f"/admin/payments/order/{order_b.pk}/refund/",
                       {"amount": "1", "reason": "x"}).status_code == 404


def test_admin_finance_sees_order_audit_trail(sandbox, catcher, hospital_a, patient, client_a):
    order = _paid_order(sandbox, catcher, hospital_a, patient, client_a)
    client = host_client("alpha.localhost", make_staff(hospital_a, "finance"))
    page = client.get(f"/admin/payments/order/{order.pk}/change/").content.decode()
    assert "发起支付" in page and order.provider_txn_id in page  # the action, in words


def test_order_records_the_provider_set_now_not_a_cached_one(hospital_a, patient):
    """The provider's name is cached per hospital; saving the payment settings must be seen
    by the very next order."""
    from django.db import connection

    from payments.models import PaymentSettings

    try:
        _provider_changes_reach_the_next_order(hospital_a, patient, connection, PaymentSettings)
    finally:  # the test's transaction rolls back; the process's cache must not keep its name
        services.provider_name_cache.invalidate()


def _provider_changes_reach_the_next_order(hospital_a, patient, connection, PaymentSettings):
    with in_schema(hospital_a):
        first = services.order_create(kind="clinic_bill", description="x", payer=patient,
                                      total_fen=100)
        assert first.provider == "sandbox"
        with connection.cursor() as cur:  # behind the cache's back: still the cached name
            cur.execute("UPDATE payments_paymentsettings SET provider = 'wechatpay_v3'")
        assert services.order_create(kind="clinic_bill", description="x", payer=patient,
                                     total_fen=100).provider == "sandbox"
        row = PaymentSettings.objects.get()
        row.save()  # a save (the admin's way) empties the cache
        assert services.order_create(kind="clinic_bill", description="x", payer=patient,
                                     total_fen=100).provider == "wechatpay_v3"
