"""Notifications: a transactional outbox, relayed by workers, fanned out in chunks, delivered
once per recipient and channel.

    notify(kind=..., hospital=..., recipients=[user ids], context={...})

writes an `OutboxEvent` in the caller's transaction. After commit a relay task is queued; if
Redis or the workers are down the row simply waits, and the sweeper (beat, every minute)
relays it later. The relay splits the recipients into chunks, one task each; a chunk task
creates one `Delivery` per recipient and channel with a unique dedupe key and sends what is
not yet sent. Tasks are acks_late: a killed worker's chunk runs again, and the dedupe keys
(at the inbox and at the SMS gateway) make the second run send nothing twice.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.db.inserts import IdText, InsertChain
from portal.errors import DomainError

from . import (
    messaging_app,
    webhooks,  # partner webhooks (also registers its tasks in every worker)
)
from .models import ChannelPreference, Delivery, InboxMessage, OutboxEvent

log = logging.getLogger(__name__)

CHUNK_SIZE = 250


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


def notify(*, kind: str, hospital, recipients, context: dict, link: str | IdText = "",
           rows: InsertChain | None = None) -> OutboxEvent:
    """Record an event for `recipients` (users or ids) in the current transaction.

    `rows`: the caller's InsertChain: the event is written with the caller's other new rows
    (and `link` may then be an IdText naming one of them); the caller runs it before commit.
    """
    ids = [getattr(r, "pk", r) for r in recipients]
    hospital_id = hospital.pk if hospital is not None and not hospital.is_public else None
    event = OutboxEvent(hospital_id=hospital_id, kind=kind, context=context, recipients=ids)
    if rows is None:
        event.link = link
        event.save(force_insert=True)
    elif isinstance(link, IdText):
        rows.add(event, link=link)
    else:
        event.link = link
        rows.add(event)
    transaction.on_commit(lambda: _enqueue_relay(event.pk))
    return event


# Relays are coalesced: the first event committed in each RELAY_BUCKET_SECONDS (per process
# memory, then a Redis SET NX across processes) queues one relay_due task for just after the
# bucket ends, which relays every event waiting by then. An event committed in a bucket is
# therefore handed to workers at most RELAY_BUCKET_SECONDS + RELAY_MARGIN_SECONDS after its
# commit, and a busy site publishes one message a second instead of one per event.
RELAY_BUCKET_SECONDS = 1
RELAY_MARGIN_SECONDS = 0.5
_relay_buckets: set[tuple[str, int]] = set()
_relay_buckets_lock = threading.Lock()


def _enqueue_relay(event_id: int) -> None:
    """On commit of an event: make sure a relay runs just after this bucket ends."""
    from django.core.cache import cache
    from django.db import connection

    from .tasks import relay_due

    bucket = int(time.time()) // RELAY_BUCKET_SECONDS
    key = (connection.schema_name, bucket)
    if key in _relay_buckets:
        return
    run_at = datetime.fromtimestamp((bucket + 1) * RELAY_BUCKET_SECONDS + RELAY_MARGIN_SECONDS,
                                    tz=UTC)
    cache_key = f"notifications:relay-bucket:{bucket}"
    try:
        if cache.add(cache_key, 1, timeout=120):  # SET NX: first event of this bucket anywhere
            try:
                relay_due.apply_async(eta=run_at)
            except Exception:
                cache.delete(cache_key)  # let the next event of this bucket try again
                raise
    except Exception:  # broker down: the sweeper relays it when Redis is back
        log.warning("could not queue relay of event %s; the sweeper will", event_id)
        return
    with _relay_buckets_lock:
        if len(_relay_buckets) > 10_000:
            _relay_buckets.clear()
        _relay_buckets.add(key)


def event_relay(*, event_id: int) -> int:
    """Hand an event's recipients to workers in chunks. Returns the number of chunks."""
    from .tasks import deliver_chunk

    with transaction.atomic():
        event = (OutboxEvent.objects.select_for_update(skip_locked=True)
                 .filter(pk=event_id, relayed_at__isnull=True).first())
        if event is None:
            return 0  # already relayed, or being relayed right now
        ids = list(event.recipients)
        chunks = [ids[i:i + CHUNK_SIZE] for i in range(0, len(ids), CHUNK_SIZE)]
        # Queue first, mark after: if queuing fails the transaction rolls back and the
        # sweeper tries again; chunks queued twice are harmless (dedupe keys).
        for chunk in chunks:
            deliver_chunk.delay(event.pk, chunk)
        # Partner webhooks: one delivery per subscribed endpoint, queued after commit.
        webhooks.relay(event)
        event.relayed_at = timezone.now()
        event.save(update_fields=["relayed_at"])
    return len(chunks)


def events_relay_pending(*, older_than: timedelta = timedelta(seconds=10)) -> int:
    """The sweeper: relay events whose on-commit relay never happened (Redis or workers down)."""
    ids = list(OutboxEvent.objects.filter(relayed_at__isnull=True,
                                          created_at__lte=timezone.now() - older_than)
               .order_by("created_at").values_list("pk", flat=True)[:500])
    relayed = 0
    for pk in ids:
        try:
            relayed += bool(event_relay(event_id=pk))
        except Exception:  # Redis still down: try again next time
            log.warning("relay of event %s failed; will retry", pk)
            break
    return relayed


