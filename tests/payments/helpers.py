"""Payment test tools: a catcher for the sandbox provider's callbacks, and its test hooks."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field


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


def sandbox_hook(sandbox_app, path: str, payload: dict) -> dict:
    req = urllib.request.Request(sandbox_app.base_url + path, data=json.dumps(payload).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())
