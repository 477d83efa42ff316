"""Races that must never lose or duplicate a place or money (threads on real connections)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from payments import services as pay
from payments.models import Order, Refund
from payments.providers.base import Notice
from registration.errors import SlotSoldOut
from registration.models import Booking, TimeSlice
from registration.services import booking as svc
from tests.registration.helpers import make_patient, make_session


def _run_together(*fns):
    barrier = threading.Barrier(len(fns))
    errors: list[BaseException] = []
    hospital = connection.tenant

    def wrap(fn):
        def run():
            connection.set_tenant(hospital)
            barrier.wait()
            try:
                fn()
            except BaseException as exc:  # collected and asserted on below
                errors.append(exc)
            finally:
                connection.close()
        return run

    threads = [threading.Thread(target=wrap(fn)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.fixture
def alpha(committed_hospital_a):
    hospital = committed_hospital_a
    connection.set_tenant(hospital)
    yield hospital
    connection.set_schema_to_public()


def test_race_cancel_against_booking_never_loses_or_duplicates_a_place(alpha):
    """Slice of 1 place, held by A. A cancels while B books, many rounds: places add up."""
    for round_ in range(10):
        _, schedule = make_session(capacity=1, slices=1, name=f"竞态医生{round_}",
                                   day=timezone.localdate() + timedelta(days=3))
        slice_id = TimeSlice.objects.get(schedule=schedule).pk
        ua, ma = make_patient("甲")
        ub, mb = make_patient("乙")
        held = svc.booking_hold(slice_id=slice_id, family_member=ma, account=ua)
        outcome = {}

        def cancel():
            svc.booking_cancel(booking=held, actor=ua)

        def book():
            try:
                outcome["b"] = svc.booking_hold(slice_id=slice_id, family_member=mb, account=ub)
            except SlotSoldOut:
                outcome["b"] = None

        assert _run_together(cancel, book) == []
        connection.set_tenant(alpha)
        active = Booking.objects.filter(slice_id=slice_id, status__in=Booking.ACTIVE).count()
        booked = TimeSlice.objects.get(pk=slice_id).booked
        assert booked == active  # the counter and the bookings agree
        assert active == (1 if outcome["b"] else 0)


def test_race_expiry_against_payment_ends_confirmed_or_refunded(alpha, sandbox, catcher):
    """Hold expiry and the payment callback at the same instant: exactly one story wins."""
    outcomes = []
    for round_ in range(8):
        _, schedule = make_session(capacity=2, slices=1, name=f"支付竞态{round_}")
        slice_id = TimeSlice.objects.get(schedule=schedule).pk
        user, member = make_patient("付款")
        held = svc.booking_hold(slice_id=slice_id, family_member=member, account=user)
        Order.objects.filter(pk=held.order_id).update(notify_url=catcher.url)
        Booking.objects.filter(pk=held.pk).update(hold_expires_at=timezone.now() - timedelta(1))
        notice = Notice(notification_id=f"race-{held.order.out_trade_no}", kind="payment",
                        out_trade_no=held.order.out_trade_no, status="paid", amount_fen=2000,
                        currency="CNY", provider_txn_id=f"RACE{round_}")
        # Make the sandbox know the order so an automatic refund can be submitted.
        pay.provider_for().create_payment(pay.PaymentRequest(
            out_trade_no=held.order.out_trade_no, amount_fen=2000, description="race",
            notify_url=catcher.url, return_url="", expires_at=timezone.now() + timedelta(hours=1)))
        from tests.payments.helpers import sandbox_hook

        sandbox_hook(sandbox, "/_test/pay", {"mchid": "sbx_alpha",
                                             "out_trade_no": held.order.out_trade_no})
        errors = _run_together(lambda: svc.booking_expire(booking_id=held.pk),
                               lambda: pay.notice_apply(provider="sandbox", notice=notice))
        assert errors == []
        connection.set_tenant(alpha)
        booking = Booking.objects.get(pk=held.pk)
        order = Order.objects.get(pk=held.order_id)
        refunds = Refund.objects.filter(order=order).count()
        if booking.status == Booking.Status.CONFIRMED:
            assert (order.status, refunds) == ("paid", 0)
            assert TimeSlice.objects.get(pk=slice_id).booked == 1
        else:
            assert booking.status == Booking.Status.EXPIRED
            assert refunds == 1 and order.status in ("paid", "refunded")
            assert TimeSlice.objects.get(pk=slice_id).booked == 0
        outcomes.append(booking.status)
    assert set(outcomes) <= {"confirmed", "expired"}


@pytest.mark.worker
def test_worker_releases_expired_hold(celery_worker, alpha):
    """The expiry task scheduled at hold time runs in a real worker and frees the place."""
    _, schedule = make_session(capacity=1, slices=1, name="过期医生")
    slice_id = TimeSlice.objects.get(schedule=schedule).pk
    user, member = make_patient("未付款")
    held = svc.booking_hold(slice_id=slice_id, family_member=member, account=user)
    soon = timezone.now() + timedelta(seconds=2)
    Booking.objects.filter(pk=held.pk).update(hold_expires_at=soon)
    svc._schedule_expiry(held.pk, soon)  # what booking_hold schedules on commit, 2 s from now
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if Booking.objects.get(pk=held.pk).status == Booking.Status.EXPIRED:
            break
        time.sleep(0.2)
    assert Booking.objects.get(pk=held.pk).status == Booking.Status.EXPIRED
    assert TimeSlice.objects.get(pk=slice_id).booked == 0
    assert Order.objects.get(pk=held.order_id).status == Order.Status.CLOSED


def test_race_first_bookings_of_many_patients_get_distinct_record_numbers(alpha):
    """Many patients' first bookings at once: each gets a card, none fails, numbers unique."""
    from registration.models import PatientCard

    _, schedule = make_session(capacity=20, slices=1, name="首诊医生",
                               day=timezone.localdate() + timedelta(days=2))
    slice_id = TimeSlice.objects.get(schedule=schedule).pk
    patients = [make_patient(f"首诊{i}") for i in range(12)]
    fns = [lambda u=u, m=m: svc.booking_hold(slice_id=slice_id, family_member=m, account=u)
           for u, m in patients]
    assert _run_together(*fns) == []
    connection.set_tenant(alpha)
    numbers = list(PatientCard.objects.filter(
        family_member__in=[m for _, m in patients]).values_list("medical_record_number", flat=True))
    assert len(numbers) == len(set(numbers)) == 12


