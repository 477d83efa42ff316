"""The patient path on a hospital's site, through the hospital's host.

Departments → a doctor's next days → a day's time slices → confirm for a family member → pay
(held) or confirmed at once (free) → the booking with its queue number; My bookings, cancel with
a confirm step, the waitlist. Every refusal is a 409 with the service's message and changes
nothing; input naming nothing we know is a 400; other people's bookings are 404. The department
page's query count does not grow with the number of doctors.
"""

from __future__ import annotations

import re
from datetime import time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments.models import Order, Refund
from portal.middleware import domain_cache
from registration.models import (
    Booking,
    BookingBan,
    Department,
    Doctor,
    Schedule,
    TimeSlice,
    WaitlistEntry,
)
from registration.services import booking as svc
from registration.services import waitlist as waitlist_services
from tenants.models import Hospital
from tests.helpers import HOSPITAL_A, host_client, in_schema
from tests.registration.helpers import make_patient, make_session

HOST = HOSPITAL_A["domain"]
QUERIES = []


def _client(user=None, *, english: bool = False):
    client = host_client(HOST, user)
    if english:  # the services' messages are easier to recognise in their source language
        client.cookies["django_language"] = "en"
    return client


def _slices(schedule) -> list[TimeSlice]:
    return list(TimeSlice.objects.filter(schedule=schedule).order_by("start"))


def _day(n: int):
    return timezone.localdate() + timedelta(days=n)


def _alert(html: str) -> str:
    m = re.search(r'role="alert"[^>]*>(.*?)</div>', html, re.S)
    assert m, "no role=alert block on the page"
    return re.sub(r"<[^>]+>", "", m.group(1)).strip()


@pytest.fixture
def rules(hospital_a):
    """Change alpha's booking rules as staff would; the per-process hospital cache follows."""

    def change(**fields) -> None:
        Hospital.objects.filter(pk=hospital_a.pk).update(**fields)
        domain_cache.invalidate()

    yield change
    domain_cache.invalidate()  # the test's transaction is rolled back: forget what we cached


# --------------------------------------------------------------------------- catalogue


def test_pages_home_and_department_tree_link_to_departments(hospital_a):
    home = _client().get("/").content.decode()
    assert 'href="/departments/"' in home and 'href="/departments/cardiology/"' in home
    tree = _client().get("/departments/")
    assert tree.status_code == 200
    page = tree.content.decode()
    assert 'href="/departments/internal/"' in page and 'href="/departments/cardiology/"' in page
    assert _client().get("/departments/no-such-thing/").status_code == 404


def test_pages_nav_on_hospital_site_with_unread_count(hospital_a, patient):
    from portal.notifications.services import inbox_send

    page = _client(patient).get("/").content.decode()
    for href in ("/departments/", "/bookings/", "/payments/bills/", "/inbox/"):
        assert f'href="{href}"' in page
    assert "就诊人" in page and "退出登录" in page  # the existing account links stay
    inbox_send(user=patient, hospital=hospital_a, kind="test", title="t", body="b",
               dedupe_key=f"nav-{patient.pk}")
    page = _client(patient).get("/").content.decode()
    assert re.search(r'href="/inbox/"[^>]*>消息 <span class="tag" aria-hidden="true">1</span>',
                     page)
    anonymous = _client().get("/").content.decode()
    assert 'href="/departments/"' in anonymous and 'href="/bookings/"' not in anonymous
    platform = host_client("localhost").get("/").content.decode()
    assert 'href="/bookings/"' not in platform  # the platform's own header is unchanged


def _doctor_card(html: str, doctor_pk: int) -> str:
    return html.split(f'id="doctor-{doctor_pk}"', 1)[1].split("</li>", 1)[0]


def _doctor_cells(html: str, doctor_pk: int) -> dict[str, str]:
    """date → state of each day on a doctor's card."""
    cells = re.findall(r'data-state="(\w+)" data-date="([\d-]+)"', _doctor_card(html, doctor_pk))
    return {day: state for state, day in cells}


