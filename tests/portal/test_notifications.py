"""Outbox, relay and fan-out: written with the change, delivered once per channel."""

from __future__ import annotations

from django.db import transaction

from portal.dev.fake_sms import FakeSmsGateway
from portal.notifications.models import Delivery, InboxMessage, OutboxEvent
from portal.notifications.services import chunk_deliver, notify, outbox_deliver_now
from tests.helpers import make_user


def test_notify_is_part_of_the_callers_transaction(db, hospital_a):
    user = make_user()
    try:
        with transaction.atomic():
            notify(kind="announcement", hospital=hospital_a, recipients=[user],
                   context={"title": "t", "body": "b"})
            raise RuntimeError("the change fails")
    except RuntimeError:
        pass
    assert not OutboxEvent.objects.exists()  # no change, no message


def test_fan_out_delivers_once_per_channel_even_when_repeated(db, hospital_a, settings):
    gateway = FakeSmsGateway().start()
    settings.SMS_GATEWAY_URL = gateway.url
    try:
        users = [make_user(name=f"收件人{i}") for i in range(30)]
        event = notify(kind="announcement", hospital=hospital_a, recipients=users,
                       context={"title": "门诊通知", "body": "明日起门诊楼 3 楼装修"})
        ids = [u.pk for u in users]
        assert chunk_deliver(event_id=event.pk, user_ids=ids) == 60
        # a worker killed after sending but before acking runs the chunk again
        Delivery.objects.filter(event=event).update(status=Delivery.Status.PENDING)
        chunk_deliver(event_id=event.pk, user_ids=ids)
        assert InboxMessage.objects.filter(kind="announcement").count() == 30
        assert len(gateway.accepted) == 30 and gateway.duplicates == 30
        assert {m["to"] for m in gateway.accepted.values()} == {u.phone for u in users}
        assert "【门诊通知】" in next(iter(gateway.accepted.values()))["text"]
    finally:
        gateway.stop()


def test_sms_gateway_down_marks_failed_and_retry_sends_once(db, hospital_a, settings):
    gateway = FakeSmsGateway().start()
    settings.SMS_GATEWAY_URL = gateway.url
    gateway.fail_next = 1
    try:
        user = make_user()
        event = notify(kind="announcement", hospital=hospital_a, recipients=[user],
                       context={"title": "t", "body": "b"})
        try:
            chunk_deliver(event_id=event.pk, user_ids=[user.pk])
        except Exception:
            pass
        assert Delivery.objects.get(event=event, channel="sms").status == "failed"
        assert Delivery.objects.get(event=event, channel="inbox").status == "sent"
        chunk_deliver(event_id=event.pk, user_ids=[user.pk])
        assert Delivery.objects.get(event=event, channel="sms").status == "sent"
        assert len(gateway.accepted) == 1
    finally:
        gateway.stop()


def test_outbox_messages_render_in_the_recipients_language(db, hospital_a):
    zh, en = make_user(), make_user(language="en")
    notify(kind="booking_confirmed", hospital=hospital_a, recipients=[zh, en],
           context={"doctor": "张医生", "day": "2026-12-01", "name": "李雷", "number": 3,
                    "arrive": "07:30–08:00"})
    outbox_deliver_now()
    assert InboxMessage.objects.get(user=zh).title.startswith("预约成功")
    assert InboxMessage.objects.get(user=en).title.startswith("Booking confirmed")


def test_money_and_booking_events_reach_the_inbox(sandbox, catcher, hospital_a, client_a):
    """Held, confirmed, paid and cancelled each leave one message for the patient."""
    from datetime import timedelta

    from django.utils import timezone

    from payments import services as pay
    from payments.providers.base import Notice
    from registration.models import TimeSlice
    from registration.services import booking as svc
    from tests.helpers import in_schema
    from tests.registration.helpers import make_patient, make_session

    user, member = make_patient("通知患者")
    with in_schema(hospital_a):
        _, schedule = make_session(day=timezone.localdate() + timedelta(days=3))
        s = TimeSlice.objects.filter(schedule=schedule).first()
        b = svc.booking_hold(slice_id=s.pk, family_member=member, account=user)
        pay.notice_apply(provider="sandbox", notice=Notice(
            notification_id="ev1", kind="payment", out_trade_no=b.order.out_trade_no,
            status="paid", amount_fen=2000, currency="CNY", provider_txn_id="EV1"))
        b.refresh_from_db()
        svc.booking_cancel(booking=b, actor=user)
    outbox_deliver_now()
    kinds = sorted(InboxMessage.objects.filter(user=user).values_list("kind", flat=True))
    assert kinds == ["booking_cancelled", "booking_confirmed", "booking_held",
                     "payment_succeeded"]
    paid = InboxMessage.objects.get(user=user, kind="payment_succeeded")
    assert "¥20.00" in paid.title


def test_relays_are_queued_once_per_second_and_relay_every_waiting_event(db, hospital_a,
                                                                           monkeypatch):
    """Events committed in the same second share one relay task, due just after that second;
    it hands every waiting event to the workers."""
    import secrets
    from datetime import UTC, datetime

    from portal.notifications import services, tasks

    sent, chunks = [], []
    monkeypatch.setattr(tasks.relay_due, "apply_async", lambda *a, **kw: sent.append(kw["eta"]))
    monkeypatch.setattr(tasks.deliver_chunk, "delay", lambda *a: chunks.append(a))
    monkeypatch.setattr(services, "_relay_buckets", set())
    second = 10**9 + secrets.randbelow(10**8)
    for now in (second + 0.1, second + 0.9):
        monkeypatch.setattr(services.time, "time", lambda now=now: now)
        services._enqueue_relay(1)
    monkeypatch.setattr(services.time, "time", lambda: second + 1.2)
    services._enqueue_relay(2)
    monkeypatch.undo()
    assert sent == [datetime.fromtimestamp(second + 1.5, tz=UTC),
                    datetime.fromtimestamp(second + 2.5, tz=UTC)]

    monkeypatch.setattr(tasks.deliver_chunk, "delay", lambda *a: chunks.append(a))
    user = make_user()
    events = [notify(kind="announcement", hospital=hospital_a, recipients=[user],
                     context={"title": "t", "body": str(i)}) for i in range(3)]
    assert tasks.relay_due() >= 3
    assert not OutboxEvent.objects.filter(pk__in=[e.pk for e in events],
                                          relayed_at__isnull=True).exists()
    assert {c[0] for c in chunks} >= {e.pk for e in events}