def test_race_identity_change_against_first_booking_never_leaves_a_card_on_a_changed_id(alpha):
    """The member's first card is being made (transaction still open) while the patient changes
    the member's ID number: the change waits for the card, sees it and is refused."""
    from django.core.exceptions import ValidationError
    from django.db import transaction

    from portal.accounts.models import FamilyMember
    from portal.accounts.services import family_member_update
    from registration.models import PatientCard
    from registration.services.patients import patient_card_create
    from tests.registration.helpers import valid_id

    _, member = make_patient("改号患者")
    original, new = member.id_number, valid_id("19850101")
    refused: list[bool] = []

    def first_booking():
        with transaction.atomic():
            patient_card_create(family_member=member)
            time.sleep(0.5)  # the booking's other work, the card not yet committed

    def change_id():
        time.sleep(0.15)
        try:
            family_member_update(member=FamilyMember.objects.get(pk=member.pk), name=member.name,
                                 relation=member.relation, id_number=new)
        except ValidationError as exc:
            refused.append(exc.error_dict["id_number"][0].code == "identity_locked")

    assert _run_together(first_booking, change_id) == []
    connection.set_tenant(alpha)
    assert PatientCard.objects.filter(family_member=member).exists()
    assert refused == [True]
    assert FamilyMember.objects.get(pk=member.pk).id_number == original



@pytest.mark.parametrize("other", ["stop_clinic", "patient_books_it"])
def test_race_waitlist_offer_does_not_deadlock(alpha, monkeypatch, other):
    """A place comes free and is being offered to the first patient waiting (their entry is
    locked, their hold not yet made) while staff stop the clinic, or while that same patient
    books the free place themselves: both finish, no deadlock, and the outcome adds up."""
    from portal.accounts.services import staff_grant
    from registration.models import WaitlistEntry
    from registration.services import schedules as schedules_svc
    from registration.services import waitlist as waitlist_svc

    _, schedule = make_session(capacity=1, slices=1, name=f"候补医生{other}",
                               day=timezone.localdate() + timedelta(days=3))
    slice_id = TimeSlice.objects.get(schedule=schedule).pk
    ua, ma = make_patient("占位")
    svc.booking_hold(slice_id=slice_id, family_member=ma, account=ua)
    uw, mw = make_patient("候补")
    waitlist_svc.waitlist_join(schedule=schedule, family_member=mw, account=uw)
    staff, _ = make_patient("挂号员")
    staff_grant(user=staff, hospital=alpha, role="registrar")
    TimeSlice.objects.filter(pk=slice_id).update(capacity=2)  # a place came free

    entry_locked, other_started = threading.Event(), threading.Event()
    real_hold = waitlist_svc.booking_hold

    def hold_once_the_other_is_under_way(**kwargs):
        entry_locked.set()  # the offer holds the entry's row lock now
        other_started.wait(10)
        time.sleep(0.5)  # let the other transaction take its first locks
        return real_hold(**kwargs)

    monkeypatch.setattr(waitlist_svc, "booking_hold", hold_once_the_other_is_under_way)

    def offer():
        waitlist_svc.waitlist_offer_next(schedule_id=schedule.pk)
        assert entry_locked.is_set()  # the offer reached the hold

    def the_other():
        entry_locked.wait(10)
        other_started.set()
        if other == "stop_clinic":
            schedules_svc.schedule_stop(schedule=schedule, reason="医生临时出差", actor=staff)
        else:
            svc.booking_hold(slice_id=slice_id, family_member=mw, account=uw)

    assert _run_together(offer, the_other) == []  # a deadlock would abort one of them
    connection.set_tenant(alpha)
    active = Booking.objects.filter(schedule=schedule, status__in=Booking.ACTIVE)
    waiting = WaitlistEntry.objects.filter(schedule=schedule, status=WaitlistEntry.Status.WAITING)
    if other == "stop_clinic":
        assert not active.exists() and not waiting.exists()
    else:  # the waiting patient got the place once, whichever way
        assert active.filter(family_member=mw).count() == 1
        assert TimeSlice.objects.get(pk=slice_id).booked == active.count() == 2
