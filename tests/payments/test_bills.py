"""Clinic bills: staff raise them, the patient sees the insurance split and pays the self-paid part."""

import pytest

from payments.models import Order
from portal.accounts.services import family_member_add
from registration.models import ClinicBill
from registration.services import bills
from registration.services.patients import patient_card_for
from tests.helpers import host_client, in_schema, make_staff
from tests.payments.test_callbacks import _deliver

ID = "110101199003071233"


@pytest.fixture
def card(hospital_a, patient):
    member = family_member_add(account=patient, name="王芳", relation="self", id_number=ID)
    with in_schema(hospital_a):
        return patient_card_for(family_member=member)


def _bill(hospital, card, items):
    with in_schema(hospital):
        bill = bills.clinic_bill_open(patient_card=card, doctor_name="李医生")
        return bills.clinic_bill_set_items(bill=bill, items=items)


ITEMS = [{"name": "血常规", "item_class": "A", "unit_price_fen": 2500, "quantity": 1},
         {"name": "CT", "item_class": "B", "unit_price_fen": 30000, "quantity": 1},
         {"name": "保健品", "item_class": "C", "unit_price_fen": 5000, "quantity": 2}]


def test_bill_total_is_sum_of_items(hospital_a, card):
    bill = _bill(hospital_a, card, ITEMS)
    assert bill.total_fen == 2500 + 30000 + 10000


def test_bill_self_pay_only_charged_online_with_insurance(sandbox, catcher, hospital_a, card,
                                                         patient, client_a):
    bill = _bill(hospital_a, card, ITEMS)
    with in_schema(hospital_a):
        split = bills.clinic_bill_presettle(bill=bill, insurance_type="resident")
        # resident default: deductible ¥200 not yet met, 50 %; class B pre-pays 10 %, C all
        eligible = 2500 + 27000
        assert split.deductible_fen == 20000
        assert split.insurance_fen == (eligible - 20000) * 5000 // 10000
        assert split.self_pay_fen + split.insurance_fen == 42500
        order = bills.clinic_bill_checkout(bill=bill, insurance_type="resident", payer=patient)
        assert (order.total_fen, order.insurance_fen, order.self_pay_fen) == (
            42500, split.insurance_fen, split.self_pay_fen)
        from payments import services

        services.payment_start(order=order, notify_url=catcher.url, return_url="http://x/")
    from tests.payments.helpers import sandbox_hook

    paid = sandbox_hook(sandbox, "/_test/pay", {"mchid": "sbx_alpha",
                                                "out_trade_no": order.out_trade_no})
    assert paid["amount"]["payer_total"] == split.self_pay_fen  # only the self-paid part
    _deliver(client_a, catcher.wait_for("TRANSACTION.SUCCESS", order.out_trade_no))
    with in_schema(hospital_a):
        bill.refresh_from_db()
        assert bill.status == ClinicBill.Status.PAID and bill.paid_at
        assert bill.settlement["insurance_fen"] == split.insurance_fen
        # the next bill this year sees the deductible as met
        ytd = bills.year_to_date(patient_card=card, insurance_type="resident")
        assert ytd.deductible_met_fen == 20000


def test_bill_page_shows_split_and_receipt(sandbox, catcher, hospital_a, card, patient):
    bill = _bill(hospital_a, card, ITEMS)
    client = host_client("alpha.localhost", patient)
    page = client.get(f"/payments/bills/{bill.bill_no}/", {"insurance_type": "none"})
    assert page.status_code == 200 and "425.00" in page.content.decode()
    r = client.post(f"/payments/bills/{bill.bill_no}/", {"insurance_type": "none"})
    assert r.status_code == 302 and r["Location"].startswith(sandbox.base_url + "/cashier/")
    with in_schema(hospital_a):
        bill.refresh_from_db()
        assert bill.status == ClinicBill.Status.PAYING and bill.order.self_pay_fen == 42500


def test_bill_of_another_account_is_404(hospital_a, card, other_patient):
    bill = _bill(hospital_a, card, ITEMS)
    client = host_client("alpha.localhost", other_patient)
    assert client.get(f"/payments/bills/{bill.bill_no}/").status_code == 404
    assert client.post(f"/payments/bills/{bill.bill_no}/",
                       {"insurance_type": "none"}).status_code == 404
    with in_schema(hospital_a):
        assert not Order.objects.exists()


