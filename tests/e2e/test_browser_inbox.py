"""A patient whose doctor stopped clinic sees it in the site inbox: the unread count in the
header, then the stop-clinic message with the reason."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.helpers import PASSWORD, in_schema, make_staff
from tests.registration.helpers import make_patient, make_session

pytestmark = [pytest.mark.browser]

REASON = "医生临时外出会诊"


@pytest.fixture
def stopped_clinic(committed_hospital_a):
    """Committed (the web server is another process): a patient with a confirmed free booking
    at alpha, whose session the hospital then stops; the outbox delivered in this process
    (the live site has no worker)."""
    from portal.notifications.models import InboxMessage
    from portal.notifications.services import outbox_deliver_now
    from registration.models import Booking, TimeSlice
    from registration.services import booking as svc
    from registration.services import schedules as schedules_services

    hospital = committed_hospital_a
    user, member = make_patient("停诊收信人")
    staff = make_staff(hospital, "registrar")
    with in_schema(hospital):
        _doctor, schedule = make_session(fee=0, name="温停诊")
        slice_ = TimeSlice.objects.filter(schedule=schedule).order_by("start").first()
        booking = svc.booking_hold(slice_id=slice_.pk, family_member=member, account=user)
        assert Booking.objects.get(pk=booking.pk).status == Booking.Status.CONFIRMED
        assert schedules_services.schedule_stop(schedule=schedule, reason=REASON, actor=staff) == 1
    connection.set_schema_to_public()
    outbox_deliver_now()
    stop = InboxMessage.objects.get(user=user, kind="schedule_stopped")
    assert REASON in stop.body
    unread = InboxMessage.objects.filter(user=user, read_at__isnull=True).count()
    assert unread >= 1  # the stop notice (and the booking confirmation before it)
    return user, stop, unread


def test_browser_sees_stop_clinic_message_in_inbox(stopped_clinic, live_site, page):
    # (data first: Playwright runs an event loop in this thread, where Django refuses DB work)
    user, stop, unread = stopped_clinic
    platform = f"http://localhost:{live_site}"
    hospital = f"http://alpha.localhost:{live_site}"

    page.goto(platform + "/accounts/login/")
    page.locator("input[name=username]").fill(user.phone)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url(platform + "/")

    # The hospital's site: "消息" in the header with the unread count.
    page.goto(hospital + "/")
    page.wait_for_url(hospital + "/")
    link = page.locator("header nav.account-nav a[href='/inbox/']")
    assert link.inner_text().startswith("消息")
    assert link.locator(".tag").inner_text() == str(unread)

    # The inbox: the stop-clinic message, with the doctor and the reason.
    link.click()
    page.wait_for_url(hospital + "/inbox/")
    assert page.locator("h1").inner_text() == "消息"
    card = page.locator("ul.inbox li.card", has_text=stop.title)
    assert card.count() == 1
    text = card.inner_text()
    assert "温停诊" in text and REASON in text
    assert "新" in card.locator(".tag").inner_text()  # unread until this page was shown

    # Seen: the count is gone from the header on the next page.
    page.goto(hospital + "/")
    assert page.locator("header nav.account-nav a[href='/inbox/'] .tag").count() == 0
