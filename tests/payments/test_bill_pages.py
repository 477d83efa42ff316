"""A clinic bill as the patient reads it on a phone: item classes in words, not codes."""

from __future__ import annotations

import re

from tests.helpers import HOSPITAL_A, host_client
from tests.payments.test_bills import ITEMS, _bill, card  # noqa: F401 (fixture)


def _class_cells(html: str) -> list[str]:
    return re.findall(r'<td class="nowrap">([^<]*)</td>', html)


def test_bill_page_names_insurance_classes_in_the_patients_language(hospital_a, card,  # noqa: F811
                                                                    patient):
    bill = _bill(hospital_a, card, ITEMS)
    client = host_client(HOSPITAL_A["domain"], patient)
    html = client.get(f"/payments/bills/{bill.bill_no}/").content.decode()
    assert _class_cells(html) == ["甲类", "乙类", "丙类"]
    client.cookies["django_language"] = "en"
    html = client.get(f"/payments/bills/{bill.bill_no}/").content.decode()
    assert _class_cells(html) == ["Class A", "Class B", "Class C"]
