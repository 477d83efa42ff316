"""Payment fixtures: the sandbox provider over real HTTP, and a catcher for its callbacks."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field

import pytest

from portal.dev.http import DevService, Request, Response
from portal.dev.sandbox_pay import Sandbox


@dataclass
class Caught:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class CallbackCatcher:
    """Stands where the hospital's notify URL would be; answers `status` (500 = retry later)."""

    url: str
    status: int = 500
    requests: list[Caught] = field(default_factory=list)

    def wait_for(self, event_type: str, out_trade_no: str, timeout: float = 15) -> Caught:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for c in self.requests:
                body = c.json
                if body["event_type"] == event_type and body["resource"]["out_trade_no"] == out_trade_no:
                    return c
            time.sleep(0.05)
        raise AssertionError(f"no {event_type} callback for {out_trade_no}")


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory):
    app = Sandbox(tmp_path_factory.mktemp("sandbox"), "sandbox-master-secret-dev-only",
                  test_hooks=True).start()
    app.retry_delays = [0.5, 1, 2]
    yield app
    app.stop()


@pytest.fixture
def sandbox(sandbox_server, settings):
    settings.SANDBOX_PAY_URL = sandbox_server.base_url
    return sandbox_server


@pytest.fixture(scope="session")
def _catcher_server():
    catcher = CallbackCatcher(url="")

    class Notify(DevService):
        def handle(self, request: Request) -> Response:
            if request.method != "POST":
                return Response(501)
            catcher.requests.append(Caught(request.target, dict(request.headers.items()),
                                           request.body))
            return Response(catcher.status)

    server = Notify().start()
    catcher.url = f"{server.url}/notify"
    yield catcher
    server.stop()


@pytest.fixture
def catcher(_catcher_server):
    _catcher_server.requests.clear()
    _catcher_server.status = 500
    return _catcher_server


def sandbox_hook(sandbox_app, path: str, payload: dict) -> dict:
    req = urllib.request.Request(sandbox_app.base_url + path, data=json.dumps(payload).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture
def fresh_sandbox(tmp_path, settings):
    """A sandbox of this test's own: its statement lists only this test's payments."""
    app = Sandbox(tmp_path / "sandbox", "sandbox-master-secret-dev-only", test_hooks=True).start()
    app.retry_delays = [0.5, 1, 2]
    settings.SANDBOX_PAY_URL = app.base_url
    yield app
    app.stop()