def test_pages_department_shows_remaining_full_not_yet_open_and_waitlist(hospital_a, rules):
    # Window of 1 day, released at midnight: tomorrow is open, the day after next is not yet.
    rules(booking_window_days=1, release_time=time(0, 0))
    with in_schema(hospital_a):
        free, _ = make_session(day=_day(1), capacity=2, slices=2, name="有号医生")
        full, full_schedule = make_session(day=_day(1), capacity=1, slices=1, name="满号医生")
        later, _ = make_session(day=_day(3), name="未放号医生")
    user, member = make_patient()
    with in_schema(hospital_a):
        svc.booking_hold(slice_id=_slices(full_schedule)[0].pk, family_member=member,
                         account=user)
    r = _client().get("/departments/cardiology/")
    assert r.status_code == 200
    html = r.content.decode()
    tomorrow, later_day = _day(1).isoformat(), _day(3).isoformat()
    assert _doctor_cells(html, free.pk)[tomorrow] == "open"
    assert _doctor_cells(html, full.pk)[tomorrow] == "full"
    assert _doctor_cells(html, later.pk)[later_day] == "not_open"
    assert _doctor_cells(html, later.pk)[tomorrow] == "none"
    assert "余 4 个" in _doctor_card(html, free.pk)
    assert f'href="/doctors/{full.pk}/?date={tomorrow}#waitlist"' in html
    assert f'href="/doctors/{free.pk}/?date={tomorrow}"' in html


def test_pages_department_queries_constant_with_5_and_50_doctors(hospital_a, patient):
    def add_doctors(department, n: int, start: int) -> None:
        from registration.services.schedules import slices_create

        for i in range(start, start + n):
            doctor = Doctor.objects.create(department=department, name=f"医生{i}",
                                           title=["chief", "attending"][i % 2])
            for offset in (1, 2):
                schedule = Schedule.objects.create(doctor=doctor, date=_day(offset), period="am",
                                                   fee_fen=2000 + 500 * offset * (i % 3))
                slices_create(schedule=schedule, start_time=time(8), end_time=time(9),
                              minutes=30, capacity=3)
                if offset == 2 and i % 2:  # some days stopped (停诊), some fees differing
                    Schedule.objects.filter(pk=schedule.pk).update(status="stopped",
                                                                   stop_reason="x")

    with in_schema(hospital_a):
        department = Department.objects.create(code="query-count", name="计数科")
        add_doctors(department, 5, 0)
    client = _client(patient)
    url = "/departments/query-count/"
    assert client.get(url).status_code == 200  # warm the host → hospital cache

    def count() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        assert response.status_code == 200
        QUERIES[:] = ctx.captured_queries
        return len(ctx.captured_queries), response.content.decode()

    with_5, html = count()
    assert html.count('class="card doctor"') == 5
    with in_schema(hospital_a):
        add_doctors(Department.objects.get(code="query-count"), 45, 5)
    with_50, html = count()
    assert html.count('class="card doctor"') == 50
    assert with_5 == with_50, (with_5, with_50)
    # And few: session, user, department, sub-departments, doctors, counts, title fees, unread
    # messages (django-tenants sends a SET search_path before each).
    assert len([q for q in QUERIES if not q["sql"].startswith("SET ")]) <= 8


def _add_session(doctor, *, day, period="pm", fee=2000, capacity=5, stopped=False):
    """Another session of `doctor` (two 30-minute slices from 14:00), stopped if asked."""
    from registration.services.schedules import slices_create

    schedule = Schedule.objects.create(doctor=doctor, date=day, period=period, fee_fen=fee)
    slices_create(schedule=schedule, start_time=time(14), end_time=time(15), minutes=30,
                  capacity=capacity)
    if stopped:
        Schedule.objects.filter(pk=schedule.pk).update(status="stopped", stop_reason="外出会诊")
    return schedule


