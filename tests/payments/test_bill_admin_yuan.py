"""Staff type bill prices in yuan (¥45.00 is "45"), as every bill and the refund form read.

The item inline asked for "unit price (fen)": a doctor typing 45 for a ¥45 ECG billed ¥0.45.
"""

from __future__ import annotations

from registration.models import ClinicBill
from tests.helpers import host_client, in_schema, make_staff
from tests.payments.test_bills import card  # noqa: F401 (fixture)

PREFIX = "items"


def _post(client, card, price: str):  # noqa: F811
    return client.post("/admin/payments/clinicbill/add/", {
        "patient_card": card.pk, "department": "", "doctor_name": "钱医生",
        f"{PREFIX}-TOTAL_FORMS": "1", f"{PREFIX}-INITIAL_FORMS": "0",
        f"{PREFIX}-0-name": "心电图", f"{PREFIX}-0-item_class": "A",
        f"{PREFIX}-0-unit_price_fen": price, f"{PREFIX}-0-quantity": "2"})


def test_bill_admin_prices_are_yuan(hospital_a, card):  # noqa: F811
    client = host_client("alpha.localhost", make_staff(hospital_a, "doctor"))
    page = client.get("/admin/payments/clinicbill/add/").content.decode()
    assert "单价（元）" in page and "单价（分）" not in page
    assert _post(client, card, "45").status_code == 302
    with in_schema(hospital_a):
        bill = ClinicBill.objects.get()
        assert (bill.total_fen, bill.items.get().unit_price_fen) == (9000, 4500)
    change = client.get(f"/admin/payments/clinicbill/{bill.pk}/change/").content.decode()
    assert 'value="45.00"' in change


def test_bill_admin_bad_price_is_a_form_error(hospital_a, card):  # noqa: F811
    client = host_client("alpha.localhost", make_staff(hospital_a, "doctor"))
    for bad in ("12.345", "abc", "-5"):
        r = _post(client, card, bad)
        assert r.status_code == 200 and "元" in r.content.decode()
    with in_schema(hospital_a):
        assert not ClinicBill.objects.exists()
