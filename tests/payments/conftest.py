"""Payment fixtures: the sandbox provider over real HTTP, and a catcher for its callbacks."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from payments.sandbox.server import serve


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
    server, app = serve(0, tmp_path_factory.mktemp("sandbox"), "sandbox-master-secret-dev-only",
                        test_hooks=True)
    app.retry_delays = [0.5, 1, 2]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield app
    server.shutdown()


@pytest.fixture
def sandbox(sandbox_server, settings):
    settings.SANDBOX_PAY_URL = sandbox_server.base_url
    return sandbox_server


@pytest.fixture(scope="session")
def _catcher_server():
    catcher = CallbackCatcher(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - stdlib name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            catcher.requests.append(Caught(self.path, dict(self.headers.items()), body))
            self.send_response(catcher.status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    catcher.url = f"http://127.0.0.1:{server.server_port}/notify"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield catcher
    server.shutdown()


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
    server, app = serve(0, tmp_path / "sandbox", "sandbox-master-secret-dev-only", test_hooks=True)
    app.retry_delays = [0.5, 1, 2]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.SANDBOX_PAY_URL = app.base_url
    yield app
    server.shutdown()