def test_pages_department_stopped_day_is_stopped_not_no_clinic(hospital_a, rules):
    # A stopped clinic (停诊) used to read "无出诊" like a day without any clinic.
    rules(booking_window_days=3, release_time=time(0, 0))  # a week shown, 3 days released
    with in_schema(hospital_a):
        stopped, schedule = make_session(day=_day(2), name="停诊医生")
        Schedule.objects.filter(pk=schedule.pk).update(status="stopped", stop_reason="外出会诊")
        # Stopped before its day is released: still "stopped", not "not yet open".
        later, schedule = make_session(day=_day(5), name="未放号停诊医生")
        Schedule.objects.filter(pk=schedule.pk).update(status="stopped", stop_reason="培训")
        # Two sessions, the afternoon one stopped: the morning's places count as usual.
        half, _ = make_session(day=_day(2), capacity=3, slices=2, name="半天医生")
        _add_session(half, day=_day(2), stopped=True)
        # Both sessions stopped: the day is stopped.
        both, _ = make_session(day=_day(2), name="全天停诊医生")
        _add_session(both, day=_day(2))
        Schedule.objects.filter(doctor=both).update(status="stopped", stop_reason="x")
    html = _client().get("/departments/cardiology/").content.decode()
    day2, day3 = _day(2).isoformat(), _day(3).isoformat()
    assert _doctor_cells(html, stopped.pk)[day2] == "stopped"
    assert _doctor_cells(html, stopped.pk)[day3] == "none"
    assert _doctor_cells(html, later.pk)[_day(5).isoformat()] == "stopped"
    assert _doctor_cells(html, half.pk)[day2] == "open"
    assert _doctor_cells(html, both.pk)[day2] == "stopped"
    card = _doctor_card(html, stopped.pk)
    assert "停诊" in card and card.count("无出诊") == len(_doctor_cells(html, stopped.pk)) - 1
    assert "余 6 个" in _doctor_card(html, half.pk) and "停诊" not in _doctor_card(html, half.pk)
    # The stopped day links to the doctor's day, where the reason is shown.
    assert f'href="/doctors/{stopped.pk}/?date={day2}"' in card
    english = _client(english=True).get("/departments/cardiology/").content.decode()
    assert "Clinic stopped" in _doctor_card(english, stopped.pk)


def test_pages_department_fee_is_the_fee_of_the_sessions_on_offer(hospital_a, rules):
    # The card showed the title's (or the doctor's own) fee, not the fee staff set per session.
    rules(booking_window_days=7, release_time=time(0, 0))
    with in_schema(hospital_a):
        same, _ = make_session(day=_day(1), fee=3500, name="同价医生")  # attending: ¥20 by title
        _add_session(same, day=_day(2), fee=3500)
        _add_session(same, day=_day(3), fee=9900, stopped=True)  # stopped: not on offer
        ranged, _ = make_session(day=_day(1), fee=1000, name="多价医生")
        _add_session(ranged, day=_day(2), fee=2500)
        free, _ = make_session(day=_day(1), fee=0, name="义诊医生")
        mixed, _ = make_session(day=_day(1), fee=0, name="半义诊医生")
        _add_session(mixed, day=_day(2), fee=1500)
        idle = Doctor.objects.create(department=Department.objects.get(code="cardiology"),
                                     name="无号医生", title="chief")  # ¥50 by title
        own = Doctor.objects.create(department=Department.objects.get(code="cardiology"),
                                    name="特需医生", title="chief", fee_override_fen=0)
        # Outside the days shown: not on offer on this page.
        away, _ = make_session(day=_day(30), fee=8800, name="远期医生", title="resident")

    def fee(html: str, doctor) -> str:
        card = re.sub(r"<[^>]+>", "", _doctor_card(html, doctor.pk))
        return re.search(r"(?:挂号费|Registration fee) (\S+)", card).group(1)

    html = _client().get("/departments/cardiology/").content.decode()
    assert fee(html, same) == "¥35.00"
    assert fee(html, ranged) == "¥10.00–¥25.00"
    assert fee(html, free) == "免费"
    assert fee(html, mixed) == "免费–¥15.00"
    assert fee(html, idle) == "¥50.00"
    assert fee(html, own) == "免费"
    assert fee(html, away) == "¥10.00"
    english = _client(english=True).get("/departments/cardiology/").content.decode()
    assert fee(english, free) == "Free" and fee(english, ranged) == "¥10.00–¥25.00"


def test_pages_doctor_day_lists_slices_with_remaining(hospital_a):
    with in_schema(hospital_a):
        doctor, schedule = make_session(day=_day(2), capacity=3, slices=2)
        first, second = _slices(schedule)
    user, member = make_patient()
    with in_schema(hospital_a):
        svc.booking_hold(slice_id=first.pk, family_member=member, account=user)
    html = _client().get(f"/doctors/{doctor.pk}/", {"date": _day(2).isoformat()}).content.decode()
    assert "08:00–08:30" in html and "08:30–09:00" in html
    assert "2 / 3" in html and "3 / 3" in html
    assert f'href="/bookings/new/?slice={first.pk}"' in html
    assert f'href="/bookings/new/?slice={second.pk}"' in html
    assert "¥20.00" in html
    assert _client().get(f"/doctors/{doctor.pk}/", {"date": "tomorrow"}).status_code == 400
    assert _client().get("/doctors/999999/").status_code == 404
    # No clinic that day: said so, not an error.
    other = _client().get(f"/doctors/{doctor.pk}/", {"date": _day(5).isoformat()})
    assert other.status_code == 200 and 'class="empty"' in other.content.decode()


