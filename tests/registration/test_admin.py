"""The registration desk in a hospital's admin: generate, stop clinic, check in, cancel with
refund; who may do it; hospital B never reaches A's rows; lists that do not grow in queries."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments.models import Order, Refund
from portal.accounts.models import User
from registration.models import (
    Booking,
    BookingBan,
    BookingEvent,
    Department,
    Doctor,
    Schedule,
    ScheduleTemplate,
    TimeSlice,
    TitleFee,
)
from registration.services import booking as svc
from registration.services import schedules as schedules_services
from registration.services.patients import patient_card_for
from registration.services.rules import doctor_fee_fen
from tests.helpers import host_client, in_schema, make_staff
from tests.registration.helpers import make_patient, make_session

SCHEDULES = "/admin/registration/schedule/"
BOOKINGS = "/admin/registration/booking/"
TEMPLATES = "/admin/registration/scheduletemplate/"


def _desk(hospital, role: str, host: str = "alpha.localhost"):
    """A staff member's admin client, in English so the reports can be read by the test."""
    user = make_staff(hospital, role)
    User.objects.filter(pk=user.pk).update(language="en")
    user.refresh_from_db()
    return user, host_client(host, user)


def _said(response) -> list[str]:
    """What the admin told the user (the page shown after the redirect shows, and so uses, them)."""
    return [str(m) for m in response.context["messages"]]


def _act(client, url: str, action: str, ids, **form):
    """Run an admin action the way the page does: choose it, then confirm its form (if any).
    Follows the redirect back to the list, where the report is shown."""
    data = {"action": action, "_selected_action": [str(i) for i in ids]}
    if form:
        data.update(apply="1", **form)
    return client.post(url, data, follow=True)


def _pay(booking: Booking, n: str) -> None:
    from payments import services as pay
    from payments.providers.base import Notice

    pay.notice_apply(provider="sandbox", notice=Notice(
        notification_id=f"adm-{n}", kind="payment", out_trade_no=booking.order.out_trade_no,
        status="paid", amount_fen=booking.fee_fen, currency="CNY", provider_txn_id=f"ADM{n}"))


def _first_slice(schedule) -> TimeSlice:
    return TimeSlice.objects.filter(schedule=schedule).order_by("start").first()


def _confirmed_booking_on(schedule, name: str = "到诊") -> Booking:
    """A confirmed booking written directly (booking_hold refuses slices already started)."""
    user, member = make_patient(name)
    return Booking.objects.create(
        slice=_first_slice(schedule), schedule=schedule, doctor=schedule.doctor,
        date=schedule.date, patient_card=patient_card_for(family_member=member),
        family_member=member, account=user, status=Booking.Status.CONFIRMED, queue_number=1,
        fee_fen=0, confirmed_at=timezone.now())


# --------------------------------------------------------------------------- generate


def test_admin_generate_schedules_twice_creates_nothing_twice(hospital_a):
    registrar, client = _desk(hospital_a, "registrar")
    with in_schema(hospital_a):
        doctor = Doctor.objects.create(department=Department.objects.get(code="cardiology"),
                                       name="模板医生", title="attending")
        ids = [ScheduleTemplate.objects.create(
            doctor=doctor, weekday=wd, period=p, start_time=start, end_time=end,
            slice_minutes=30, capacity_per_slice=4).pk
            for wd, p, start, end in [(0, "am", time(8), time(11)), (3, "pm", time(14), time(16))]]

    page = _act(client, TEMPLATES, "generate_schedules", ids)
    assert page.status_code == 200 and 'name="weeks"' in page.content.decode()
    too_many = _act(client, TEMPLATES, "generate_schedules", ids, weeks="13")
    assert not too_many.redirect_chain and 'name="weeks"' in too_many.content.decode()

    first = _act(client, TEMPLATES, "generate_schedules", ids, weeks="2")
    assert first.redirect_chain
    [report] = _said(first)
    assert report.startswith("Created 4 schedules: 模板医生 ")
    second = _act(client, TEMPLATES, "generate_schedules", ids, weeks="2")
    assert _said(second) == ["Nothing to create: all exist."]
    with in_schema(hospital_a):
        schedules = Schedule.objects.filter(doctor=doctor)
        assert schedules.count() == 4
        assert TimeSlice.objects.filter(schedule__in=schedules).count() == 2 * 6 + 2 * 4


# --------------------------------------------------------------------------- stop clinic


