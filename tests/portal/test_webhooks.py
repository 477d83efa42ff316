"""Partner webhooks: signed, retried with backoff, dead-lettered, re-sendable, per hospital."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.utils import timezone

from portal.notifications import webhooks
from portal.notifications.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from portal.notifications.services import event_relay, notify
from tests.helpers import ROOT, host_client, make_staff, make_user


def _partner(name: str):
    """Webhook endpoints belong to a Partner."""
    from portal.partners.models import Partner

    return Partner.objects.get_or_create(name=name)[0]


class Receiver:
    """A partner's endpoint: a stdlib HTTP server in a thread that answers `fail` times with
    500, then 200, and keeps every request (headers and raw body)."""

    def __init__(self, fail: int = 0):
        self.fail = fail
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers.items()), body))
                code = 500 if receiver.fail > 0 else 200
                receiver.fail -= 1
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(fail: int = 0) -> Receiver:
        r = Receiver(fail)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


@pytest.fixture
def queued(monkeypatch):
    """Tasks that would be queued (the tests drive the deliveries themselves)."""
    calls: list[tuple[list[int], float | None]] = []
    monkeypatch.setattr(webhooks, "queue", lambda ids, countdown=None:
                        calls.append((list(ids), countdown)))
    from portal.notifications import tasks

    monkeypatch.setattr(tasks.deliver_chunk, "delay", lambda *a, **k: None)
    return calls


def _event(hospital, kind="booking_confirmed", recipients=()):
    return notify(kind=kind, hospital=hospital, recipients=list(recipients),
                  context={"doctor": "张医生", "day": "2026-12-01", "name": "病人甲",
                           "number": 7, "arrive": "08:00-08:30",
                           "id_number": "110101199003078515"},
                  link="/bookings/42/")


def _drive(delivery: WebhookDelivery, times: int) -> list[str | None]:
    """Run the delivery function `times` times, each time as if its next attempt were due."""
    results = []
    for _ in range(times):
        WebhookDelivery.objects.filter(pk=delivery.pk, status__in=["pending", "failed"]).update(
            next_attempt_at=timezone.now() - timedelta(seconds=1))
        results.append(webhooks.deliver(delivery.pk))
    return results


def readme_verifier():
    """The verification snippet of docs/webhooks.md ("Signing"), as partners copy it."""
    text = (Path(ROOT) / "docs" / "webhooks.md").read_text()
    section = text[text.index("## Signing"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102
    return namespace["verify_portal_webhook"]


def test_fails_three_times_then_exactly_one_accepted_delivery(db, hospital_a, receiver, queued):
    r = receiver(fail=3)
    endpoint = WebhookEndpoint.objects.create(hospital=hospital_a, partner=_partner("康健 App"), url=r.url,
                                              events=["booking_confirmed"])
    user = make_user()
    event = _event(hospital_a, recipients=[user])
    assert event_relay(event_id=event.pk) == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.dedupe_key == f"{event.pk}:{endpoint.pk}" and delivery.status == "pending"
    assert event_relay(event_id=event.pk) == 0  # relayed once only
    assert WebhookDelivery.objects.count() == 1

    assert _drive(delivery, 3) == ["failed"] * 3
    delivery.refresh_from_db()
    assert delivery.attempts == 3 and delivery.last_status_code == 500
    assert delivery.last_error == "HTTP 500"
    # each failure queued its retry with a backoff of at most 10 s × 2^(n-1)
    retries = [c for ids, c in queued if c is not None]
    assert len(retries) == 3
    assert all(0 <= c <= 10 * 2 ** n for n, c in enumerate(retries))
    assert timezone.now() < delivery.next_attempt_at <= timezone.now() + timedelta(seconds=41)
    # not due yet: a duplicate task (sweeper, redelivered task) does nothing
    assert webhooks.deliver(delivery.pk) is None

    assert _drive(delivery, 3) == ["delivered", None, None]  # never sent again
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 4
    assert delivery.delivered_at is not None and delivery.last_status_code == 200
    assert len(r.requests) == 4
    ids = {h["Portal-Webhook-Id"] for h, _ in r.requests}
    assert ids == {delivery.dedupe_key}  # the same id on every retry: receivers dedupe on it
    assert len({body for _, body in r.requests}) == 1  # byte-identical body

    headers, body = r.requests[-1]
    payload = json.loads(body)
    assert payload["id"] == delivery.dedupe_key and payload["type"] == "booking_confirmed"
    assert payload["hospital"] == hospital_a.code
    assert payload["created_at"].endswith("+00:00")
    assert payload["data"]["doctor"] == "张医生" and payload["data"]["link"] == "/bookings/42/"
    assert payload["data"]["booking_id"] == 42  # the id the partner's POST returned
    assert "110101199003078515" not in body.decode()  # never a full ID number
    assert headers["Content-Type"] == "application/json"
    assert re.fullmatch(r"v1=[0-9a-f]{64}", headers["Portal-Webhook-Signature"])
    assert abs(int(headers["Portal-Webhook-Timestamp"]) - time.time()) < 60
    assert webhooks.verify_signature(endpoint.secret, headers, body)
    assert readme_verifier()(endpoint.secret, headers, body)  # the documented code agrees


def test_dead_after_max_attempts_then_resent_from_admin(db, hospital_a, receiver, queued,
                                                        settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 4
    r = receiver(fail=100)
    WebhookEndpoint.objects.create(hospital=hospital_a, partner=_partner("p"), url=r.url, events=["*"])
    event = _event(hospital_a, kind="announcement")
    event_relay(event_id=event.pk)
    delivery = WebhookDelivery.objects.get()
    assert _drive(delivery, 6) == ["failed", "failed", "failed", "dead", None, None]
    delivery.refresh_from_db()
    assert delivery.status == "dead" and delivery.attempts == 4
    assert delivery.next_attempt_at is None and len(r.requests) == 4
    assert webhooks.sweep(grace_seconds=0) == 0  # dead letters wait for a person

    admin = make_staff(hospital_a, "admin")
    client = host_client("alpha.localhost", admin)
    url = "/admin/notifications/webhookdelivery/"
    page = client.get(url + "?status__exact=dead")
    assert page.status_code == 200 and "HTTP 500" in page.content.decode()
    by_kind = client.get(url + "?event__kind=announcement&status__exact=dead")
    assert by_kind.status_code == 200 and f"webhookdelivery/{delivery.pk}/" in (
        by_kind.content.decode())
    assert f"webhookdelivery/{delivery.pk}/" not in client.get(
        url + "?event__kind=booking_confirmed").content.decode()
    queued.clear()
    with pytest.MonkeyPatch.context() as mp:  # on_commit runs at once in this test
        mp.setattr("django.db.transaction.on_commit", lambda f, *a, **k: f())
        response = client.post(url, {"action": "resend", "_selected_action": [delivery.pk]})
    assert response.status_code == 302
    assert queued == [([delivery.pk], None)]
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.attempts == 0
    r.fail = 0
    assert webhooks.deliver(delivery.pk) == "delivered"
    assert len(r.requests) == 5

    # another hospital's admin sees none of it; a registrar may not look
    other = host_client("beta.localhost", make_staff(_hospital("beta"), "admin"))
    assert str(delivery.pk) not in re.findall(r"webhookdelivery/(\d+)/",
                                              other.get(url).content.decode())
    registrar = host_client("alpha.localhost", make_staff(hospital_a, "registrar"))
    assert registrar.get(url).status_code == 403


def _hospital(code):
    from tenants.models import Hospital

    return Hospital.objects.get(code=code)


def test_admin_creates_endpoint_and_shows_secret_once(db, hospital_a):
    admin = make_staff(hospital_a, "admin")
    client = host_client("alpha.localhost", admin)
    url = "/admin/notifications/webhookendpoint/"
    response = client.post(url + "add/", {"partner": _partner("康健 App").pk, "url": "https://partner.example/h",
                                          "events": ["booking_confirmed", "schedule_stopped"],
                                          "is_active": "on"}, follow=True)
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.hospital_id == hospital_a.pk
    assert endpoint.events == ["booking_confirmed", "schedule_stopped"]
    assert len(endpoint.secret) > 30 and endpoint.secret in response.content.decode()
    listing = client.get(url).content.decode()
    assert "https://partner.example/h" in listing and "schedule_stopped" in listing
    assert endpoint.secret not in listing
    assert endpoint.secret not in client.get(f"{url}{endpoint.pk}/change/").content.decode()


def test_platform_operator_sees_all_endpoints_and_deliveries(db, hospital_a, hospital_b,
                                                              operator, queued):
    WebhookEndpoint.objects.create(hospital=hospital_a, partner=_partner("甲伙伴"), url="http://a.example/",
                                   events=["*"])
    WebhookEndpoint.objects.create(hospital=hospital_b, partner=_partner("乙伙伴"), url="http://b.example/",
                                   events=["*"])
    event_relay(event_id=_event(hospital_a).pk)
    client = host_client("localhost", operator)
    page = client.get("/admin/notifications/webhookendpoint/").content.decode()
    assert "http://a.example/" in page and "http://b.example/" in page
    assert client.get("/admin/notifications/webhookdelivery/").status_code == 200


def test_verify_signature_rejects_forged_body_wrong_secret_and_stale(db):
    secret = "whsec_partner"
    body = b'{"id":"1:1","type":"announcement"}'
    now = int(time.time())
    good = {"Portal-Webhook-Timestamp": str(now),
            "Portal-Webhook-Signature": webhooks.sign(secret, now, body)}
    verify_readme = readme_verifier()
    for verify in (webhooks.verify_signature, verify_readme):
        assert verify(secret, good, body)
        assert verify(secret, {k.lower(): v for k, v in good.items()}, body)
        assert not verify(secret, good, body.replace(b"announcement", b"booking_confirmed"))
        assert not verify("whsec_other", good, body)
        stale = now - 301
        assert not verify(secret, {"Portal-Webhook-Timestamp": str(stale),
                                   "Portal-Webhook-Signature": webhooks.sign(secret, stale,
                                                                             body)}, body)
        future = now + 301
        assert not verify(secret, {"Portal-Webhook-Timestamp": str(future),
                                   "Portal-Webhook-Signature": webhooks.sign(secret, future,
                                                                             body)}, body)
        # a valid signature of one timestamp does not carry over to another
        assert not verify(secret, {**good, "Portal-Webhook-Timestamp": str(now - 1)}, body)
        assert not verify(secret, {"Portal-Webhook-Timestamp": "x"}, body)
        assert not verify(secret, {}, body)


def test_other_hospitals_and_unsubscribed_kinds_get_nothing(db, hospital_a, hospital_b,
                                                            receiver, queued):
    ra, rb, rc = receiver(), receiver(), receiver()
    WebhookEndpoint.objects.create(hospital=hospital_a, partner=_partner("a"), url=ra.url,
                                   events=["schedule_stopped"])
    WebhookEndpoint.objects.create(hospital=hospital_b, partner=_partner("b"), url=rb.url, events=["*"])
    WebhookEndpoint.objects.create(hospital=hospital_a, partner=_partner("off"), url=rc.url, events=["*"],
                                   is_active=False)
    for kind in ("booking_confirmed", "schedule_stopped", "announcement"):
        event_relay(event_id=_event(hospital_a, kind=kind).pk)
    deliveries = list(WebhookDelivery.objects.select_related("event"))
    assert [(d.endpoint.partner.name, d.event.kind) for d in deliveries] == [("a", "schedule_stopped")]
    for d in deliveries:
        webhooks.deliver(d.pk)
    assert len(ra.requests) == 1 and not rb.requests and not rc.requests
    assert json.loads(ra.requests[0][1])["type"] == "schedule_stopped"


def test_sweeper_requeues_overdue_deliveries(db, hospital_a, queued):
    WebhookEndpoint.objects.create(hospital=hospital_a, partner=_partner("p"), url="http://127.0.0.1:9/",
                                   events=["*"])
    event_relay(event_id=_event(hospital_a).pk)
    delivery = WebhookDelivery.objects.get()
    queued.clear()
    assert webhooks.sweep() == 0  # its own task was queued just now
    WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    assert webhooks.sweep() == 1 and queued == [([delivery.pk], None)]
    WebhookDelivery.objects.update(status="delivered")
    assert webhooks.sweep() == 0
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["notifications-webhooks-sweep"]  # beat runs it
    assert entry["task"] == "notifications.webhook_sweep" and entry["tenant_schemas"] == ["public"]


def test_events_without_a_hospital_send_no_webhooks(db, queued):
    event = OutboxEvent.objects.create(kind="announcement", context={"title": "t", "body": "b"})
    assert webhooks.deliveries_for_event(event) == []


# --------------------------------------------------------------------------- real worker


@pytest.mark.worker
def test_real_worker_retries_until_exactly_one_accepted_delivery(committed_hospital_a, tmp_path,
                                                                 settings, receiver):
    """A real worker on a private Redis: the endpoint fails 3 times, then accepts once."""
    import os
    import signal
    import subprocess

    import redis

    from portal.celery import WORKER_HEARTBEAT_KEY, app
    from tests.helpers import free_port, stop_process, subprocess_env
    from tests.portal.test_notifications_workers import _redis_server, _start, _wait, _worker_cmd

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    redis_proc = _redis_server(port)
    env = subprocess_env(REDIS_URL=url, TEST_REDIS_DB="0", WEBHOOK_BACKOFF_BASE_SECONDS="0.5")
    saved_broker = app.conf.broker_url
    r = receiver(fail=3)
    endpoint = WebhookEndpoint.objects.create(
        hospital=committed_hospital_a, partner=_partner(f"worker-test-{os.getpid()}"),
        url=r.url, events=["announcement"])
    event = None
    worker = _start(_worker_cmd(), env, open(tmp_path / "worker.log", "wb"))
    try:
        _wait(lambda: redis.Redis(port=port).exists(WORKER_HEARTBEAT_KEY), 60, "worker")
        app.conf.broker_url = url
        app._pool = None
        app.amqp._producer_pool = None
        settings.REDIS_URL = url
        # committed at once (autocommit): the relay is queued on commit, the worker does the rest
        event = notify(kind="announcement", hospital=endpoint.hospital, recipients=[],
                       context={"title": "门诊通知", "body": "明日起门诊楼 3 楼装修"})
        _wait(lambda: WebhookDelivery.objects.filter(event=event, status="delivered").exists(),
              60, "the delivery after three failures")
        time.sleep(2)  # nothing more arrives
        delivery = WebhookDelivery.objects.get(event=event)
        assert delivery.attempts == 4 and delivery.last_status_code == 200
        assert len(r.requests) == 4 and r.fail == -1  # 3 refused, exactly one accepted
        headers, body = r.requests[-1]
        assert readme_verifier()(endpoint.secret, headers, body)
    finally:
        app.conf.broker_url = saved_broker
        app._pool = None
        app.amqp._producer_pool = None
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        stop_process(redis_proc)
        endpoint.delete()  # committed: clean up (its deliveries go with it)
        if event is not None:
            event.delete()