def test_pages_stopped_session_shown_as_stopped(hospital_a):
    with in_schema(hospital_a):
        doctor, schedule = make_session(day=_day(2))
        Schedule.objects.filter(pk=schedule.pk).update(status="stopped", stop_reason="外出会诊")
    html = _client().get(f"/doctors/{doctor.pk}/", {"date": _day(2).isoformat()}).content.decode()
    assert "停诊" in html and "外出会诊" in html and "/bookings/new/" not in html


# --------------------------------------------------------------------------- booking


def test_pages_booking_paid_path_hold_pay_confirmed_then_cancel_refunds(hospital_a, sandbox):
    from tests.payments.helpers import sandbox_hook

    user, member = make_patient("王小明")
    with in_schema(hospital_a):
        # Three days ahead: the cancellation cut-off (18:00 the day before) is still ahead.
        doctor, schedule = make_session(day=_day(3))
        target = _slices(schedule)[1]
    client = _client(user)

    # Department → doctor → the slice's confirm page.
    dept = client.get("/departments/cardiology/").content.decode()
    assert f'href="/doctors/{doctor.pk}/?date={_day(3).isoformat()}"' in dept
    day_page = client.get(f"/doctors/{doctor.pk}/", {"date": _day(3).isoformat()})
    assert f"/bookings/new/?slice={target.pk}" in day_page.content.decode()
    confirm = client.get("/bookings/new/", {"slice": target.pk})
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "王小明" in html and "¥20.00" in html and doctor.name in html
    assert member.id_number not in html and member.masked_id_number in html
    assert f'value="{member.pk}"' in html

    # Confirm: a hold, then the order's pay page.
    r = client.post("/bookings/new/", {"slice": target.pk, "family_member": member.pk})
    with in_schema(hospital_a):
        booking = Booking.objects.get(family_member_id=member.pk)
        assert booking.status == Booking.Status.HELD
        no = booking.order.out_trade_no
    assert r.status_code == 302 and r["Location"] == f"/payments/orders/{no}/"
    held = client.get(f"/bookings/{booking.pk}/").content.decode()
    assert f'href="/payments/orders/{no}/"' in held and "待支付" in held

    # Pay on the provider's cashier; back from it we land on the booking.
    pay = client.post(f"/payments/orders/{no}/pay/")
    assert pay.status_code == 302 and pay["Location"].startswith(sandbox.base_url + "/cashier/")
    sandbox_hook(sandbox, "/_test/pay", {"mchid": "sbx_alpha", "out_trade_no": no})
    back = client.get(f"/payments/orders/{no}/return/", {"result": "paid"})
    assert back.status_code == 302 and back["Location"] == f"/bookings/{booking.pk}/"
    page = client.get(back["Location"]).content.decode()
    assert re.search(r'id="queue-number">6<', page)  # slice 2 of capacity 5 starts at 6
    assert re.search(r'id="booking-status">已确认<', page)
    # Arrive in the half hour before the slice (08:30, hospital time).
    assert re.search(r'id="arrival-window">[^<]*08:00–08:30<', page)
    assert "已支付" in page and member.masked_id_number in page

    # My bookings → cancel (confirm step) → cancelled, refunded.
    mine = client.get("/bookings/").content.decode()
    assert f'href="/bookings/{booking.pk}/cancel/"' in mine
    ask = client.get(f"/bookings/{booking.pk}/cancel/")
    assert ask.status_code == 200 and "¥20.00" in ask.content.decode()
    with in_schema(hospital_a):
        assert Booking.objects.get(pk=booking.pk).status == Booking.Status.CONFIRMED  # GET: no-op
    done = client.post(f"/bookings/{booking.pk}/cancel/")
    assert done.status_code == 302 and done["Location"] == f"/bookings/{booking.pk}/"
    with in_schema(hospital_a):
        booking.refresh_from_db()
        assert booking.status == Booking.Status.CANCELLED
        refund = Refund.objects.get(order_id=booking.order_id)
        assert refund.amount_fen == 2000
        assert TimeSlice.objects.get(pk=target.pk).booked == 0
    page = client.get(f"/bookings/{booking.pk}/").content.decode()
    assert re.search(r'id="booking-status">已取消<', page)
    assert 'class="refund">¥20.00' in page
    assert f'href="/bookings/{booking.pk}/cancel/"' not in page


