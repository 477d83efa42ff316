"""Channels behind one shape: send(event, deliveries, users, messages) — idempotent per
delivery dedupe key, so a repeated send after a crash delivers nothing twice."""

from __future__ import annotations

import json
import urllib.request

from django.conf import settings
from django.core import mail
from django.utils import timezone

from portal.accounts.validators import mask_mobile

from .models import ChannelPreference, Delivery, InboxMessage


def send_inbox(*, event, deliveries, users, messages) -> None:
    rows = []
    for d in deliveries:
        title, body = messages[d.user_id]
        rows.append(InboxMessage(user_id=d.user_id, hospital_id=event.hospital_id, kind=event.kind,
                                 title=title[:200], body=body, link=event.link,
                                 dedupe_key=d.dedupe_key))
    # The unique dedupe key makes a second insert of the same message a no-op.
    InboxMessage.objects.bulk_create(rows, ignore_conflicts=True)


def send_sms(*, event, deliveries, users, messages) -> None:
    """POST the batch to the SMS gateway; it de-duplicates on each message's id."""
    batch = []
    for d in deliveries:
        title, body = messages[d.user_id]
        batch.append({"id": d.dedupe_key, "to": users[d.user_id].phone,
                      "text": f"【{title}】{body}"})
    request = urllib.request.Request(
        settings.SMS_GATEWAY_URL.rstrip("/") + "/v1/messages",
        data=json.dumps({"messages": batch}, ensure_ascii=False).encode(), method="POST",
        headers={"Content-Type": "application/json",
                 "Authorization": f"Bearer {settings.SMS_GATEWAY_KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status >= 300:
            raise RuntimeError(f"SMS gateway answered {response.status} for "
                               f"{len(batch)} messages (first to {mask_mobile(batch[0]['to'])})")


def email_message_id(dedupe_key: str) -> str:
    """The Message-ID of a delivery's email: the same on every retry, so a repeated send (a
    worker killed between sending and recording it) is recognisable as the same message."""
    return f"<notify.{dedupe_key.replace(':', '.')}@{settings.NOTIFY_EMAIL_DOMAIN}>"


def send_email(*, event, deliveries, users, messages) -> None:
    """Email each delivery over one connection of the default mailer (django.core.mail;
    settings.MAILERS, from the EMAIL_* environment variables).

    SMTP has no idempotency key, so each delivery is marked sent as soon as the server accepted
    it: a failure part-way through retries only the rest. The Message-ID is derived from the
    dedupe key, so the one unavoidable case (crash between the server's OK and that update)
    repeats an identical Message-ID that mail clients and servers treat as one message."""
    with mail.mailers.default as connection:
        for d in sorted(deliveries, key=lambda d: d.user_id):
            title, body = messages[d.user_id]
            message = mail.EmailMessage(subject=title.replace("\n", " ")[:200], body=body,
                                        to=[users[d.user_id].email],
                                        headers={"Message-ID": email_message_id(d.dedupe_key)})
            connection.send_messages([message])
            Delivery.objects.filter(pk=d.pk).update(status=Delivery.Status.SENT,
                                                    sent_at=timezone.now(), last_error="")


# --------------------------------------------------------------------------- preferences

#: Channels an account can turn off (the site inbox is always on).
OPTIONAL_CHANNELS = (Delivery.Channel.SMS, Delivery.Channel.EMAIL)


def channel_preferences(*, user) -> dict[str, bool]:
    """{channel: enabled} for the optional channels; a channel without a row is on."""
    saved = dict(ChannelPreference.objects.filter(user=user, channel__in=OPTIONAL_CHANNELS)
                 .values_list("channel", "enabled"))
    return {str(ch): saved.get(ch, True) for ch in OPTIONAL_CHANNELS}


def channel_preference_set(*, user, channel: str, enabled: bool) -> ChannelPreference:
    """Turn a channel on or off for an account. The site inbox cannot be turned off."""
    if channel not in OPTIONAL_CHANNELS:
        raise ValueError(f"channel {channel!r} cannot be turned off")
    pref, _created = ChannelPreference.objects.update_or_create(
        user=user, channel=channel, defaults={"enabled": bool(enabled)})
    return pref
