"""Webhook endpoints must be public addresses: a partner cannot make our workers POST into our
own network (loopback, private, link-local: SSRF). Local development and the other tests allow
127.0.0.1 (WEBHOOK_ALLOW_PRIVATE_TARGETS); these tests switch that off."""

from __future__ import annotations

import json

import pytest

from portal.notifications import webhooks
from portal.notifications.models import WebhookDelivery, WebhookEndpoint
from portal.notifications.services import event_relay
from tests.helpers import make_user
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


# --------------------------------------------------------------------------- DNS rebinding


class RebindingDNS:
    """socket.getaddrinfo for one host name, answering `answers` in turn (the last one from then
    on), like a hostile DNS server with a zero TTL; other names resolve as usual."""

    def __init__(self, monkeypatch, host: str, *answers: str) -> None:
        import socket

        self.host, self.answers, self.calls = host, list(answers), 0
        real = socket.getaddrinfo

        def getaddrinfo(name, port, *args, **kwargs):
            if name != host:
                return real(name, port, *args, **kwargs)
            address = self.answers[min(self.calls, len(self.answers) - 1)]
            self.calls += 1
            return real(address, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def connects(monkeypatch):
    """TCP connects of this process (but to PostgreSQL and Redis), recorded; anything but
    loopback is refused at once (no internet here, and no waiting for a timeout)."""
    import socket
    from urllib.parse import urlsplit

    from django.conf import settings

    seen: list[str] = []
    real = socket.socket.connect
    services = {str(settings.DATABASES["default"].get("PORT")), str(urlsplit(settings.REDIS_URL).port)}

    def connect(sock, address):
        if isinstance(address, tuple) and str(address[1]) not in services:
            seen.append(address[0])
        if not address[0].startswith("127."):
            raise ConnectionRefusedError(111, "refused (test)")
        return real(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


def _endpoint_delivery(hospital, url: str) -> WebhookDelivery:
    WebhookEndpoint.objects.create(hospital=hospital, partner=_partner("换址 App"), url=url,
                                   events=["booking_confirmed"])
    assert event_relay(event_id=_event(hospital, recipients=[make_user()]).pk) == 1
    return WebhookDelivery.objects.get()


def test_webhook_target_dns_rebinding_cannot_redirect_the_delivery_to_loopback(
        db, monkeypatch, public_only, hospital_a, receiver, queued, connects):  # noqa: F811
    """The check sees a public address, the name then resolves to 127.0.0.1 (our receiver): the
    POST goes to the checked address (refused here), never to the second answer."""
    r = receiver()
    port = r.server.server_address[1]
    delivery = _endpoint_delivery(hospital_a, f"http://hooks.rebind.example:{port}/hooks")
    dns = RebindingDNS(monkeypatch, "hooks.rebind.example", "93.184.216.34", "127.0.0.1")

    assert _drive(delivery, 1) == ["failed"]  # a connection error: retried later, re-checked
    assert dns.calls == 1
    assert connects == ["93.184.216.34"]
    assert r.requests == []
    delivery.refresh_from_db()
    assert "refused" in delivery.last_error

    # The next attempt resolves afresh: now loopback, refused before any connection.
    assert _drive(delivery, 1) == ["dead"]
    assert connects == ["93.184.216.34"] and r.requests == []


def test_webhook_target_allowed_private_targets_are_still_pinned(
        db, monkeypatch, hospital_a, receiver, queued, connects):  # noqa: F811
    """WEBHOOK_ALLOW_PRIVATE_TARGETS lets 127.0.0.1 through, and the POST still goes to the
    address that was resolved (the receiver), not to a later answer (127.0.0.2: nothing)."""
    r = receiver()
    port = r.server.server_address[1]
    delivery = _endpoint_delivery(hospital_a, f"http://hooks.local.example:{port}/hooks?a=1")
    dns = RebindingDNS(monkeypatch, "hooks.local.example", "127.0.0.1", "127.0.0.2")

    assert _drive(delivery, 1) == ["delivered"]
    assert dns.calls == 1 and connects == ["127.0.0.1"]
    [(headers, body)] = r.requests
    assert headers["Host"] == f"hooks.local.example:{port}"
    assert json.loads(body)["type"] == "booking_confirmed"


def test_webhook_target_every_resolved_address_is_checked(monkeypatch, public_only):
    import socket

    real = socket.getaddrinfo

    def two_answers(name, port, *args, **kwargs):
        if name != "dual.example":
            return real(name, port, *args, **kwargs)
        return [*real("93.184.216.34", port, *args, **kwargs),
                *real("10.0.0.7", port, *args, **kwargs)]

    monkeypatch.setattr(socket, "getaddrinfo", two_answers)
    with pytest.raises(webhooks.TargetNotAllowed):
        webhooks.resolve_target("https://dual.example/h")
    assert [sockaddr[:2] for _f, sockaddr in webhooks.resolve_target("https://93.184.216.34/h")] \
        == [("93.184.216.34", 443)]


def test_webhook_target_https_is_pinned_with_sni_and_verification_for_the_host_name(connects):
    """An https target: the TCP connection goes to the checked address, TLS is negotiated for
    the URL's host name (SNI, and the certificate must match it), with a verifying context."""
    import socket
    import ssl

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    wrapped: list[dict] = []

    class RecordingContext:
        def wrap_socket(self, sock, server_hostname=None, **kwargs):
            wrapped.append({"server_hostname": server_hostname, "peer": sock.getpeername()})
            return sock

    try:
        conn = webhooks.PinnedHTTPSConnection(
            "hooks.partner.example", 443, addresses=[(socket.AF_INET, ("127.0.0.1", port))],
            timeout=5, context=RecordingContext())
        conn.connect()
        conn.close()
    finally:
        listener.close()
    assert wrapped == [{"server_hostname": "hooks.partner.example", "peer": ("127.0.0.1", port)}]
    assert connects == ["127.0.0.1"]

    default = webhooks.PinnedHTTPSConnection("hooks.partner.example", addresses=[])._context
    assert default.verify_mode == ssl.CERT_REQUIRED and default.check_hostname is True


def _self_signed(tmp_path, host: str) -> tuple[str, str]:
    """A certificate for `host` (its own CA), as PEM files: (certificate, key)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_webhook_target_https_pinned_connection_verifies_the_certificate_of_the_host_name(
        tmp_path):
    """Real TLS on 127.0.0.1 with a certificate for hooks.partner.example: the pinned connection
    for that name is accepted; the same address under another name is refused."""
    import socket
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    cert, key = _self_signed(tmp_path, "hooks.partner.example")
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    pinned = [(socket.AF_INET, ("127.0.0.1", port))]

    def post(host: str) -> int:
        client_context = ssl.create_default_context(cafile=cert)
        conn = webhooks.PinnedHTTPSConnection(host, port, addresses=pinned, timeout=5,
                                              context=client_context)
        try:
            conn.request("POST", "/h", body=b"{}", headers={"Content-Type": "application/json"})
            return conn.getresponse().status
        finally:
            conn.close()

    try:
        assert post("hooks.partner.example") == 204
        assert seen == [f"hooks.partner.example:{port}"]
        with pytest.raises(ssl.SSLCertVerificationError):
            post("other.example")
    finally:
        server.shutdown()
        server.server_close()