def test_bill_fully_covered_is_paid_without_cashier(hospital_a, card, patient):
    with in_schema(hospital_a):
        from payments.models import PaymentSettings

        PaymentSettings.objects.update(insurance_policy={
            "employee": {"deductible_fen": 0, "ratio_bp": 10000, "annual_cap_fen": 10**8},
            "resident": {"deductible_fen": 0, "ratio_bp": 10000, "annual_cap_fen": 10**8},
            "class_b_pre_self_pay_bp": 0})
    bill = _bill(hospital_a, card, [{"name": "药", "item_class": "A", "unit_price_fen": 1000,
                                     "quantity": 3}])
    with in_schema(hospital_a):
        order = bills.clinic_bill_checkout(bill=bill, insurance_type="employee", payer=patient)
        bill.refresh_from_db()
        assert (order.status, order.self_pay_fen, bill.status) == ("paid", 0, "paid")


def test_bill_admin_creates_bill_with_items(hospital_a, card):
    staff = make_staff(hospital_a, "doctor")
    client = host_client("alpha.localhost", staff)
    prefix = "items"
    r = client.post("/admin/payments/clinicbill/add/", {
        "patient_card": card.pk, "department": "", "doctor_name": "赵医生",
        f"{prefix}-TOTAL_FORMS": "2", f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-0-name": "挂号费", f"{prefix}-0-item_class": "A",
        f"{prefix}-0-unit_price_fen": "10", f"{prefix}-0-quantity": "1",  # yuan, as staff read
        f"{prefix}-1-name": "针剂", f"{prefix}-1-item_class": "B",
        f"{prefix}-1-unit_price_fen": "15.50", f"{prefix}-1-quantity": "2"})
    assert r.status_code == 302, r.content.decode()[:3000]
    with in_schema(hospital_a):
        bill = ClinicBill.objects.get()
        assert (bill.total_fen, bill.created_by_id, bill.items.count()) == (4100, staff.pk, 2)


@pytest.fixture
def insurer(hospital_a):
    from payments.models import PaymentSettings
    from tests.payments.fake_insurer import FakeInsurer

    with FakeInsurer() as fake:
        with in_schema(hospital_a):
            PaymentSettings.objects.update(insurance_gateway_url=fake.base_url,
                                           insurance_api_key=fake.api_key)
        yield fake


def test_bill_with_insurer_uses_its_split_and_settles_on_payment(
        sandbox, catcher, hospital_a, card, patient, client_a, insurer):
    from payments import services
    from payments.insurance import YearToDate
    from tests.payments.helpers import sandbox_hook

    # The insurer knows this patient already met the resident deductible this year.
    insurer.set_year_to_date(ID, YearToDate(deductible_met_fen=20000, insurance_paid_fen=0))
    bill = _bill(hospital_a, card, ITEMS)
    with in_schema(hospital_a):
        order = bills.clinic_bill_checkout(bill=bill, insurance_type="resident", payer=patient)
        bill.refresh_from_db()
        eligible = 2500 + 27000  # no deductible left: 50 % of all eligible spending
        assert order.insurance_fen == eligible * 5000 // 10000
        assert bill.insurance_status == "pending"
        assert insurer.record(bill.insurance_settlement_id)["status"] == "pending"
        services.payment_start(order=order, notify_url=catcher.url, return_url="http://x/")
    sandbox_hook(sandbox, "/_test/pay", {"mchid": "sbx_alpha", "out_trade_no": order.out_trade_no})
    _deliver(client_a, catcher.wait_for("TRANSACTION.SUCCESS", order.out_trade_no))
    with in_schema(hospital_a):
        # on_commit does not run inside the test transaction: run the follow-up it schedules
        assert bills.clinic_bill_insurance_sync(bill_id=bill.pk) == "settled"
    assert insurer.record(bill.insurance_settlement_id)["status"] == "settled"


def test_bill_with_insurer_is_reversed_when_unpaid_order_closes(hospital_a, card, patient, insurer):
    from payments import services

    bill = _bill(hospital_a, card, ITEMS)
    with in_schema(hospital_a):
        order = bills.clinic_bill_checkout(bill=bill, insurance_type="employee", payer=patient)
        bill.refresh_from_db()
        services.order_close(order=order, reason="expired")
        assert bills.clinic_bill_insurance_sync(bill_id=bill.pk) == "reversed"
        bill.refresh_from_db()
        assert (bill.status, bill.insurance_status) == ("unpaid", "reversed")
    assert insurer.record(bill.insurance_settlement_id)["status"] == "reversed"