def _channels_for(users) -> dict[int, list[str]]:
    """Inbox always; SMS when a gateway is configured, email when the account has an address,
    the messaging app when it is configured and the account is bound to it; each unless the
    user turned that channel off."""
    from portal.accounts.models import MessagingAppBinding

    sms_on = bool(settings.SMS_GATEWAY_URL)
    ids = [u.pk for u in users]
    off = set(ChannelPreference.objects.filter(
        user__in=ids, enabled=False,
        channel__in=[Delivery.Channel.SMS, Delivery.Channel.EMAIL,
                     Delivery.Channel.MESSAGING_APP])
        .values_list("user_id", "channel"))
    bound = set(MessagingAppBinding.objects.filter(
        user__in=ids, app_id=messaging_app.app_id()).values_list("user_id", flat=True)
        ) if messaging_app.enabled() else set()
    return {u.pk: ["inbox"]
            + (["sms"] if sms_on and (u.pk, "sms") not in off else [])
            + (["email"] if u.email and (u.pk, "email") not in off else [])
            + (["msgapp"] if u.pk in bound and (u.pk, "msgapp") not in off else [])
            for u in users}


def chunk_deliver(*, event_id: int, user_ids: list[int]) -> int:
    """Deliver one chunk: create the missing Delivery rows, send what is not yet sent."""
    from django.contrib.auth import get_user_model

    from .channels import send_email, send_inbox, send_messaging_app, send_sms
    from .messages import overrides_for, render

    event = OutboxEvent.objects.select_related("hospital").get(pk=event_id)
    users = list(get_user_model().objects.filter(pk__in=user_ids, is_active=True))
    channels = _channels_for(users)
    rows = [Delivery(event=event, user_id=u.pk, channel=ch, dedupe_key=f"{event.pk}:{ch}:{u.pk}")
            for u in users for ch in channels[u.pk]]
    Delivery.objects.bulk_create(rows, ignore_conflicts=True)
    # Sent and given-up (dead: a permanent error) deliveries are never tried again.
    pending = {(d.user_id, d.channel): d for d in Delivery.objects.filter(
        event=event, user_id__in=[u.pk for u in users]).exclude(
        status__in=[Delivery.Status.SENT, Delivery.Status.DEAD])}
    overrides = overrides_for(hospital_id=event.hospital_id, kind=event.kind)  # one query
    messages = {}
    for u in users:
        messages[u.pk] = render(event.kind, event.context, u.language or None, overrides)
    sent = 0
    by_channel: dict[str, list] = {"inbox": [], "sms": [], "email": [], "msgapp": []}
    for (_user_id, channel), d in pending.items():
        by_channel[channel].append(d)
    users_by_id = {u.pk: u for u in users}
    for channel, sender in (("inbox", send_inbox), ("sms", send_sms), ("email", send_email),
                            ("msgapp", send_messaging_app)):
        batch = by_channel[channel]
        if not batch:
            continue
        Delivery.objects.filter(pk__in=[d.pk for d in batch]).update(attempts=F("attempts") + 1)
        try:
            sender(event=event, deliveries=batch, users=users_by_id, messages=messages)
        except Exception as exc:  # the task retries; the dedupe keys keep it exactly-once
            # (email and the messaging app record each message as it goes: sent ones stay
            # sent, and the messaging app's permanent failures stay dead)
            Delivery.objects.filter(pk__in=[d.pk for d in batch]).exclude(
                status__in=[Delivery.Status.SENT, Delivery.Status.DEAD]).update(
                status=Delivery.Status.FAILED, last_error=str(exc)[:300])
            raise
        sent += Delivery.objects.filter(pk__in=[d.pk for d in batch]).exclude(
            status=Delivery.Status.DEAD).update(status=Delivery.Status.SENT,
                                                sent_at=timezone.now())
    return sent


def outbox_deliver_now(*, limit: int = 1000) -> int:
    """Deliver waiting events in this process, without workers (tests, and the
    `notifications_flush` command for an operator whose workers are down)."""
    done = 0
    for event in OutboxEvent.objects.filter(relayed_at__isnull=True).order_by("created_at")[:limit]:
        ids = list(event.recipients)
        for i in range(0, len(ids), CHUNK_SIZE):
            chunk_deliver(event_id=event.pk, user_ids=ids[i:i + CHUNK_SIZE])
        with transaction.atomic():
            webhooks.relay(event)  # partners hear of it too
            OutboxEvent.objects.filter(pk=event.pk).update(relayed_at=timezone.now())
        done += 1
    return done


# --------------------------------------------------------------------------- messaging-app binding


class MessagingAppBindRefused(DomainError):
    code = "messaging_app_bind_refused"


def messaging_app_bind_finish(*, user, session, state: str, code: str):
    """The authorize callback: check the one-time state this browser was given, exchange the
    code for the app user's openid and bind it to `user` (accounts.services)."""
    from portal.accounts.services import messaging_app_bind

    if not messaging_app.bind_state_valid(user=user, session=session, state=state):
        log.warning("messaging app: refused a binding callback for account %s (bad, expired "
                    "or used state)", user.pk)
        raise MessagingAppBindRefused(_("This binding link is not valid any more. Please "
                                        "start again from your notification settings."))
    if not code:  # the user did not allow it in the app
        raise MessagingAppBindRefused(_("The messaging app did not confirm who you are. "
                                        "Please try again."))
    try:
        openid = messaging_app.openid_for_code(code)
    except messaging_app.MessagingAppError as exc:
        log.warning("messaging app: code exchange failed for account %s: %s", user.pk, exc)
        raise MessagingAppBindRefused(_("The messaging app did not confirm who you are. "
                                        "Please try again.")) from None
    binding = messaging_app_bind(user=user, app_id=messaging_app.app_id(), openid=openid)
    log.info("messaging app: account %s bound (%s)", user.pk, messaging_app.mask_openid(openid))
    return binding


def messaging_app_unbind_account(*, user) -> bool:
    from portal.accounts.services import messaging_app_unbind

    return messaging_app_unbind(user=user, app_id=messaging_app.app_id())
