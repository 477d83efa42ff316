"""Channels behind one shape: send(event, deliveries, users, messages) — idempotent per
delivery dedupe key, so a repeated send after a crash delivers nothing twice."""

from __future__ import annotations

import json
import urllib.request

from django.conf import settings

from portal.accounts.validators import mask_mobile

from .models import InboxMessage


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
