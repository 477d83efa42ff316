"""The order page (where payment and refund messages lead) leads on to what was paid for."""

from __future__ import annotations

from registration.services import bills
from tests.helpers import HOSPITAL_A, host_client, in_schema
from tests.payments.test_bills import ITEMS, card  # noqa: F401 (fixture)


def test_order_page_links_to_the_clinic_bill(hospital_a, card, patient):  # noqa: F811
    with in_schema(hospital_a):
        bill = bills.clinic_bill_open(patient_card=card, doctor_name="李医生")
        bills.clinic_bill_set_items(bill=bill, items=ITEMS)
        order = bills.clinic_bill_checkout(bill=bill, insurance_type="none", payer=patient)
    html = host_client(HOSPITAL_A["domain"], patient).get(
        f"/payments/orders/{order.out_trade_no}/").content.decode()
    assert f'id="paid-for" href="/payments/bills/{bill.bill_no}/"' in html
    assert "查看门诊账单" in html