def test_admin_stop_clinic_cancels_refunds_with_reason(hospital_a, sandbox):
    registrar, client = _desk(hospital_a, "registrar")
    with in_schema(hospital_a):
        _, schedule = make_session(name="停诊医生")
        held = []
        for i in range(2):
            user, member = make_patient(f"停诊患者{i}")
            held.append(svc.booking_hold(slice_id=_first_slice(schedule).pk,
                                         family_member=member, account=user))
        _pay(held[0], f"stop-{held[0].pk}")  # one paid, one still awaiting payment

    assert 'name="reason"' in _act(client, SCHEDULES, "stop_clinic", [schedule.pk]).content.decode()
    refused = _act(client, SCHEDULES, "stop_clinic", [schedule.pk], reason="  ")
    assert not refused.redirect_chain  # a reason is required: the form again
    with in_schema(hospital_a):
        assert Schedule.objects.get(pk=schedule.pk).status == Schedule.Status.OPEN

    done = _act(client, SCHEDULES, "stop_clinic", [schedule.pk], reason="医生临时出差")
    assert done.redirect_chain
    assert _said(done) == ["Stopped 1 clinic: 2 bookings cancelled, 1 refunded (¥20.00)."]
    with in_schema(hospital_a):
        stopped = Schedule.objects.get(pk=schedule.pk)
        assert (stopped.status, stopped.stop_reason) == ("stopped", "医生临时出差")
        assert set(Booking.objects.filter(schedule=schedule).values_list("status", flat=True)) \
            == {"stopped"}
        refund = Refund.objects.get(order__booking__schedule=schedule)
        assert refund.order_id == held[0].order_id and refund.requested_by_id == registrar.pk
        assert Order.objects.get(pk=held[1].order_id).status == Order.Status.CLOSED
        assert BookingEvent.objects.filter(booking__schedule=schedule, action="stopped",
                                           actor=registrar).count() == 2
    again = _act(client, SCHEDULES, "stop_clinic", [schedule.pk], reason="again")
    assert "already stopped" in _said(again)[0]


# --------------------------------------------------------------------------- visit day


def test_admin_stop_clinic_from_the_schedules_own_page(hospital_a):
    _, client = _desk(hospital_a, "registrar")
    with in_schema(hospital_a):
        _, schedule = make_session(name="页面停诊")
    url = f"{SCHEDULES}{schedule.pk}/change/"
    page = client.get(url).content.decode()
    assert 'value="stop_clinic"' in page and "08:00–08:30" in page  # the action and the slices
    form = client.post(url, {"CHANGE_FORM-action": "stop_clinic",
                             "_selected_action": str(schedule.pk)})
    assert 'name="CHANGE_FORM-action"' in form.content.decode()  # posts back to this page
    r = client.post(url, {"CHANGE_FORM-action": "stop_clinic", "apply": "1",
                          "_selected_action": str(schedule.pk), "reason": "设备检修"},
                    follow=True)
    assert r.redirect_chain[0][0] == url
    assert _said(r) == ["Stopped 1 clinic: 0 bookings cancelled, 0 refunded (¥0.00)."]
    with in_schema(hospital_a):
        assert Schedule.objects.get(pk=schedule.pk).stop_reason == "设备检修"


def test_admin_check_in_todays_confirmed_booking(hospital_a):
    registrar, client = _desk(hospital_a, "registrar")
    with in_schema(hospital_a):
        _, today = make_session(day=timezone.localdate(), fee=0, name="今日医生")
        arrived = _confirmed_booking_on(today)
        _, tomorrow = make_session(fee=0, name="明日医生")
        user, member = make_patient("明天来")
        early = svc.booking_hold(slice_id=_first_slice(tomorrow).pk, family_member=member,
                                 account=user)
        assert early.status == Booking.Status.CONFIRMED

    r = _act(client, BOOKINGS, "check_in", [arrived.pk, early.pk])
    said = _said(r)
    assert "Checked in 1 booking." in said
    assert any("only possible on the day of the visit" in m for m in said)  # refusal per row
    with in_schema(hospital_a):
        arrived.refresh_from_db()
        early.refresh_from_db()
        assert arrived.status == Booking.Status.CHECKED_IN and arrived.checked_in_at
        assert early.status == Booking.Status.CONFIRMED
        assert BookingEvent.objects.get(booking=arrived, action="checked_in").actor == registrar


def test_admin_check_in_from_the_bookings_own_page(hospital_a):
    """Django 6.1 change-form actions: the desk can act on the booking it is looking at."""
    registrar, client = _desk(hospital_a, "registrar")
    with in_schema(hospital_a):
        _, today = make_session(day=timezone.localdate(), fee=0, name="页面医生")
        b = _confirmed_booking_on(today)
    url = f"{BOOKINGS}{b.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="CHANGE_FORM-action"' in page and "Audit trail" in page
    r = client.post(url, {"CHANGE_FORM-action": "check_in", "_selected_action": str(b.pk)},
                    follow=True)
    assert r.redirect_chain[0][0] == url and _said(r) == ["Checked in 1 booking."]
    with in_schema(hospital_a):
        assert Booking.objects.get(pk=b.pk).status == Booking.Status.CHECKED_IN


