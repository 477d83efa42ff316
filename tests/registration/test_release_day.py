"""The day released this morning is on the patient's pages.

With a 7-day window released at 08:00, from 08:00 today the day 7 days ahead can be booked, but
the department page and the doctor's day picker listed only today + 6 days: the freshly
released places (the ones patients race for) could not be reached from the site.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone

from registration.services.rules import release_moment
from tests.helpers import HOSPITAL_A, host_client, in_schema
from tests.registration.helpers import make_patient, make_session


def test_release_day_last_day_of_the_window_is_listed(hospital_a):
    window = hospital_a.booking_window_days
    last = timezone.localdate() + timedelta(days=window)
    with in_schema(hospital_a):
        doctor, _ = make_session(day=last, name="放号医生")
        opens = release_moment(last)
    user, _ = make_patient()
    client = host_client(HOSPITAL_A["domain"], user)

    page = client.get("/departments/cardiology/").content.decode()
    card = page[page.index(f'id="doctor-{doctor.pk}"'):]
    cell = re.search(rf'data-state="(\w+)" data-date="{last.isoformat()}"', card)
    assert cell, "the window's last day is missing from the department page"
    expected = "open" if timezone.now() >= opens else "not_open"
    assert cell.group(1) == expected

    day_page = client.get(f"/doctors/{doctor.pk}/").content.decode()
    options = re.findall(r'<option value="(\d{4}-\d\d-\d\d)"', day_page)
    assert options[-1] == last.isoformat() and len(options) == window + 1
