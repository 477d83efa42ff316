"""Phone layout at 360 px: family members' names and masked ID numbers stay readable.

The masked ID number (18 monospace characters) used to squeeze the member's name into one
character per line ("张 / 小 / 雨") on a 360-px phone, and the booking page broke the masked
number itself ("330106********2 / 31X").
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from portal.accounts.services import family_member_add
from tests.helpers import PASSWORD, in_schema
from tests.registration.helpers import make_patient, make_session, valid_id

pytestmark = [pytest.mark.browser]


@pytest.fixture
def two_members_and_a_slice(committed_hospital_a):
    from registration.models import TimeSlice
    from registration.services.booking import booking_hold

    user, _ = make_patient("欧阳明月")
    # English: its longer labels leave the values the narrowest column.
    type(user).objects.filter(pk=user.pk).update(language="en")
    child = family_member_add(account=user, name="欧阳小雨", relation="child",
                              id_number=valid_id("20150601"))
    with in_schema(committed_hospital_a):
        _, schedule = make_session(day=timezone.localdate() + timedelta(days=2), name="宽屏医生")
        _, free = make_session(day=timezone.localdate() + timedelta(days=2), name="义诊医生",
                               fee=0)
        slice_id = TimeSlice.objects.filter(schedule=schedule).values_list("pk", flat=True)[0]
        booking = booking_hold(slice_id=TimeSlice.objects.filter(schedule=free).first().pk,
                               family_member=child, account=user)
    connection.set_schema_to_public()
    return user, slice_id, booking.pk


def test_browser_layout_member_names_stay_on_one_line_at_360px(two_members_and_a_slice,
                                                               live_site, page):
    user, slice_id, booking_id = two_members_and_a_slice
    page.set_viewport_size({"width": 360, "height": 800})
    platform = f"http://localhost:{live_site}"
    page.goto(platform + "/accounts/login/")
    page.locator("input[name=username]").fill(user.phone)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url(platform + "/")
    page.goto(f"http://alpha.localhost:{live_site}/bookings/new/?slice={slice_id}")

    names = page.locator("label.member .member-name")
    assert names.count() == 2
    for i in range(2):
        box = names.nth(i).bounding_box()
        line = page.evaluate("e => parseFloat(getComputedStyle(e).lineHeight) || 24",
                             names.nth(i).element_handle())
        assert box["height"] < 1.5 * line, names.nth(i).inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    # The booking's page: the masked ID number is one token, never broken across lines.
    page.goto(f"http://alpha.localhost:{live_site}/bookings/{booking_id}/")
    masked = page.locator("#booking-facts .id-number")
    line = page.evaluate("e => parseFloat(getComputedStyle(e).lineHeight) || 24",
                         masked.element_handle())
    assert masked.bounding_box()["height"] < 1.5 * line
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