def test_admin_cancel_with_refund(hospital_a, sandbox):
    registrar, client = _desk(hospital_a, "registrar")
    with in_schema(hospital_a):
        _, schedule = make_session(day=timezone.localdate() + timedelta(days=3), name="退号医生")
        first = _first_slice(schedule)
        bookings = []
        for i in range(3):
            user, member = make_patient(f"退号{i}")
            bookings.append(svc.booking_hold(slice_id=first.pk, family_member=member,
                                             account=user))
        paid, unpaid, gone = bookings
        _pay(paid, f"cancel-{paid.pk}")
        svc.booking_cancel(booking=gone, actor=gone.account)  # the patient cancelled already

    ids = [b.pk for b in bookings]
    assert 'name="reason"' in _act(client, BOOKINGS, "cancel_with_refund", ids).content.decode()
    r = _act(client, BOOKINGS, "cancel_with_refund", ids, reason="患者来电取消")
    said = _said(r)
    assert "Cancelled 2 bookings, 1 refunded (¥20.00)." in said
    assert any("no longer active" in m for m in said)  # the third, reported, not fatal
    with in_schema(hospital_a):
        for b in (paid, unpaid):
            b.refresh_from_db()
            assert (b.status, b.cancel_reason) == (Booking.Status.CANCELLED, "患者来电取消")
        refund = Refund.objects.get(order_id=paid.order_id)
        assert refund.reason == "患者来电取消" and refund.amount_fen == 2000
        assert Order.objects.get(pk=unpaid.order_id).status == Order.Status.CLOSED
        assert TimeSlice.objects.get(pk=first.pk).booked == 0
        assert BookingEvent.objects.get(booking=paid, action="cancelled").source == "staff"


# --------------------------------------------------------------------------- who may


def test_admin_finance_views_bookings_but_cannot_act(hospital_a):
    finance, client = _desk(hospital_a, "finance")
    with in_schema(hospital_a):
        _, today = make_session(day=timezone.localdate(), fee=0, name="财务看的医生")
        b = _confirmed_booking_on(today)
        _, future = make_session(name="财务停不了")
        template = ScheduleTemplate.objects.create(
            doctor=future.doctor, weekday=1, period="am", start_time=time(8),
            end_time=time(9), slice_minutes=30, capacity_per_slice=2)

    listing = client.get(BOOKINGS)
    assert listing.status_code == 200
    assert 'value="check_in"' not in listing.content.decode()
    page = client.get(f"{BOOKINGS}{b.pk}/change/").content.decode()
    assert "Audit trail" in page and 'name="CHANGE_FORM-action"' not in page
    _act(client, BOOKINGS, "check_in", [b.pk])
    client.post(f"{BOOKINGS}{b.pk}/change/",
                {"CHANGE_FORM-action": "check_in", "_selected_action": str(b.pk)})
    _act(client, BOOKINGS, "cancel_with_refund", [b.pk], reason="财务取消")
    assert _act(client, SCHEDULES, "stop_clinic", [future.pk], reason="x").status_code == 403
    assert _act(client, TEMPLATES, "generate_schedules", [template.pk],
                weeks="1").status_code == 403
    with in_schema(hospital_a):
        assert Booking.objects.get(pk=b.pk).status == Booking.Status.CONFIRMED
        assert Schedule.objects.get(pk=future.pk).status == Schedule.Status.OPEN
        assert not Schedule.objects.filter(template=template).exists()


def test_admin_registrar_sees_desk_models_doctor_sees_none(hospital_a):
    _, registrar = _desk(hospital_a, "registrar")
    _, doctor = _desk(hospital_a, "doctor")
    for url in (SCHEDULES, BOOKINGS, TEMPLATES, "/admin/registration/doctor/",
                "/admin/registration/titlefee/", "/admin/registration/waitlistentry/",
                "/admin/registration/bookingban/", f"{SCHEDULES}add/"):
        assert registrar.get(url).status_code == 200, url
        assert doctor.get(url).status_code == 403, url


