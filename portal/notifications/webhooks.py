"""Partner webhooks: each relayed event is POSTed, signed, to the hospital's subscribed endpoints.

    POST <endpoint url>
    Content-Type: application/json
    Portal-Webhook-Id: 812:3                  (the same on every retry of this delivery)
    Portal-Webhook-Timestamp: 1763900000      (unix seconds of this attempt)
    Portal-Webhook-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{raw body}")>

    {"id": "812:3", "type": "booking_confirmed", "created_at": "2026-11-23T06:00:00+00:00",
     "hospital": "hosp-a", "data": {...event context..., "link": "/bookings/812/",
                                    "booking_id": 812}}     (booking_id: booking events only)

The relay (services.event_relay) calls `relay(event)` inside its transaction: one
`WebhookDelivery` per subscribed endpoint (unique dedupe key event:endpoint), and after commit a
`notifications.webhook_deliver` task each. A 2xx answer marks it delivered (never sent again);
anything else is retried with exponential backoff and full jitter (10 s × 2^n, at most 1 h) up
to WEBHOOK_MAX_ATTEMPTS attempts, then the delivery is "dead" until an admin re-sends it. The
beat sweeper re-queues deliveries whose next attempt is due but whose task was lost.

A worker claims a delivery by moving its next_attempt_at forward by a lease before it POSTs, so
a duplicate task (a sweeper re-queue, a redelivered acks_late task) finds nothing to do.

Every attempt resolves the endpoint's host once, refuses non-public addresses and connects to
the addresses it checked (`resolve_target`, `PinnedHTTPConnection`): the name is never resolved
again between the check and the connection (DNS rebinding).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import os
import random
import re
import socket
import ssl
import time
from collections.abc import Mapping
from datetime import timedelta
from urllib.parse import urlsplit

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import OutboxEvent, WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

#: Event kinds a partner can subscribe to ("*" = all of them).
EVENT_KINDS = ("booking_confirmed", "schedule_stopped", "schedule_stopped_refund",
               "waitlist_offer", "waitlist_closed", "visit_reminder", "announcement")

SIGNATURE_HEADER = "Portal-Webhook-Signature"
TIMESTAMP_HEADER = "Portal-Webhook-Timestamp"
ID_HEADER = "Portal-Webhook-Id"

BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 3600
TIMEOUT_SECONDS = 10
#: How long a worker owns a delivery while it POSTs (longer than the HTTP timeout).
LEASE_SECONDS = 60
#: The sweeper leaves a due delivery this long to its own queued task before re-queuing it.
SWEEP_GRACE_SECONDS = 30


def _setting(name: str, default: float) -> float:
    """A Django setting (portal/settings/base.py reads it from the environment)."""
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name) or default
    return float(value)


def max_attempts() -> int:
    return int(_setting("WEBHOOK_MAX_ATTEMPTS", 8))


# --------------------------------------------------------------------------- signing


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The signature header value: v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes,
                     tolerance: int = 300) -> bool:
    """True if a received webhook is genuine: signed with `secret` over its timestamp and raw
    body, and the timestamp is within `tolerance` seconds of now (either way). This is the code
    partners copy (docs/webhooks.md, "Signing"); `headers` may use any capitalisation."""
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp = lower.get(TIMESTAMP_HEADER.lower(), "")
    signature = lower.get(SIGNATURE_HEADER.lower(), "")
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(time.time() - ts) > tolerance:
        return False  # stale (a replay) or from the future
    expected = sign(secret, ts, body)
    # a header may carry several signatures (during secret rotation): "v1=..., v1=..."
    return any(hmac.compare_digest(expected.encode(), s.strip().encode())
               for s in signature.split(","))


# --------------------------------------------------------------------------- relay


#: Events about the hospital as a whole, sent to partner-registered endpoints too.
HOSPITAL_WIDE_EVENTS = frozenset({"announcement"})
_BOOKING_LINK = re.compile(r"^/bookings/(\d+)/")


def event_booking_id(event: OutboxEvent) -> int | None:
    """The booking an event is about (its context, or its /bookings/<id>/ link), if any."""
    booking = (event.context or {}).get("booking")
    if isinstance(booking, int):
        return booking
    match = _BOOKING_LINK.match(event.link or "")
    return int(match.group(1)) if match else None


def endpoint_receives(endpoint: WebhookEndpoint, event: OutboxEvent) -> bool:
    """Subscribed, and allowed to see it. An endpoint a partner registered through the API
    (`own_events_only`) receives hospital-wide events and events about bookings that partner
    made; never another patient's booking, waitlist, payment or bill. Endpoints registered by
    the hospital's admin receive every subscribed event of their hospital."""
    if not endpoint.wants(event.kind):
        return False
    if not endpoint.own_events_only or event.kind in HOSPITAL_WIDE_EVENTS:
        return True
    booking_id = event_booking_id(event)
    if booking_id is None:
        return False
    from portal.partners.services import record_owner

    return record_owner(hospital_id=event.hospital_id, kind="booking",
                        object_id=booking_id) == endpoint.partner_id