def test_pages_booking_free_confirms_at_once(hospital_a):
    user, member = make_patient()
    with in_schema(hospital_a):
        _, schedule = make_session(day=_day(2), fee=0, name="义诊医生")
        target = _slices(schedule)[0]
    r = _client(user).post("/bookings/new/", {"slice": target.pk, "family_member": member.pk})
    with in_schema(hospital_a):
        booking = Booking.objects.get(family_member_id=member.pk)
    assert (booking.status, booking.order_id) == (Booking.Status.CONFIRMED, None)
    assert r.status_code == 302 and r["Location"] == f"/bookings/{booking.pk}/"
    page = _client(user).get(r["Location"]).content.decode()
    assert re.search(r'id="queue-number">1<', page) and "免费" in page


def test_pages_booking_without_family_member_links_to_add_one(hospital_a):
    from tests.helpers import make_user

    user = make_user(name="新用户")
    with in_schema(hospital_a):
        _, schedule = make_session(day=_day(2))
        target = _slices(schedule)[0]
    html = _client(user).get("/bookings/new/", {"slice": target.pk}).content.decode()
    assert 'href="/accounts/family/add/"' in html and 'name="family_member"' not in html


def test_pages_booking_requires_login(hospital_a):
    with in_schema(hospital_a):
        _, schedule = make_session(day=_day(2))
        target = _slices(schedule)[0]
    r = _client().get("/bookings/new/", {"slice": target.pk})
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]
    assert _client().get("/bookings/").status_code == 302


REFUSALS = {
    "sold_out": "fully booked",
    "duplicate": "already has a booking with this doctor",
    "limit": "active bookings here",
    "banned": "suspended",
    "stopped": "stopped this clinic",
    "not_released": "open at",
    "past": "already passed",
}


@pytest.mark.parametrize("rule", sorted(REFUSALS))
def test_pages_booking_refusal_is_409_with_message_and_changes_nothing(hospital_a, rule):
    user, member = make_patient()
    with in_schema(hospital_a):
        _, schedule = make_session(day=_day(2), capacity=1 if rule == "sold_out" else 5)
        target = _slices(schedule)[0]
        if rule == "sold_out":
            other_user, other_member = make_patient("抢先者")
            svc.booking_hold(slice_id=target.pk, family_member=other_member, account=other_user)
        elif rule == "duplicate":
            svc.booking_hold(slice_id=_slices(schedule)[1].pk, family_member=member,
                             account=user)
        elif rule == "limit":
            for i in range(3):  # default: at most 3 active bookings
                _, other = make_session(day=_day(2), name=f"医生{i}")
                svc.booking_hold(slice_id=_slices(other)[0].pk, family_member=member,
                                 account=user)
        elif rule == "banned":
            BookingBan.objects.create(family_member=member, reason="3 次爽约",
                                      until=_day(30))
        elif rule == "stopped":
            Schedule.objects.filter(pk=schedule.pk).update(status="stopped")
        elif rule == "not_released":
            _, far = make_session(day=_day(8), name="远期医生")  # opens tomorrow 08:00
            target = _slices(far)[0]
        elif rule == "past":
            _, gone = make_session(day=_day(-1), name="昨日医生")
            target = _slices(gone)[0]
        bookings, booked = Booking.objects.count(), TimeSlice.objects.get(pk=target.pk).booked
        orders = Order.objects.count()

    r = _client(user, english=True).post("/bookings/new/",
                                         {"slice": target.pk, "family_member": member.pk})
    assert r.status_code == 409
    assert REFUSALS[rule] in _alert(r.content.decode())
    assert 'name="family_member"' in r.content.decode()  # the confirm page, ready to retry
    with in_schema(hospital_a):
        assert Booking.objects.count() == bookings and Order.objects.count() == orders
        assert TimeSlice.objects.get(pk=target.pk).booked == booked