def test_admin_ban_lifted_by_hospital_admin_only(hospital_a):
    _, registrar = _desk(hospital_a, "registrar")
    _, admin = _desk(hospital_a, "admin")
    _, member = make_patient("爽约者")
    with in_schema(hospital_a):
        ban = BookingBan.objects.create(family_member=member, reason="3 次爽约",
                                        until=timezone.localdate() + timedelta(days=30))
    url = f"/admin/registration/bookingban/{ban.pk}/delete/"
    assert registrar.get("/admin/registration/bookingban/").status_code == 200
    assert registrar.post(url, {"post": "yes"}).status_code == 403
    assert admin.post(url, {"post": "yes"}).status_code == 302
    with in_schema(hospital_a):
        assert not BookingBan.objects.filter(pk=ban.pk).exists()


# --------------------------------------------------------------------------- isolation


def test_admin_b_sees_none_of_a_and_cannot_act_on_its_ids(hospital_a, hospital_b):
    _, client_b = _desk(hospital_b, "admin", host="beta.localhost")
    with in_schema(hospital_b):
        taken_b = {"schedule": set(Schedule.objects.values_list("pk", flat=True)),
                   "booking": set(Booking.objects.values_list("pk", flat=True))}
    with in_schema(hospital_a):
        # Ids are per schema: make sure A's rows have ids B does not use, so "not found" is
        # the only possible answer.
        while True:
            _, schedule = make_session(day=timezone.localdate(), fee=0, name="甲院独有医生")
            b = _confirmed_booking_on(schedule, "甲院患者")
            if schedule.pk not in taken_b["schedule"] and b.pk not in taken_b["booking"]:
                break

    for url in (SCHEDULES, BOOKINGS, TEMPLATES, "/admin/registration/doctor/"):
        page = client_b.get(url)
        assert page.status_code == 200 and "甲院独有医生" not in page.content.decode(), url
    for url in (f"{SCHEDULES}{schedule.pk}/change/", f"{BOOKINGS}{b.pk}/change/",
                f"/admin/registration/doctor/{schedule.doctor_id}/change/"):
        r = client_b.get(url)
        assert r.status_code in (302, 404), url
        if r.status_code == 302:
            assert r["Location"] == "/admin/"
    _act(client_b, SCHEDULES, "stop_clinic", [schedule.pk], reason="乙院乱停")
    _act(client_b, BOOKINGS, "check_in", [b.pk])
    with in_schema(hospital_a):
        assert Schedule.objects.get(pk=schedule.pk).status == Schedule.Status.OPEN
        assert Booking.objects.get(pk=b.pk).status == Booking.Status.CONFIRMED


# --------------------------------------------------------------------------- lists


def _schedules(doctor, n: int, offset: int = 0) -> None:
    for i in range(offset, offset + n):
        s = Schedule.objects.create(doctor=doctor, date=timezone.localdate() + timedelta(days=i),
                                    period="am", fee_fen=1500)
        schedules_services.slices_create(schedule=s, start_time=time(8), end_time=time(10), minutes=30,
                          capacity=3)


def _queries(client, url: str) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(url)
    assert r.status_code == 200
    return len(ctx.captured_queries), r


def test_admin_schedule_list_queries_do_not_grow_with_rows(hospital_a):
    _, client = _desk(hospital_a, "registrar")
    with in_schema(hospital_a):
        doctor = Doctor.objects.create(department=Department.objects.get(code="cardiology"),
                                       name="计数医生", title="chief")
        _schedules(doctor, 3)
        first = TimeSlice.objects.filter(schedule__doctor=doctor).order_by("start").first()
        TimeSlice.objects.filter(pk=first.pk).update(booked=2)
    url = f"{SCHEDULES}?doctor__id__exact={doctor.pk}"
    client.get(url)  # warm: session, content types
    n3, r3 = _queries(client, url)
    assert r3.context["cl"].result_count == 3
    row = r3.content.decode()
    assert 'class="field-fee">¥15.00<' in row
    assert 'class="field-capacity">12<' in row and 'class="field-remaining">10<' in row
    with in_schema(hospital_a):
        _schedules(doctor, 27, offset=3)
    n30, r30 = _queries(client, url)
    assert r30.context["cl"].result_count == 30
    assert n30 == n3, (n3, n30)


def test_admin_booking_list_masks_ids_and_queries_do_not_grow(hospital_a):
    _, client = _desk(hospital_a, "registrar")
    members = []
    with in_schema(hospital_a):
        doctor, schedule = make_session(fee=0, capacity=10, slices=4, name="列表医生")
        slices = list(TimeSlice.objects.filter(schedule=schedule).order_by("start"))

        def book(n):
            for _ in range(n):
                user, member = make_patient(f"列表{len(members)}")
                members.append(member)
                svc.booking_hold(slice_id=slices[len(members) % 4].pk, family_member=member,
                                 account=user)

        book(3)
    url = f"{BOOKINGS}?doctor__id__exact={doctor.pk}"
    client.get(url)
    n3, r3 = _queries(client, url)
    page = r3.content.decode()
    assert members[0].masked_id_number in page and members[0].id_number not in page
    with in_schema(hospital_a):
        book(27)
    n30, r30 = _queries(client, url)
    assert r30.context["cl"].result_count == 30 and n30 == n3
    found = client.get(BOOKINGS, {"q": members[5].name})
    assert found.context["cl"].result_count == 1


