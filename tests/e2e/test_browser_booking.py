"""A patient books a paid slot on the phone, pays on the sandbox cashier, then cancels it.

Departments → the doctor's day → a time slice → the family member → confirm → the provider's
cashier → back on the booking with its queue number, confirmed → My bookings → cancel → the
booking is cancelled and the refund is noted.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tests.helpers import PASSWORD, in_schema
from tests.registration.helpers import make_patient, make_session

pytestmark = [pytest.mark.browser]


@pytest.fixture
def bookable_session(committed_hospital_a):
    """Committed (the web server is another process): a patient with a family member, and a
    cardiologist at alpha with a morning session and a fee of ¥20."""
    from registration.services.rules import cancel_deadline

    user, member = make_patient("韩美丽")
    with in_schema(committed_hospital_a):
        # Tomorrow, as a patient would; but patients may cancel online only until the cut-off
        # (18:00 the day before), so late in the day the session is the day after tomorrow.
        day = timezone.localdate() + timedelta(days=1)
        if timezone.now() > cancel_deadline(day) - timedelta(minutes=15):
            day += timedelta(days=1)
        doctor, schedule = make_session(day=day, fee=2000, name="卢心安")
    connection.set_schema_to_public()
    return user, member, doctor, day


def test_browser_books_pays_and_cancels_a_slot(bookable_session, live_site, page):
    # (data first: Playwright runs an event loop in this thread, where Django refuses DB work)
    user, member, doctor, day = bookable_session
    platform = f"http://localhost:{live_site}"
    hospital = f"http://alpha.localhost:{live_site}"

    page.goto(platform + "/accounts/login/")
    page.locator("input[name=username]").fill(user.phone)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url(platform + "/")

    # The hospital's home page → the department → the doctor's day.
    page.goto(hospital + "/")
    page.wait_for_url(hospital + "/")
    page.get_by_role("link", name="心血管内科").first.click()
    page.wait_for_url(hospital + "/departments/cardiology/")
    card = page.locator(f"#doctor-{doctor.pk}")
    assert "卢心安" in card.inner_text()
    card.locator(f'td[data-date="{day.isoformat()}"] a').click()
    page.wait_for_url(f"{hospital}/doctors/{doctor.pk}/?date={day.isoformat()}")

    # A time slice → the family member → confirm.
    page.get_by_role("link", name="预约 08:00–08:30").click()
    page.wait_for_url(re.compile(r".*/bookings/new/\?slice=\d+$"))
    assert "¥20.00" in page.locator("main").inner_text()
    page.get_by_label("韩美丽").check()
    page.get_by_role("button", name="确认挂号并支付").click()

    # The order's pay page, then the provider's own cashier on its own host.
    page.wait_for_url(re.compile(r".*/payments/orders/\w+/$"))
    page.get_by_role("button", name="立即支付").click()
    page.wait_for_url("**/cashier/**")
    assert "¥20.00" in page.locator("#amount").inner_text()
    page.get_by_role("button", name="确认支付 Pay").click()

    # Back on the hospital's site: the booking, confirmed, with its queue number.
    page.wait_for_url(re.compile(re.escape(hospital) + r"/bookings/\d+/$"))
    booking_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    assert page.locator("#queue-number").inner_text() == "1"
    assert page.locator("#booking-status").inner_text() == "已确认"
    assert "07:30–08:00" in page.locator("#arrival-window").inner_text()
    assert "已支付" in page.locator("#payment-status").inner_text()

    # My bookings → cancel → confirm → cancelled, refund on its way.
    page.locator("header").get_by_role("link", name="我的预约").click()
    page.wait_for_url(hospital + "/bookings/")
    page.locator(f"#booking-{booking_id}").get_by_role("link", name="取消预约").click()
    page.wait_for_url(f"{hospital}/bookings/{booking_id}/cancel/")
    page.get_by_role("button", name="确认取消").click()
    page.wait_for_url(f"{hospital}/bookings/{booking_id}/")
    assert page.locator("#booking-status").inner_text() == "已取消"
    assert "¥20.00" in page.locator(".refund").inner_text()
    assert "原路退回" in page.locator(".messages").inner_text()