@pytest.mark.parametrize("data", [{}, {"slice": ""}, {"slice": "abc"}, {"slice": "999999"},
                                  {"member": None}, {"member": ""}, {"member": "abc"},
                                  {"member": "other"}])
def test_pages_booking_malformed_input_is_400(hospital_a, data):
    user, member = make_patient()
    _, someone_else = make_patient("别人家的")
    with in_schema(hospital_a):
        _, schedule = make_session(day=_day(2))
        target = _slices(schedule)[0]
    post = {"slice": target.pk, "family_member": member.pk}
    if "slice" in data:
        post["slice"] = data["slice"]
    if "member" in data:
        post.pop("family_member")
        if data["member"] is not None:
            post["family_member"] = someone_else.pk if data["member"] == "other" else data["member"]
    if not data:
        post.pop("slice")
    r = _client(user).post("/bookings/new/", post)
    assert r.status_code == 400 and _alert(r.content.decode())
    with in_schema(hospital_a):
        assert not Booking.objects.filter(family_member_id__in=[member.pk, someone_else.pk]
                                          ).exists()
        assert TimeSlice.objects.get(pk=target.pk).booked == 0
    assert _client(user).get("/bookings/new/").status_code == 400


# --------------------------------------------------------------------------- my bookings


def test_pages_my_bookings_upcoming_first_then_past(hospital_a):
    user, member = make_patient()
    with in_schema(hospital_a):
        _, cancelled_s = make_session(day=_day(2), name="取消医生")
        _, later_s = make_session(day=_day(4), name="后天医生")
        _, sooner_s = make_session(day=_day(3), name="明天医生")
        gone = svc.booking_hold(slice_id=_slices(cancelled_s)[0].pk, family_member=member,
                                account=user)
        svc.booking_cancel(booking=gone, actor=user)
        later = svc.booking_hold(slice_id=_slices(later_s)[0].pk, family_member=member,
                                 account=user)
        sooner = svc.booking_hold(slice_id=_slices(sooner_s)[0].pk, family_member=member,
                                  account=user)
    html = _client(user).get("/bookings/").content.decode()
    positions = [html.index(f'id="booking-{b.pk}"') for b in (sooner, later, gone)]
    assert positions == sorted(positions)
    assert html.index('id="past"') < positions[2]
    assert f'href="/bookings/{gone.pk}/cancel/"' not in html


def test_pages_others_bookings_are_404(hospital_a):
    owner, member = make_patient("主人")
    stranger, stranger_member = make_patient("路人")
    with in_schema(hospital_a):
        _, schedule = make_session(day=_day(3))
        booking = svc.booking_hold(slice_id=_slices(schedule)[0].pk, family_member=member,
                                   account=owner)
        _, full = make_session(day=_day(3), capacity=1, slices=1, name="满员医生")
        u2, m2 = make_patient()
        svc.booking_hold(slice_id=_slices(full)[0].pk, family_member=m2, account=u2)
        entry = waitlist_services.waitlist_join(schedule=full, family_member=member, account=owner)
    client = _client(stranger)
    assert client.get(f"/bookings/{booking.pk}/").status_code == 404
    assert client.get(f"/bookings/{booking.pk}/cancel/").status_code == 404
    assert client.post(f"/bookings/{booking.pk}/cancel/").status_code == 404
    assert client.post(f"/waitlist/{entry.pk}/leave/").status_code == 404
    mine = client.get("/bookings/").content.decode()
    assert f"booking-{booking.pk}" not in mine and f"waitlist-{entry.pk}" not in mine
    # Booking for someone else's family member: that member is unknown here.
    r = client.post("/bookings/new/", {"slice": _slices(schedule)[1].pk,
                                       "family_member": member.pk})
    assert r.status_code == 400
    with in_schema(hospital_a):
        assert Booking.objects.get(pk=booking.pk).status == Booking.Status.HELD
        assert WaitlistEntry.objects.get(pk=entry.pk).status == WaitlistEntry.Status.WAITING
    assert _client(owner).get(f"/bookings/{booking.pk}/").status_code == 200