# --------------------------------------------------------------------------- catalogue


def test_admin_manual_schedule_gets_slices_and_fee(hospital_a):
    _, client = _desk(hospital_a, "registrar")
    with in_schema(hospital_a):
        doctor = Doctor.objects.create(department=Department.objects.get(code="cardiology"),
                                       name="加诊医生", title="associate")
        fee = TitleFee.objects.get(title="associate").fee_fen
    day = (timezone.localdate() + timedelta(days=2)).isoformat()
    data = {"doctor": doctor.pk, "date": day, "period": "pm", "start_time": "14:00",
            "end_time": "16:00", "slice_minutes": "30", "capacity": "6", "fee": ""}
    r = client.post(f"{SCHEDULES}add/", data)
    assert r.status_code == 302, r.content.decode()[:3000]
    with in_schema(hospital_a):
        s = Schedule.objects.get(doctor=doctor, period="pm")
        assert s.fee_fen == fee
        assert list(TimeSlice.objects.filter(schedule=s).values_list("capacity", "queue_base")
                    .order_by("start")) == [(6, 1), (6, 7), (6, 13), (6, 19)]
    again = client.post(f"{SCHEDULES}add/", data)
    assert again.status_code == 200  # one session per doctor, day and period
    evening = client.post(f"{SCHEDULES}add/", {**data, "period": "evening", "fee": "15.5",
                                               "start_time": "18:00", "end_time": "17:00"})
    assert evening.status_code == 200  # ends before it starts
    evening = client.post(f"{SCHEDULES}add/", {**data, "period": "evening", "fee": "15.5",
                                               "start_time": "18:00", "end_time": "19:00"})
    assert evening.status_code == 302
    with in_schema(hospital_a):
        assert Schedule.objects.get(doctor=doctor, period="evening").fee_fen == 1550


def test_admin_doctor_fee_override_in_yuan(hospital_a):
    _, client = _desk(hospital_a, "registrar")
    with in_schema(hospital_a):
        cardiology = Department.objects.get(code="cardiology")
        doctor = Doctor.objects.create(department=cardiology, name="特需医生", title="chief")
    url = f"/admin/registration/doctor/{doctor.pk}/change/"
    data = {"department": cardiology.pk, "name": "特需医生", "name_en": "", "title": "chief",
            "fee_override": "35.50", "specialties": "", "intro": "", "photo_url": "",
            "account": "", "is_active": "on", "sort_order": "0",
            "templates-TOTAL_FORMS": "1", "templates-INITIAL_FORMS": "0",
            "templates-MIN_NUM_FORMS": "0", "templates-MAX_NUM_FORMS": "1000",
            "templates-0-weekday": "2", "templates-0-period": "am",
            "templates-0-start_time": "08:00", "templates-0-end_time": "11:00",
            "templates-0-slice_minutes": "30", "templates-0-capacity_per_slice": "5",
            "templates-0-is_active": "on"}
    r = client.post(url, data)
    assert r.status_code == 302, r.content.decode()[:3000]
    with in_schema(hospital_a):
        doctor.refresh_from_db()
        assert doctor.fee_override_fen == 3550 and doctor_fee_fen(doctor) == 3550
        assert doctor.templates.get().weekday == 2
    listing = client.get("/admin/registration/doctor/", {"q": "特需医生"}).content.decode()
    assert "¥35.50" in listing
    assert client.post(url, {**data, "fee_override": "12.345"}).status_code == 200


@pytest.mark.parametrize("override, expected", [(None, 5000), (0, 0), (1234, 1234)])
def test_admin_effective_fee_column_matches_service(hospital_a, override, expected):
    from registration.services.rules import doctor_fee_fen_expression as _effective_fee_fen

    with in_schema(hospital_a):
        doctor = Doctor.objects.create(department=Department.objects.get(code="cardiology"),
                                       name="费用医生", title="chief", fee_override_fen=override)
        shown = Doctor.objects.annotate(f=_effective_fee_fen()).get(pk=doctor.pk).f
        assert shown == doctor_fee_fen(doctor) == expected