def deliveries_for_event(event: OutboxEvent) -> list[int]:
    """Create the missing deliveries of an event to its hospital's subscribed endpoints; return
    the ids of those not yet delivered (or dead). Idempotent."""
    if event.hospital_id is None:
        return []
    endpoints = [e for e in WebhookEndpoint.objects.filter(hospital_id=event.hospital_id,
                                                           is_active=True)
                 if endpoint_receives(e, event)]
    if not endpoints:
        return []
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(endpoint=e, event=event, dedupe_key=f"{event.pk}:{e.pk}",
                         next_attempt_at=now) for e in endpoints],
        ignore_conflicts=True)
    return list(WebhookDelivery.objects.filter(
        event=event, status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.FAILED])
        .values_list("pk", flat=True))


def relay(event: OutboxEvent) -> list[int]:
    """Called by services.event_relay inside its transaction: create the deliveries, and queue
    their tasks once the transaction commits."""
    ids = deliveries_for_event(event)
    if ids:
        transaction.on_commit(lambda: queue(ids))
    return ids


def queue(ids, countdown: float | None = None) -> None:
    for pk in ids:
        try:
            webhook_deliver.apply_async((pk,), countdown=countdown)
        except Exception:  # broker down: the sweeper queues it when Redis is back
            log.warning("could not queue webhook delivery %s; the sweeper will", pk)


# --------------------------------------------------------------------------- delivery


def payload(delivery: WebhookDelivery) -> bytes:
    """The JSON body of a delivery: byte-identical on every attempt."""
    from .messages import _scrub  # never a full ID number, whatever the context holds

    event = delivery.event
    data = {k: _scrub(v) if isinstance(v, str) else v for k, v in event.context.items()}
    data["link"] = event.link
    booking_id = event_booking_id(event)
    if booking_id is not None:  # what a partner matches against the id its POST returned
        data["booking_id"] = booking_id
    body = {"id": delivery.dedupe_key, "type": event.kind,
            "created_at": event.created_at.isoformat(),
            "hospital": event.hospital.code if event.hospital_id else None,
            "data": data}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def backoff_seconds(attempts: int) -> float:
    """Full jitter: uniform(0, min(cap, base × 2^(attempts-1)))."""
    base = _setting("WEBHOOK_BACKOFF_BASE_SECONDS", BACKOFF_BASE_SECONDS)
    ceiling = min(BACKOFF_CAP_SECONDS, base * 2 ** max(0, attempts - 1))
    return random.uniform(0, ceiling)


class TargetNotAllowed(ValueError):
    """The endpoint's host is not a public internet address (and the settings do not allow it)."""


#: (family, sockaddr) pairs, as socket.getaddrinfo gives them: where a delivery may connect.
Addresses = list[tuple[socket.AddressFamily, tuple]]


def _private_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_TARGETS", False))


def resolve_target(url: str) -> Addresses:
    """Resolve the endpoint's host once and refuse it if any address is loopback, private,
    link-local or otherwise non-public (unless `WEBHOOK_ALLOW_PRIVATE_TARGETS`). Returns the
    checked addresses: the delivery connects to these and nowhere else (`_post`), so a DNS
    server that answers a public address now and 127.0.0.1 a moment later (DNS rebinding)
    gains nothing.

    Partners register URLs that our workers then POST to from inside our network: without this,
    http://127.0.0.1:6379/ or a cloud metadata address would be reachable through us (SSRF).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetNotAllowed("not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        if _private_allowed():
            raise  # local development: a transient error like any other, retried
        raise TargetNotAllowed(f"{parts.hostname} does not resolve") from exc
    addresses: Addresses = []
    for family, _type, _proto, _canonname, sockaddr in infos:
        if not _private_allowed() and not ipaddress.ip_address(sockaddr[0].split("%")[0]).is_global:
            raise TargetNotAllowed(f"{parts.hostname} resolves to a non-public address")
        if (family, sockaddr) not in addresses:
            addresses.append((family, sockaddr))
    return addresses


def check_target(url: str) -> None:
    """Refuse an endpoint URL whose host is not a public address (when it is registered:
    API and admin form). Checked again, and pinned, before every attempt (`resolve_target`).
    `WEBHOOK_ALLOW_PRIVATE_TARGETS` (on for local development and tests) turns it off."""
    if _private_allowed():
        return
    resolve_target(url)


def _connect_pinned(addresses: Addresses, timeout, source_address=None) -> socket.socket:
    """A TCP connection to the first of `addresses` that answers (socket.create_connection,
    without resolving anything)."""
    error: OSError | None = None
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error or OSError("no address to connect to")


class PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to the URL's host name (the Host header) that connects to addresses
    resolved and checked beforehand, never resolving the name again."""

    def __init__(self, host: str, port: int | None = None, *, addresses: Addresses,
                 **kwargs) -> None:
        super().__init__(host, port, **kwargs)
        self.addresses = addresses
        # http.client's connect() (and HTTPSConnection's, before it wraps the socket with
        # server_hostname=self.host) opens the socket through this attribute.
        self._create_connection = lambda _address, timeout, source_address=None: (
            _connect_pinned(self.addresses, timeout, source_address))