def test_pages_cancel_unpaid_hold_closes_order(hospital_a):
    user, member = make_patient()
    with in_schema(hospital_a):
        _, schedule = make_session(day=_day(3))
        booking = svc.booking_hold(slice_id=_slices(schedule)[0].pk, family_member=member,
                                   account=user)
    client = _client(user)
    assert 'id="confirm-cancel"' in client.get(f"/bookings/{booking.pk}/cancel/").content.decode()
    r = client.post(f"/bookings/{booking.pk}/cancel/")
    assert r.status_code == 302
    with in_schema(hospital_a):
        booking.refresh_from_db()
        assert booking.status == Booking.Status.CANCELLED
        assert Order.objects.get(pk=booking.order_id).status == Order.Status.CLOSED
    assert "已取消" in client.get(r["Location"]).content.decode()
    again = client.post(f"/bookings/{booking.pk}/cancel/")  # already cancelled: refused
    assert again.status_code == 409 and _alert(again.content.decode())


def test_pages_cancel_after_cut_off_is_refused_with_message(hospital_a, rules):
    user, member = make_patient()
    with in_schema(hospital_a):
        _, schedule = make_session(day=_day(1), fee=0)  # confirmed at once (a hold can always go)
        booking = svc.booking_hold(slice_id=_slices(schedule)[0].pk, family_member=member,
                                   account=user)
    rules(cancel_cutoff_hour=0)  # the cut-off was midnight today: passed
    client = _client(user, english=True)
    ask = client.get(f"/bookings/{booking.pk}/cancel/").content.decode()
    assert "Online cancellation closed" in ask and 'id="confirm-cancel"' not in ask
    r = client.post(f"/bookings/{booking.pk}/cancel/")
    assert r.status_code == 409 and "Online cancellation closed" in _alert(r.content.decode())
    with in_schema(hospital_a):
        assert Booking.objects.get(pk=booking.pk).status == Booking.Status.CONFIRMED
    detail = client.get(f"/bookings/{booking.pk}/").content.decode()
    assert "Online cancellation closed" in detail


# --------------------------------------------------------------------------- waitlist


def test_pages_waitlist_join_show_and_leave(hospital_a):
    user, member = make_patient("候补人")
    with in_schema(hospital_a):
        doctor, schedule = make_session(day=_day(3), capacity=1, slices=1)
        first_user, first_member = make_patient("先到者")
        svc.booking_hold(slice_id=_slices(schedule)[0].pk, family_member=first_member,
                         account=first_user)
    client = _client(user)
    day_page = client.get(f"/doctors/{doctor.pk}/", {"date": _day(3).isoformat()}).content.decode()
    assert 'id="waitlist"' in day_page and f'action="/schedules/{schedule.pk}/waitlist/"' in day_page

    r = client.post(f"/schedules/{schedule.pk}/waitlist/", {"family_member": member.pk})
    assert r.status_code == 302 and r["Location"] == "/bookings/#waitlist"
    with in_schema(hospital_a):
        entry = WaitlistEntry.objects.get(schedule=schedule, family_member_id=member.pk)
        assert entry.status == WaitlistEntry.Status.WAITING
    mine = client.get("/bookings/").content.decode()
    assert f'action="/waitlist/{entry.pk}/leave/"' in mine and "候补人" in mine

    twice = _client(user, english=True).post(f"/schedules/{schedule.pk}/waitlist/",
                                             {"family_member": member.pk})
    assert twice.status_code == 409 and "already on the waitlist" in _alert(twice.content.decode())

    left = client.post(f"/waitlist/{entry.pk}/leave/")
    assert left.status_code == 302
    with in_schema(hospital_a):
        entry.refresh_from_db()
        assert entry.status == WaitlistEntry.Status.CANCELLED
    assert f'action="/waitlist/{entry.pk}/leave/"' not in client.get("/bookings/").content.decode()


def test_pages_waitlist_refused_while_places_are_free_and_needs_own_member(hospital_a):
    user, member = make_patient()
    _, stranger_member = make_patient("别人")
    with in_schema(hospital_a):
        _, schedule = make_session(day=_day(3))
    client = _client(user, english=True)
    r = client.post(f"/schedules/{schedule.pk}/waitlist/", {"family_member": member.pk})
    assert r.status_code == 409 and "book one instead" in _alert(r.content.decode())
    bad = client.post(f"/schedules/{schedule.pk}/waitlist/",
                      {"family_member": stranger_member.pk})
    assert bad.status_code == 400
    assert client.post("/schedules/999999/waitlist/", {"family_member": member.pk}
                       ).status_code == 404
    with in_schema(hospital_a):
        assert not WaitlistEntry.objects.filter(schedule=schedule).exists()
