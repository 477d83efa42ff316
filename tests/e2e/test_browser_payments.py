"""A patient pays a clinic bill on the phone through the sandbox provider's cashier."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.helpers import PASSWORD, in_schema, make_user

pytestmark = [pytest.mark.browser]


@pytest.fixture
def unpaid_bill(committed_hospital_a):
    """Committed (the web server is another process): a patient, a card at alpha, a bill."""
    from portal.accounts.services import family_member_add
    from registration.services import bills
    from registration.services.patients import patient_card_for

    if True:  # committed: the web server is another process
        patient = make_user(name="缴费人")
        member = family_member_add(account=patient, name="缴费人", relation="self",
                                   id_number="11010519491231002X")
        with in_schema(committed_hospital_a):
            card = patient_card_for(family_member=member)
            bill = bills.clinic_bill_open(patient_card=card, doctor_name="周医生")
            bill = bills.clinic_bill_set_items(bill=bill, items=[
                {"name": "血常规", "item_class": "A", "unit_price_fen": 2550, "quantity": 1},
                {"name": "胸片", "item_class": "B", "unit_price_fen": 9000, "quantity": 1}])
        connection.set_schema_to_public()
    return patient, bill


def test_browser_pays_clinic_bill_through_sandbox_cashier(unpaid_bill, live_site, page):
    # (data first: Playwright runs an event loop in this thread, where Django refuses DB work)
    patient, bill = unpaid_bill
    platform = f"http://localhost:{live_site}"
    hospital = f"http://alpha.localhost:{live_site}"

    page.goto(platform + "/accounts/login/")
    page.locator("input[name=username]").fill(patient.phone)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url(platform + "/")

    page.goto(hospital + "/payments/bills/")
    page.get_by_role("link", name="缴费人 · ¥115.50").click()
    page.wait_for_url(f"{hospital}/payments/bills/{bill.bill_no}/")
    assert page.locator("#self-pay-part").inner_text() == "¥115.50"  # self-pay: no insurance
    page.locator("#pay-bill").click()

    # The provider's own cashier page, on the provider's host.
    page.wait_for_url("**/cashier/**")
    assert "¥115.50" in page.locator("#amount").inner_text()
    page.get_by_role("button", name="确认支付 Pay").click()

    # Back on the hospital's site: the receipt.
    page.wait_for_url(f"{hospital}/payments/bills/{bill.bill_no}/")
    assert page.locator("h1").inner_text() == "收据"
    assert page.locator("#bill-status").inner_text() == "已支付"
