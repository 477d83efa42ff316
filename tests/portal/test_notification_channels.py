"""Email over a real local SMTP server, channel preferences, per-hospital templates, reminders."""

from __future__ import annotations

import smtplib
import socket
from datetime import datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.notifications.channels import (
    channel_preference_set,
    channel_preferences,
    email_message_id,
)
from portal.notifications.messages import render
from portal.notifications.models import (
    ChannelPreference,
    Delivery,
    InboxMessage,
    NotificationTemplate,
    OutboxEvent,
)
from portal.notifications.services import _channels_for, chunk_deliver, notify, outbox_deliver_now
from tests.helpers import in_schema, make_user

# --------------------------------------------------------------------------- a real SMTP server


class _Handler:
    def __init__(self):
        self.messages: list = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(settings):
    from aiosmtpd.controller import Controller

    handler = _Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                                    "OPTIONS": {"host": "127.0.0.1", "port": controller.port,
                                                "timeout": 5}}}
    try:
        yield handler
    finally:
        controller.stop()


def _announce(hospital, users, **context):
    context = context or {"title": "门诊通知", "body": "明日起门诊楼 3 楼装修"}
    return notify(kind="announcement", hospital=hospital, recipients=users, context=context)


def test_email_arrives_once_over_smtp_with_a_stable_message_id(db, hospital_a, smtp):
    user = make_user(name="王芳", email="wang@example.com")
    event = _announce(hospital_a, [user])
    assert chunk_deliver(event_id=event.pk, user_ids=[user.pk]) == 2  # inbox + email
    # the chunk redelivered (worker killed before acking): nothing is sent again
    assert chunk_deliver(event_id=event.pk, user_ids=[user.pk]) == 0
    assert len(smtp.messages) == 1
    rcpt, message = smtp.messages[0]
    assert rcpt == ["wang@example.com"]
    delivery = Delivery.objects.get(event=event, channel="email")
    assert delivery.status == "sent" and delivery.sent_at
    assert message["Message-ID"] == email_message_id(delivery.dedupe_key)
    assert str(make_header(decode_header(message["Subject"]))) == "门诊通知"
    assert "3 楼装修" in message.get_payload(decode=True).decode()


def test_email_only_for_accounts_with_an_address_and_email_on(db, hospital_a, smtp):
    with_mail = make_user(email="a@example.com")
    turned_off = make_user(email="b@example.com")
    no_address = make_user()
    channel_preference_set(user=turned_off, channel="email", enabled=False)
    event = _announce(hospital_a, [with_mail, turned_off, no_address])
    outbox_deliver_now()
    assert [r for r, _m in smtp.messages] == [["a@example.com"]]
    assert set(Delivery.objects.filter(event=event, channel="email")
               .values_list("user_id", flat=True)) == {with_mail.pk}
    assert InboxMessage.objects.filter(kind="announcement").count() == 3  # inbox always on


def test_email_failure_part_way_retries_only_the_rest(db, hospital_a, smtp):
    first, second = make_user(email="ok@example.com"), make_user(email="later@example.com")
    smtp.refuse.add("later@example.com")
    event = _announce(hospital_a, [first, second])
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        chunk_deliver(event_id=event.pk, user_ids=[first.pk, second.pk])
    status = dict(Delivery.objects.filter(event=event, channel="email")
                  .values_list("user_id", "status"))
    assert status[first.pk] == "sent"
    assert status[second.pk] == "failed"
    smtp.refuse.clear()
    chunk_deliver(event_id=event.pk, user_ids=[first.pk, second.pk])  # the task's retry
    assert sorted(r[0] for r, _m in smtp.messages) == ["later@example.com", "ok@example.com"]


def test_messages_never_carry_a_full_id_number(db):
    title, body = render("announcement", {"title": "t", "body": "证件 11010119900307123X 已核验"},
                         "zh-hans")
    assert "11010119900307123X" not in body and "110101********123X" in body


# --------------------------------------------------------------------------- preferences