class PinnedHTTPSConnection(PinnedHTTPConnection, http.client.HTTPSConnection):
    """HTTPS to a pinned address: TLS with SNI and certificate verification for the URL's host
    name (the default context verifies the chain and the name)."""

    def __init__(self, host: str, port: int | None = None, *, addresses: Addresses,
                 context: ssl.SSLContext | None = None, **kwargs) -> None:
        super().__init__(host, port, addresses=addresses,
                         context=context or ssl.create_default_context(), **kwargs)


def _post(url: str, body: bytes, headers: dict, addresses: Addresses) -> int:
    """POST to `url`, connected to `addresses` (from `resolve_target`). No proxy and no
    redirects: a 3xx is an answer like any other non-2xx (retried, not followed)."""
    parts = urlsplit(url)
    connection_class = PinnedHTTPSConnection if parts.scheme == "https" else PinnedHTTPConnection
    connection = connection_class(parts.hostname, parts.port, addresses=addresses,
                                  timeout=TIMEOUT_SECONDS)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", path, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def deliver(delivery_id: int) -> str | None:
    """One attempt at a delivery, if it is due and nobody else holds it. Returns the new status
    (or None if there was nothing to do). Schedules the next attempt after a failure."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now), pk=delivery_id,
        status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.FAILED],
    ).update(next_attempt_at=now + timedelta(seconds=LEASE_SECONDS))
    if not claimed:
        return None  # delivered, dead, not due yet, or another worker is on it
    d = WebhookDelivery.objects.select_related("endpoint", "event", "event__hospital").get(
        pk=delivery_id)
    body = payload(d)
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json", "User-Agent": "portal-webhooks/1",
               ID_HEADER: d.dedupe_key, TIMESTAMP_HEADER: str(timestamp),
               SIGNATURE_HEADER: sign(d.endpoint.secret, timestamp, body)}
    code, error, forbidden = None, "", False
    try:
        addresses = resolve_target(d.endpoint.url)  # once: the checked addresses are used
        code = _post(d.endpoint.url, body, headers, addresses)
        if not 200 <= code < 300:
            error = f"HTTP {code}"
    except TargetNotAllowed as exc:
        error, forbidden = f"target not allowed: {exc}", True
    except Exception as exc:  # refused, timed out, DNS, TLS...
        error = f"{type(exc).__name__}: {exc}"
    attempts = d.attempts + 1
    fields = {"attempts": attempts, "last_status_code": code, "last_error": error[:300]}
    if not error:
        fields.update(status=WebhookDelivery.Status.DELIVERED, delivered_at=timezone.now(),
                      next_attempt_at=None)
    elif forbidden or attempts >= max_attempts():
        fields.update(status=WebhookDelivery.Status.DEAD, next_attempt_at=None)
        log.warning("webhook delivery %s is dead after %s attempts: %s", d.pk, attempts, error)
    else:
        delay = backoff_seconds(attempts)
        fields.update(status=WebhookDelivery.Status.FAILED,
                      next_attempt_at=timezone.now() + timedelta(seconds=delay))
    WebhookDelivery.objects.filter(pk=d.pk).update(**fields)
    if fields["status"] == WebhookDelivery.Status.FAILED:
        queue([d.pk], countdown=delay)
    return fields["status"]


def resend(ids) -> int:
    """Admin "Re-send": dead or failed deliveries start again (attempts from 0), now."""
    ids = list(WebhookDelivery.objects.filter(
        pk__in=list(ids), status__in=[WebhookDelivery.Status.DEAD, WebhookDelivery.Status.FAILED])
        .values_list("pk", flat=True))
    WebhookDelivery.objects.filter(pk__in=ids).update(
        status=WebhookDelivery.Status.PENDING, attempts=0, next_attempt_at=timezone.now(),
        last_error="")
    transaction.on_commit(lambda: queue(ids))
    return len(ids)


def sweep(*, grace_seconds: int = SWEEP_GRACE_SECONDS, limit: int = 1000) -> int:
    """Re-queue deliveries whose next attempt is overdue (their task was lost: Redis flushed,
    broker down when it was queued). Duplicates are harmless: `deliver` claims first."""
    due = timezone.now() - timedelta(seconds=grace_seconds)
    ids = list(WebhookDelivery.objects.filter(
        status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.FAILED],
        next_attempt_at__lte=due).order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    if ids:
        queue(ids)
    return len(ids)


# --------------------------------------------------------------------------- tasks
# Defined here (not tasks.py); this module is imported by services.py, so every worker that
# loads notifications.tasks knows them.


@shared_task(name="notifications.webhook_deliver", acks_late=True)
def webhook_deliver(delivery_id: int) -> str | None:
    return deliver(delivery_id)


@shared_task(name="notifications.webhook_sweep")
def webhook_sweep() -> int:
    return sweep()

