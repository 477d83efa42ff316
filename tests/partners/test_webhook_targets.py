"""Webhook endpoints must be public addresses: a partner cannot make our workers POST into our
own network (loopback, private, link-local: SSRF). Local development and the other tests allow
127.0.0.1 (WEBHOOK_ALLOW_PRIVATE_TARGETS); these tests switch that off."""

from __future__ import annotations

import pytest

from portal.notifications import webhooks
from portal.notifications.models import WebhookDelivery, WebhookEndpoint
from portal.notifications.services import event_relay
from tests.conftest import make_user
from tests.portal.test_webhooks import _drive, _event, _partner, queued, receiver  # noqa: F401


@pytest.fixture
def public_only(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:6379/", "http://localhost/hooks", "http://10.1.2.3/h",
    "http://192.168.0.10/h", "http://172.16.5.5/h", "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/h", "http://100.64.0.1/h", "http://0.0.0.0/h", "ftp://93.184.216.34/h",
])
def test_webhook_target_non_public_addresses_are_refused(public_only, url):
    with pytest.raises(webhooks.TargetNotAllowed):
        webhooks.check_target(url)


def test_webhook_target_public_address_is_accepted(public_only):
    webhooks.check_target("https://93.184.216.34/hooks")  # an address literal: no DNS needed


def test_webhook_target_allowed_locally_when_the_setting_says_so(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    webhooks.check_target("http://127.0.0.1:9/hooks")


def test_webhook_target_partner_api_refuses_a_private_url_and_creates_nothing(
        public_only, hospital_a, api_a):
    response = api_a.post("webhooks/", {"url": "http://169.254.169.254/latest/", "events": ["*"]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "webhook_target_not_allowed" in str(error["details"])
    assert not WebhookEndpoint.objects.filter(url__contains="169.254").exists()

    response = api_a.post("webhooks/", {"url": "https://93.184.216.34/hooks", "events": ["*"]})
    assert response.status_code == 201


def test_webhook_target_admin_form_refuses_a_private_url(public_only, hospital_a):
    from django.core.exceptions import ValidationError

    endpoint = WebhookEndpoint(hospital=hospital_a, partner=_partner("内网"), url="http://10.0.0.8/h",
                               events=["*"])
    with pytest.raises(ValidationError) as excinfo:
        endpoint.full_clean()
    assert "url" in excinfo.value.message_dict


def test_webhook_target_delivery_to_a_private_address_is_dead_at_once_and_sends_nothing(
        db, settings, hospital_a, receiver, queued):  # noqa: F811 (imported fixtures)
    r = receiver()
    # Registered while private targets were allowed (or DNS pointed elsewhere then) ...
    WebhookEndpoint.objects.create(hospital=hospital_a, partner=_partner("改址 App"), url=r.url,
                                   events=["booking_confirmed"])
    event = _event(hospital_a, recipients=[make_user()])
    assert event_relay(event_id=event.pk) == 1
    delivery = WebhookDelivery.objects.get()
    # ... and now the address is refused: no request, no retries.
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    assert _drive(delivery, 1) == ["dead"]
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and "target not allowed" in delivery.last_error
    assert r.requests == []
    assert [c for _ids, c in queued if c is not None] == []