def test_preferences_service_and_channels(db, settings):
    settings.SMS_GATEWAY_URL = "http://127.0.0.1:9"
    user = make_user(email="p@example.com")
    assert channel_preferences(user=user) == {"sms": True, "email": True}
    assert _channels_for([user])[user.pk] == ["inbox", "sms", "email"]
    channel_preference_set(user=user, channel="sms", enabled=False)
    assert _channels_for([user])[user.pk] == ["inbox", "email"]
    channel_preference_set(user=user, channel="sms", enabled=True)
    channel_preference_set(user=user, channel="email", enabled=False)
    assert _channels_for([user])[user.pk] == ["inbox", "sms"]
    assert ChannelPreference.objects.filter(user=user).count() == 2
    with pytest.raises(ValueError):
        channel_preference_set(user=user, channel="inbox", enabled=False)


@pytest.mark.parametrize("client_fixture", ["platform_client", "client_a"])
def test_preferences_page_on_both_hosts(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    user = make_user(email="page@example.com")
    assert client.get("/inbox/preferences/").status_code == 302  # login first
    client.force_login(user)
    assert "/inbox/preferences/" in client.get("/inbox/").content.decode()  # linked
    page = client.get("/inbox/preferences/")
    assert page.status_code == 200
    assert 'name="sms" checked' in page.content.decode()
    response = client.post("/inbox/preferences/", {"email": "on"})  # SMS unticked
    assert response.status_code == 302
    assert channel_preferences(user=user) == {"sms": False, "email": True}
    assert 'name="sms" checked' not in client.get("/inbox/preferences/").content.decode()


# --------------------------------------------------------------------------- templates


def test_template_rejects_unknown_placeholders_clearly(hospital_a):
    with pytest.raises(ValidationError) as caught:
        NotificationTemplate.objects.create(
            hospital=hospital_a, kind="booking_confirmed", language="en",
            title="Booked: %(doctor)s", body="Dear %(patient)s, number %(number)s")
    assert "%(patient)s" in str(caught.value) and "%(name)s" in str(caught.value)
    with pytest.raises(ValidationError):
        NotificationTemplate.objects.create(hospital=hospital_a, kind="no_such_event",
                                            language="en", title="x", body="y")
    with pytest.raises(ValidationError):  # a lone % would fail at send time
        NotificationTemplate.objects.create(hospital=hospital_a, kind="booking_confirmed",
                                            language="en", title="100% booked", body="ok")
    assert not NotificationTemplate.objects.exists()


def test_template_override_per_hospital_and_language_one_query_per_chunk(hospital_a,
                                                                         hospital_b):
    NotificationTemplate.objects.create(
        hospital=hospital_a, kind="booking_confirmed", language="en",
        title="Alpha: see %(doctor)s on %(day)s",
        body="%(name)s, number %(number)s, come %(arrive)s to Alpha.")
    en = [make_user(language="en") for _ in range(5)]
    zh = make_user()
    context = {"doctor": "Dr Zhang", "day": "2026-12-01", "name": "Li Lei", "number": 3,
               "arrive": "07:30–08:00"}
    event = notify(kind="booking_confirmed", hospital=hospital_a, recipients=en + [zh],
                   context=context)
    other = notify(kind="booking_confirmed", hospital=hospital_b, recipients=[en[0]],
                   context=context)
    with CaptureQueriesContext(connection) as queries:
        chunk_deliver(event_id=event.pk, user_ids=[u.pk for u in en + [zh]])
    assert sum("notificationtemplate" in q["sql"] for q in queries.captured_queries) == 1
    chunk_deliver(event_id=other.pk, user_ids=[en[0].pk])
    titles = dict(InboxMessage.objects.filter(dedupe_key__startswith=f"{event.pk}:")
                  .values_list("user_id", "title"))
    assert titles[en[1].pk] == "Alpha: see Dr Zhang on 2026-12-01"
    assert titles[zh.pk].startswith("预约成功")  # no zh-hans override: the built-in text
    assert InboxMessage.objects.get(dedupe_key=f"{other.pk}:inbox:{en[0].pk}"
                                    ).title.startswith("Booking confirmed")  # other hospital


def test_template_admin_per_hospital_rejects_unknown_placeholders(hospital_a, hospital_b):
    from portal.accounts.models import User
    from tests.helpers import host_client, make_staff

    url = "/admin/notifications/notificationtemplate/"
    admin_a = make_staff(hospital_a, "admin")
    User.objects.filter(pk=admin_a.pk).update(language="en")
    client = host_client("alpha.localhost", User.objects.get(pk=admin_a.pk))
    bad = client.post(url + "add/", {"kind": "visit_reminder", "language": "en",
                                     "title": "Tomorrow: %(doctor)s",
                                     "body": "Bring %(card)s to %(place)s"})
    assert bad.status_code == 200  # the form again, with the reason
    assert "Unknown placeholder(s): %(card)s" in bad.content.decode()
    good = client.post(url + "add/", {"kind": "visit_reminder", "language": "en",
                                      "title": "Tomorrow: %(doctor)s",
                                      "body": "%(name)s, %(time)s at %(place)s"})
    assert good.status_code == 302
    template = NotificationTemplate.objects.get()
    assert template.hospital_id == hospital_a.pk
    again = client.post(url + "add/", {"kind": "visit_reminder", "language": "en",
                                       "title": "x", "body": "y"})
    assert "already has a template" in again.content.decode()
    assert client.get(url).status_code == 200
    admin_b = make_staff(hospital_b, "admin")
    other = host_client("beta.localhost", admin_b)
    assert "Tomorrow: %(doctor)s" not in other.get(url).content.decode()
    assert other.get(f"{url}{template.pk}/change/").status_code in (302, 404)
    registrar = host_client("alpha.localhost", make_staff(hospital_a, "registrar"))
    assert registrar.get(url).status_code == 403


# --------------------------------------------------------------------------- reminders


def _confirmed_booking(day, *, location="门诊楼 2 层 B 区"):
    from registration.models import Department, TimeSlice
    from registration.services import booking as svc
    from tests.registration.helpers import make_patient, make_session

    Department.objects.filter(code="cardiology").update(location=location)
    user, member = make_patient(name="赵敏")
    _doctor, schedule = make_session(day=day, fee=0, name="钱医生")
    first = TimeSlice.objects.filter(schedule=schedule).order_by("start").first()
    booking = svc.booking_hold(slice_id=first.pk, family_member=member, account=user)
    assert booking.status == "confirmed"
    return user, booking


def _local(day, hour):
    return timezone.make_aware(datetime.combine(day, datetime.min.time()) + timedelta(hours=hour))


def test_reminder_the_day_before_from_the_reminder_hour_once(hospital_a, settings):
    from registration.models import Booking
    from registration.services.reminders import bookings_remind_tomorrow

    settings.REMINDER_HOUR = 19
    today = timezone.localdate()
    tomorrow, later = today + timedelta(days=1), today + timedelta(days=2)
    with in_schema(hospital_a):
        user, booking = _confirmed_booking(tomorrow)
        _later_user, _later = _confirmed_booking(later)
        _cancelled_user, cancelled = _confirmed_booking(tomorrow)
        Booking.objects.filter(pk=cancelled.pk).update(status=Booking.Status.CANCELLED)
        assert bookings_remind_tomorrow(now=_local(today, 18)) == 0  # before the hour
        assert not OutboxEvent.objects.filter(kind="visit_reminder").exists()
        assert bookings_remind_tomorrow(now=_local(today, 19)) == 1
        assert bookings_remind_tomorrow(now=_local(today, 20)) == 0  # once
    outbox_deliver_now()
    message = InboxMessage.objects.get(user=user, kind="visit_reminder")
    assert message.title == "明日就诊：钱医生，08:00"
    for part in ("赵敏", "08:00", "甲市人民医院", "门诊楼 2 层 B 区", "身份证", "医保卡",
                 str(booking.queue_number)):
        assert part in message.body
    assert not InboxMessage.objects.filter(kind="visit_reminder").exclude(user=user).exists()


def test_reminder_in_english(hospital_a):
    from registration.services.reminders import bookings_remind_tomorrow

    today = timezone.localdate()
    with in_schema(hospital_a):
        user, booking = _confirmed_booking(today + timedelta(days=1))
        user.language = "en"
        user.save(update_fields=["language"])
        assert bookings_remind_tomorrow(now=_local(today, 21)) == 1
    outbox_deliver_now()
    body = InboxMessage.objects.get(user=user, kind="visit_reminder").body
    assert "ID card" in body and "medical insurance card" in body and "08:00" in body


def test_reminder_task_is_on_the_hourly_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["bookings-remind-tomorrow"]
    assert entry["task"] == "registration.bookings_remind_tomorrow"
    assert "tenant_schemas" not in entry  # every hospital
    from registration.tasks import bookings_remind_tomorrow_task

    assert bookings_remind_tomorrow_task.name == "registration.bookings_remind_tomorrow"
