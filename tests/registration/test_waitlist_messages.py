"""What a patient is told when a waitlisted place or a cancellation concerns a free session.

A free session's waitlist place is confirmed at once; its offer used to say "Please pay before
." (a blank time, and nothing to pay). A free booking's cancellation must not promise a refund.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from portal.notifications.messages import render
from portal.notifications.models import InboxMessage
from portal.notifications.services import outbox_deliver_now
from registration.models import Booking, TimeSlice
from registration.services import booking as svc
from registration.services import waitlist as waitlist_services
from tests.helpers import in_schema
from tests.registration.helpers import make_patient, make_session


def _free_session_with_a_waitlisted_patient(hospital):
    with in_schema(hospital):
        _, schedule = make_session(fee=0, capacity=1, slices=1,
                                   day=timezone.localdate() + timedelta(days=2))
        slice_ = TimeSlice.objects.get(schedule=schedule)
        u1, m1 = make_patient("先到")
        u2, m2 = make_patient("候补")
        first = svc.booking_hold(slice_id=slice_.pk, family_member=m1, account=u1)
        assert first.status == Booking.Status.CONFIRMED
        waitlist_services.waitlist_join(schedule=schedule, family_member=m2, account=u2)
        svc.booking_cancel(booking=first, actor=u1)
        # on_commit does not fire inside the test transaction: offer explicitly
        offered = waitlist_services.waitlist_offer_next(schedule_id=schedule.pk)
    return u1, u2, offered


def test_waitlist_offer_of_a_free_session_asks_for_no_payment(hospital_a):
    u1, u2, offered = _free_session_with_a_waitlisted_patient(hospital_a)
    assert offered.status == Booking.Status.CONFIRMED and offered.account_id == u2.pk
    outbox_deliver_now()
    body = InboxMessage.objects.get(user=u2, kind="waitlist_offer").body
    assert "支付" in body and "无需支付" in body and "前完成支付" not in body
    assert str(offered.queue_number) in body


def test_waitlist_offer_of_a_paid_session_keeps_the_deadline():
    context = {"doctor": "张医生", "day": "2026-12-02", "name": "李雷", "number": 2,
               "until": "09:15"}
    _, body = render("waitlist_offer", context, "zh-hans")
    assert "09:15 前完成支付" in body
    _, body = render("waitlist_offer", {**context, "until": ""}, "en")
    assert "nothing to pay" in body and "before" not in body


def test_waitlist_cancelled_free_booking_does_not_promise_a_refund(hospital_a):
    u1, _, _ = _free_session_with_a_waitlisted_patient(hospital_a)
    outbox_deliver_now()
    body = InboxMessage.objects.get(user=u1, kind="booking_cancelled").body
    assert "如已付费" in body and "已付费用将原路退回" not in body
