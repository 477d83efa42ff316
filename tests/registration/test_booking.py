"""Booking rules, holds, payment, expiry, cancellation, waitlist, stop-clinic, no-shows."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from payments.models import Order, Refund
from portal.notifications.models import InboxMessage
from portal.notifications.services import outbox_deliver_now
from registration.errors import (
    BookingError,
    CancelTooLate,
    NotCancellable,
    PatientBanned,
    SlotSoldOut,
    WaitlistNotAvailable,
)
from registration.models import Booking, BookingBan, Schedule, TimeSlice, WaitlistEntry
from registration.services import booking as svc
from registration.services import schedules as schedules_services
from registration.services import waitlist as waitlist_services
from registration.services.rules import release_moment
from tests.helpers import in_schema
from tests.registration.helpers import make_patient, make_session


def _slices(schedule):
    return list(TimeSlice.objects.filter(schedule=schedule).order_by("start"))


def test_booking_paid_schedule_starts_as_hold_with_order(hospital_a, session_a):
    user, member = make_patient()
    with in_schema(hospital_a):
        _, schedule = session_a
        first = _slices(schedule)[0]
        b = svc.booking_hold(slice_id=first.pk, family_member=member, account=user)
        assert b.status == Booking.Status.HELD and b.queue_number == 1
        assert b.order.self_pay_fen == 2000 and b.order.kind == "registration"
        assert b.hold_expires_at - timezone.now() > timedelta(minutes=14)
        assert TimeSlice.objects.get(pk=first.pk).booked == 1
        assert b.patient_card.family_member_id == member.pk


def test_booking_order_description_is_in_the_hospitals_language(hospital_a, session_a):
    """The order is a record finance lists and the provider shows on its bill: a patient browsing
    in English used to leave "Registration: 张医生 ... #1" among the "挂号：... 第 1 号"."""
    from django.utils import translation

    user, member = make_patient()
    with in_schema(hospital_a), translation.override("en"):
        _, schedule = session_a
        b = svc.booking_hold(slice_id=_slices(schedule)[0].pk, family_member=member, account=user)
        assert b.order.description == f"挂号：张医生 {schedule.date.isoformat()} 第 1 号"


def test_booking_free_schedule_confirms_without_payment(hospital_a):
    user, member = make_patient()
    with in_schema(hospital_a):
        _, schedule = make_session(fee=0, name="义诊医生")
        b = svc.booking_hold(slice_id=_slices(schedule)[0].pk, family_member=member, account=user)
        assert (b.status, b.order) == (Booking.Status.CONFIRMED, None)


def test_booking_queue_numbers_follow_slices(hospital_a, session_a):
    with in_schema(hospital_a):
        _, schedule = session_a
        second = _slices(schedule)[1]
        numbers = []
        for _ in range(3):
            user, member = make_patient()
            numbers.append(svc.booking_hold(slice_id=second.pk, family_member=member,
                                            account=user).queue_number)
        assert numbers == [6, 7, 8]  # slice 2 of capacity 5 starts at 6


def test_booking_paid_confirms_hold(hospital_a, session_a):
    from payments import services as pay
    from payments.providers.base import Notice

    user, member = make_patient()
    with in_schema(hospital_a):
        b = svc.booking_hold(slice_id=_slices(session_a[1])[0].pk, family_member=member,
                             account=user)
        pay.notice_apply(provider="sandbox", notice=Notice(
            notification_id="n1", kind="payment", out_trade_no=b.order.out_trade_no,
            status="paid", amount_fen=2000, currency="CNY", provider_txn_id="T1"))
        b.refresh_from_db()
        assert b.status == Booking.Status.CONFIRMED and b.confirmed_at


@pytest.mark.parametrize("rule", ["limit", "duplicate", "banned", "stopped", "not_released",
                                  "past", "not_yours"])
def test_booking_rules_refuse_with_clear_code(hospital_a, rule):
    user, member = make_patient()
    with in_schema(hospital_a):
        _, schedule = make_session()
        target = _slices(schedule)[0]
        expected = {"limit": "booking_limit_reached", "duplicate": "duplicate_booking",
                    "banned": "patient_banned", "stopped": "schedule_stopped",
                    "not_released": "not_yet_released", "past": "slot_in_the_past",
                    "not_yours": "not_your_patient"}[rule]
        account = user
        if rule == "limit":
            for i in range(3):  # default max 3 active bookings
                _, other = make_session(name=f"医生{i}")
                svc.booking_hold(slice_id=_slices(other)[0].pk, family_member=member, account=user)
        elif rule == "duplicate":
            svc.booking_hold(slice_id=_slices(schedule)[1].pk, family_member=member, account=user)
        elif rule == "banned":
            BookingBan.objects.create(family_member=member, reason="3 次爽约",
                                      until=timezone.localdate() + timedelta(days=30))
        elif rule == "stopped":
            Schedule.objects.filter(pk=schedule.pk).update(status="stopped")
        elif rule == "not_released":
            _, far = make_session(day=timezone.localdate() + timedelta(days=8), name="远期医生")
            target = _slices(far)[0]
        elif rule == "past":
            _, today = make_session(day=timezone.localdate() - timedelta(days=1), name="昨日医生")
            target = _slices(today)[0]
        elif rule == "not_yours":
            account, _ = make_patient("别人")
        before = Booking.objects.count()
        with pytest.raises(BookingError) as exc:
            svc.booking_hold(slice_id=target.pk, family_member=member, account=account)
        assert exc.value.code == expected and exc.value.message
        assert Booking.objects.count() == before
        assert TimeSlice.objects.get(pk=target.pk).booked == 0


def test_booking_release_time_opens_last_day_of_window(hospital_a):
    with in_schema(hospital_a):
        day = timezone.localdate() + timedelta(days=7)
        opens = release_moment(day)
        assert timezone.localtime(opens).date() == timezone.localdate()
        assert (opens.hour, opens.minute) == (8, 0)


def test_booking_sold_out_slice_refuses(hospital_a):
    with in_schema(hospital_a):
        _, schedule = make_session(capacity=1)
        s = _slices(schedule)[0]
        u1, m1 = make_patient()
        u2, m2 = make_patient()
        svc.booking_hold(slice_id=s.pk, family_member=m1, account=u1)
        with pytest.raises(SlotSoldOut):
            svc.booking_hold(slice_id=s.pk, family_member=m2, account=u2)


def test_booking_hold_with_loaded_slice_refuses_full_without_queries(hospital_a):
    from django.test.utils import CaptureQueriesContext

    with in_schema(hospital_a):
        _, schedule = make_session(capacity=1)
        s = _slices(schedule)[0]
        u1, m1 = make_patient()
        u2, m2 = make_patient()
        svc.booking_hold(slice_id=s.pk, family_member=m1, account=u1)
        loaded = TimeSlice.objects.select_related("schedule__doctor").get(pk=s.pk)
        with CaptureQueriesContext(connection) as ctx, pytest.raises(SlotSoldOut):
            svc.booking_hold(slice_id=s.pk, family_member=m2, account=u2, time_slice=loaded)
        assert ctx.captured_queries == []  # no lock, no transaction


def test_booking_hold_with_stale_loaded_slice_still_decided_by_update(hospital_a):
    with in_schema(hospital_a):
        _, schedule = make_session(capacity=1)
        s = _slices(schedule)[0]
        stale = TimeSlice.objects.select_related("schedule__doctor").get(pk=s.pk)  # booked 0
        u1, m1 = make_patient()
        u2, m2 = make_patient()
        svc.booking_hold(slice_id=s.pk, family_member=m1, account=u1)
        with pytest.raises(SlotSoldOut):
            svc.booking_hold(slice_id=s.pk, family_member=m2, account=u2, time_slice=stale)
        assert TimeSlice.objects.get(pk=s.pk).booked == 1
        assert Booking.objects.filter(slice_id=s.pk).count() == 1
        other = _slices(schedule)[1]
        with pytest.raises(ValueError):
            svc.booking_hold(slice_id=other.pk, family_member=m2, account=u2, time_slice=stale)


def test_booking_expiry_releases_place_closes_order_and_offers_waitlist(hospital_a):
    with in_schema(hospital_a):
        _, schedule = make_session(capacity=1, slices=1)
        s = _slices(schedule)[0]
        u1, m1 = make_patient("甲")
        u2, m2 = make_patient("乙")
        held = svc.booking_hold(slice_id=s.pk, family_member=m1, account=u1)
        entry = waitlist_services.waitlist_join(schedule=schedule, family_member=m2, account=u2)
        Booking.objects.filter(pk=held.pk).update(hold_expires_at=timezone.now() - timedelta(1))
        assert svc.booking_expire(booking_id=held.pk) is True
        assert svc.booking_expire(booking_id=held.pk) is False  # idempotent
        held.refresh_from_db()
        assert held.status == Booking.Status.EXPIRED
        assert Order.objects.get(pk=held.order_id).status == Order.Status.CLOSED
        # on_commit does not fire inside the test transaction: offer explicitly
        offered = waitlist_services.waitlist_offer_next(schedule_id=schedule.pk)
        entry.refresh_from_db()
        assert entry.status == WaitlistEntry.Status.OFFERED and entry.booking == offered
        assert offered.family_member_id == m2.pk and offered.status == Booking.Status.HELD
        assert TimeSlice.objects.get(pk=s.pk).booked == 1
    outbox_deliver_now()  # what the workers do after commit
    assert InboxMessage.objects.filter(user=u2, kind="waitlist_offer").count() == 1


def test_booking_waitlist_only_when_full(hospital_a, session_a):
    user, member = make_patient()
    with in_schema(hospital_a):
        with pytest.raises(WaitlistNotAvailable):
            waitlist_services.waitlist_join(schedule=session_a[1], family_member=member, account=user)


def test_booking_cancel_before_cutoff_closes_unpaid_order(hospital_a):
    user, member = make_patient()
    with in_schema(hospital_a):
        _, schedule = make_session(day=timezone.localdate() + timedelta(days=3))
        b = svc.booking_hold(slice_id=_slices(schedule)[0].pk, family_member=member, account=user)
        svc.booking_cancel(booking=b, actor=user)
        b.refresh_from_db()
        assert b.status == Booking.Status.CANCELLED
        assert Order.objects.get(pk=b.order_id).status == Order.Status.CLOSED
        assert TimeSlice.objects.get(pk=b.slice_id).booked == 0


def test_booking_cancel_after_cutoff_refused(hospital_a):
    user, member = make_patient()
    with in_schema(hospital_a):
        _, schedule = make_session(day=timezone.localdate() + timedelta(days=1), fee=0)
        b = svc.booking_hold(slice_id=_slices(schedule)[0].pk, family_member=member, account=user)
        connection.tenant.cancel_cutoff_hour = 0  # cut-off: midnight today, already past
        try:
            with pytest.raises(CancelTooLate):
                svc.booking_cancel(booking=b, actor=user)
        finally:
            connection.tenant.cancel_cutoff_hour = 18
        assert Booking.objects.get(pk=b.pk).status == Booking.Status.CONFIRMED


def test_booking_no_shows_lead_to_ban(hospital_a):
    user, member = make_patient()
    with in_schema(hospital_a):
        for i in range(3):
            _, schedule = make_session(day=timezone.localdate() - timedelta(days=i + 1),
                                       name=f"旧医生{i}", fee=0)
            s = _slices(schedule)[0]
            Booking.objects.create(slice=s, schedule=schedule, doctor=schedule.doctor,
                                   date=schedule.date, patient_card=_card(member),
                                   family_member=member, account=user, status="confirmed",
                                   queue_number=1, fee_fen=0)
        assert svc.bookings_mark_no_shows() == 3
        ban = BookingBan.objects.get(family_member=member)
        assert ban.until == timezone.localdate() + timedelta(days=90)
        _, future = make_session(name="新医生")
        with pytest.raises(PatientBanned) as exc:
            svc.booking_hold(slice_id=_slices(future)[0].pk, family_member=member, account=user)
        assert "3" in exc.value.message


def _card(member):
    from registration.services.patients import patient_card_for

    return patient_card_for(family_member=member)


def test_schedule_generation_is_idempotent(hospital_a):
    from datetime import time

    from registration.models import Doctor, ScheduleTemplate

    with in_schema(hospital_a):
        doctor, _ = make_session(name="模板医生")
        ScheduleTemplate.objects.create(doctor=doctor, weekday=0, period="am",
                                        start_time=time(8), end_time=time(11, 30),
                                        slice_minutes=30, capacity_per_slice=4)
        ScheduleTemplate.objects.create(doctor=doctor, weekday=3, period="pm",
                                        start_time=time(14), end_time=time(17),
                                        slice_minutes=60, capacity_per_slice=10)
        qs = ScheduleTemplate.objects.filter(doctor=doctor)
        created = schedules_services.schedules_generate(weeks=2, templates=qs)
        assert len(created) == 4
        assert {TimeSlice.objects.filter(schedule=s).count() for s in created} == {7, 3}
        assert created[0].fee_fen == 2000  # attending title fee
        assert schedules_services.schedules_generate(weeks=2, templates=qs) == []
        assert Doctor.objects.get(pk=doctor.pk).schedules.count() == 5  # 4 + the fixture's


def test_stop_clinic_cancels_refunds_and_tells_everyone(hospital_a, sandbox, catcher, client_a):
    from payments import services as pay
    from payments.providers.base import Notice

    with in_schema(hospital_a):
        _, schedule = make_session()
        s = _slices(schedule)[0]
        users = []
        for i in range(3):
            user, member = make_patient(f"停诊{i}")
            b = svc.booking_hold(slice_id=s.pk, family_member=member, account=user)
            users.append(user)
            if i < 2:  # two paid, one still holding
                pay.notice_apply(provider="sandbox", notice=Notice(
                    notification_id=f"stop{i}", kind="payment", out_trade_no=b.order.out_trade_no,
                    status="paid", amount_fen=2000, currency="CNY", provider_txn_id=f"TS{i}"))
        staff = users[0]
        assert schedules_services.schedule_stop(schedule=schedule, reason="医生临时出差", actor=staff) == 3
        statuses = set(Booking.objects.filter(schedule=schedule).values_list("status", flat=True))
        assert statuses == {"stopped"}
        assert Refund.objects.filter(order__booking__schedule=schedule).count() == 2
        assert TimeSlice.objects.get(pk=s.pk).booked == 0
        assert schedules_services.schedule_stop(schedule=schedule, reason="again", actor=staff) == 0
    outbox_deliver_now()
    for i, user in enumerate(users):
        msg = InboxMessage.objects.get(user=user, kind__startswith="schedule_stopped")
        assert "医生临时出差" in msg.body
        assert ("退" in msg.body) == (i < 2)  # only the two who paid are told of a refund


def test_booking_forty_threads_race_for_ten_places(committed_hospital_a):
    """40 patients press the button at once for the last 10 places: exactly 10 get one."""

    if True:  # committed data: the threads use their own connections
        hospital = committed_hospital_a
        with in_schema(hospital):
            _, schedule = make_session(capacity=10, slices=1, name="抢号医生")
            slice_id = _slices(schedule)[0].pk
        patients = [make_patient(f"抢{i}") for i in range(40)]
        barrier = threading.Barrier(40)
        results: list[str] = []

        def attempt(user, member):
            connection.set_tenant(hospital)
            barrier.wait()
            try:
                svc.booking_hold(slice_id=slice_id, family_member=member, account=user)
                results.append("ok")
            except SlotSoldOut:
                results.append("sold_out")
            except Exception as exc:  # anything else is a bug
                results.append(repr(exc))
            finally:
                connection.close()

        threads = [threading.Thread(target=attempt, args=p) for p in patients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["ok"] * 10 + ["sold_out"] * 30
        with in_schema(hospital):
            assert TimeSlice.objects.get(pk=slice_id).booked == 10
            numbers = list(Booking.objects.filter(slice_id=slice_id).values_list(
                "queue_number", flat=True))
            assert sorted(numbers) == list(range(1, 11))


def test_stop_clinic_keeps_checked_in_and_refuses_past_days(hospital_a):
    with in_schema(hospital_a):
        _, today = make_session(day=timezone.localdate(), fee=0, name="今日医生")
        seen_user, seen = make_patient("已就诊")
        s = TimeSlice.objects.filter(schedule=today).order_by("start").last()
        TimeSlice.objects.filter(pk=s.pk).update(start=timezone.now() + timedelta(hours=1),
                                                 end=timezone.now() + timedelta(hours=2))
        b = svc.booking_hold(slice_id=s.pk, family_member=seen, account=seen_user)
        svc.booking_check_in(booking=b, actor=seen_user)
        assert schedules_services.schedule_stop(schedule=today, reason="突发情况", actor=seen_user) == 0
        assert Booking.objects.get(pk=b.pk).status == Booking.Status.CHECKED_IN
        with pytest.raises(NotCancellable):
            svc.booking_cancel(booking=b, actor=seen_user, source="staff")
        _, past = make_session(day=timezone.localdate() - timedelta(days=2), name="过去医生")
        with pytest.raises(BookingError) as exc:
            schedules_services.schedule_stop(schedule=past, reason="x", actor=seen_user)
        assert exc.value.code == "schedule_over"


def test_stop_clinic_unpaid_patient_is_not_promised_a_refund(hospital_a):
    with in_schema(hospital_a):
        _, schedule = make_session()
        user, member = make_patient("未付")
        svc.booking_hold(slice_id=_slices(schedule)[0].pk, family_member=member, account=user)
        schedules_services.schedule_stop(schedule=schedule, reason="设备检修", actor=user)
    outbox_deliver_now()
    body = InboxMessage.objects.get(user=user, kind="schedule_stopped").body
    assert "设备检修" in body and "退" not in body and "refund" not in body


def test_booking_hold_can_be_let_go_after_cutoff(hospital_a):
    user, member = make_patient()
    with in_schema(hospital_a):
        _, schedule = make_session(day=timezone.localdate() + timedelta(days=1))
        b = svc.booking_hold(slice_id=_slices(schedule)[0].pk, family_member=member, account=user)
        connection.tenant.cancel_cutoff_hour = 0
        try:
            svc.booking_cancel(booking=b, actor=user)  # unpaid: allowed whatever the hour
        finally:
            connection.tenant.cancel_cutoff_hour = 18
        assert Booking.objects.get(pk=b.pk).status == Booking.Status.CANCELLED


def test_booking_race_with_stop_clinic_leaves_no_active_booking(committed_hospital_a):
    """Bookings and a stop-clinic at the same instant: afterwards nothing is active."""

    hospital = committed_hospital_a
    connection.set_tenant(hospital)
    _, schedule = make_session(capacity=20, slices=1, name="停诊竞态",
                               day=timezone.localdate() + timedelta(days=2))
    slice_id = _slices(schedule)[0].pk
    patients = [make_patient(f"停{i}") for i in range(8)]
    staff = patients[0][0]
    barrier = threading.Barrier(9)

    def book(user, member):
        connection.set_tenant(hospital)
        barrier.wait()
        try:
            svc.booking_hold(slice_id=slice_id, family_member=member, account=user)
        except BookingError:
            pass
        finally:
            connection.close()

    def stop():
        connection.set_tenant(hospital)
        barrier.wait()
        try:
            schedules_services.schedule_stop(schedule=schedule, reason="竞态停诊", actor=staff)
        finally:
            connection.close()

    threads = [threading.Thread(target=book, args=p) for p in patients]
    threads.append(threading.Thread(target=stop))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    connection.set_tenant(hospital)
    assert not Booking.objects.filter(schedule=schedule, status__in=Booking.ACTIVE).exists()
    assert TimeSlice.objects.get(pk=slice_id).booked == 0


def test_hold_expiry_is_scheduled_once_per_time_bucket(hospital_a, monkeypatch):
    """Holds share one expiry task per EXPIRY_BUCKET_SECONDS, due just after the last of them."""
    import secrets
    from datetime import UTC, datetime

    from registration.tasks import bookings_expire_due_at_task

    sent = []
    monkeypatch.setattr(bookings_expire_due_at_task, "apply_async",
                        lambda *a, **kw: sent.append(kw["eta"]))
    monkeypatch.setattr(svc, "_scheduled_buckets", set())
    size = svc.EXPIRY_BUCKET_SECONDS
    start = datetime.fromtimestamp((10**9 + secrets.randbelow(10**8)) * size, tz=UTC)
    with in_schema(hospital_a):
        for booking_id, offset in [(1, 0.3), (2, size - 0.2), (3, size / 2)]:
            svc._schedule_expiry(booking_id, start + timedelta(seconds=offset))
        assert sent == [start + timedelta(seconds=size + 1)]  # after all three, within 1-3 s
        svc._schedule_expiry(4, start + timedelta(seconds=size + 0.1))  # the next bucket
        assert sent[1] == start + timedelta(seconds=2 * size + 1)
    assert len(sent) == 2


def test_expiry_task_releases_every_due_hold(hospital_a, session_a):
    from registration.tasks import bookings_expire_due_at_task

    with in_schema(hospital_a):
        _, schedule = session_a
        holds = [svc.booking_hold(slice_id=s.pk, family_member=m, account=u)
                 for s, (u, m) in zip(_slices(schedule)[:2], [make_patient(), make_patient()],
                                      strict=True)]
        Booking.objects.filter(pk__in=[h.pk for h in holds]).update(
            hold_expires_at=timezone.now() - timedelta(seconds=1))
        assert bookings_expire_due_at_task() >= 2
        assert set(Booking.objects.filter(pk__in=[h.pk for h in holds])
                   .values_list("status", flat=True)) == {Booking.Status.EXPIRED}
