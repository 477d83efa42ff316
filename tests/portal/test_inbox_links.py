"""A message leads to what it is about: "pay before 18:00" opens the booking to pay.

Messages carried a link (the booking, the bill) that the inbox never showed: a patient told a
waitlisted place was held for them had to find the booking on their own before it expired.
"""

from __future__ import annotations

from portal.notifications.services import notify, outbox_deliver_now
from tests.helpers import HOSPITAL_A, HOSPITAL_B, PLATFORM_HOST, host_client, make_user


def _message(hospital_a, link="/bookings/42/"):
    user = make_user()
    notify(kind="booking_confirmed", hospital=hospital_a, recipients=[user], link=link,
           context={"doctor": "张医生", "day": "2026-12-01", "name": "李雷", "number": 3,
                    "arrive": "07:30–08:00"})
    outbox_deliver_now()
    return user


def test_inbox_links_to_the_booking_on_its_own_hospital(hospital_a):
    user = _message(hospital_a)
    html = host_client(HOSPITAL_A["domain"], user).get("/inbox/").content.decode()
    assert '<a href="/bookings/42/">预约成功' in html


def test_inbox_links_across_sites_to_the_hospital(hospital_a, hospital_b):
    user = _message(hospital_a)
    for host in (PLATFORM_HOST, HOSPITAL_B["domain"]):
        html = host_client(host, user).get("/inbox/").content.decode()
        assert f'href="http://{HOSPITAL_A["domain"]}/bookings/42/"' in html


def test_inbox_ignores_links_that_are_not_site_paths(hospital_a):
    user = _message(hospital_a, link="//evil.example/x")
    html = host_client(HOSPITAL_A["domain"], user).get("/inbox/").content.decode()
    assert "evil.example" not in html and "预约成功" in html
