"""Channels behind one shape: send(event, deliveries, users, messages) — idempotent per
delivery dedupe key, so a repeated send after a crash delivers nothing twice."""

from __future__ import annotations

import json
import logging
import urllib.request

from django.conf import settings
from django.core import mail
from django.utils import timezone

from portal.accounts.validators import mask_mobile

from .models import ChannelPreference, Delivery, InboxMessage

log = logging.getLogger(__name__)


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


def _message_link(event) -> str:
    """The page a template message opens: the event's link on the hospital's own host (the
    scheme and port of PLATFORM_URL); none when PLATFORM_URL is not set."""
    from urllib.parse import urlsplit

    if not settings.PLATFORM_URL:
        return ""
    base = urlsplit(settings.PLATFORM_URL)
    host = base.hostname or settings.PLATFORM_DOMAIN
    if event.hospital is not None:
        domain = (event.hospital.domains.order_by("-is_primary", "pk")
                  .values_list("domain", flat=True).first())
        host = domain or host
    port = f":{base.port}" if base.port else ""
    return f"{base.scheme}://{host}{port}{event.link or '/inbox/'}"


def send_messaging_app(*, event, deliveries, users, messages) -> None:
    """One template message per delivery to the recipient's bound app user (openid).

    Each outcome is recorded as it happens: sent; dead for a permanent error (e.g. 43004, the
    user unfollowed the account) or a recipient no longer bound, never tried again; on a
    transient error (busy, quota, network) the rest of the batch stops and the exception
    makes the task retry what is not sent. The dedupe key travels as `client_msg_id`, so a
    repeat after a crash between the app's answer and our update is dropped by the app."""
    from portal.accounts.models import MessagingAppBinding

    from . import messaging_app as app

    openids = dict(MessagingAppBinding.objects.filter(
        app_id=app.app_id(), user_id__in=[d.user_id for d in deliveries])
        .values_list("user_id", "openid"))
    template_id = app.template_for(event.kind)
    hospital = event.hospital
    from tenants.models import hospital_tz

    tz = hospital_tz(hospital)  # no hospital: the active schema's, else the platform's default
    when = timezone.localtime(event.created_at, tz).strftime("%Y-%m-%d %H:%M")
    url = _message_link(event)

    def record(d, **fields) -> None:
        Delivery.objects.filter(pk=d.pk).update(**fields)

    for d in sorted(deliveries, key=lambda d: d.user_id):
        openid = openids.get(d.user_id)
        if openid is None:  # unbound since the delivery was planned
            record(d, status=Delivery.Status.DEAD, last_error="not bound to the messaging app")
            continue
        title, body = messages[d.user_id]
        english = (users[d.user_id].language or "").startswith("en")
        source = ((hospital.name_en if english and hospital.name_en else hospital.name)
                  if hospital else "")
        try:
            app.template_send(openid=openid, template_id=template_id, url=url,
                              data=app.template_data(title=title, body=body, source=source,
                                                     when=when),
                              client_msg_id=d.dedupe_key)
        except app.MessagingAppError as exc:
            log.warning("messaging app: %s to %s failed (%s): %s", d.dedupe_key,
                        app.mask_openid(openid),
                        "will retry" if exc.retryable else "permanent", exc)
            if exc.retryable:
                record(d, status=Delivery.Status.FAILED, last_error=str(exc)[:300])
                raise
            record(d, status=Delivery.Status.DEAD, last_error=str(exc)[:300])
            continue
        record(d, status=Delivery.Status.SENT, sent_at=timezone.now(), last_error="")


# --------------------------------------------------------------------------- preferences

#: Channels an account can turn off (the site inbox is always on).
OPTIONAL_CHANNELS = (Delivery.Channel.SMS, Delivery.Channel.EMAIL,
                     Delivery.Channel.MESSAGING_APP)


def available_channels() -> tuple[str, ...]:
    """The optional channels offered to patients: the messaging app only when configured."""
    from . import messaging_app

    return tuple(ch for ch in OPTIONAL_CHANNELS
                 if ch != Delivery.Channel.MESSAGING_APP or messaging_app.enabled())


def channel_preferences(*, user) -> dict[str, bool]:
    """{channel: enabled} for the offered channels; a channel without a row is on."""
    channels = available_channels()
    saved = dict(ChannelPreference.objects.filter(user=user, channel__in=channels)
                 .values_list("channel", "enabled"))
    return {str(ch): saved.get(ch, True) for ch in channels}


def channel_preference_set(*, user, channel: str, enabled: bool) -> ChannelPreference:
    """Turn a channel on or off for an account. The site inbox cannot be turned off."""
    if channel not in OPTIONAL_CHANNELS:
        raise ValueError(f"channel {channel!r} cannot be turned off")
    pref, _created = ChannelPreference.objects.update_or_create(
        user=user, channel=channel, defaults={"enabled": bool(enabled)})
    return pref
