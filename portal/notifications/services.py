from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import InboxMessage


def inbox_send(*, user, hospital, kind: str, title: str, body: str, dedupe_key: str,
               link: str = "") -> InboxMessage:
    """Put a message in an account's inbox, once per dedupe key."""
    existing = InboxMessage.objects.filter(dedupe_key=dedupe_key).first()
    if existing is not None:
        return existing
    hospital_id = hospital.pk if hospital is not None and not hospital.is_public else None
    try:
        with transaction.atomic():
            return InboxMessage.objects.create(user=user, hospital_id=hospital_id, kind=kind,
                                               title=title[:200], body=body, link=link,
                                               dedupe_key=dedupe_key)
    except IntegrityError:  # the same event delivered concurrently
        return InboxMessage.objects.get(dedupe_key=dedupe_key)


def inbox_mark_read(*, user, ids=None) -> int:
    qs = InboxMessage.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.update(read_at=timezone.now())
