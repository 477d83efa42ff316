"""A local fake SMS gateway speaking the same small protocol as the real adapter expects.

    POST /v1/messages  {"messages": [{"id", "to", "text"}]}   (Authorization: Bearer KEY)
    GET  /v1/messages                                        every message accepted, in order

It accepts each message id once (a repeated id is acknowledged and not sent again), like
gateways that take a client message id. `make run` starts it on port 8002; tests start their
own. `python -m portal.dev.fake_sms --port 8002`.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from portal.dev.http import DevService, Request, Response, json_response, serve_cli


class FakeSmsGateway(DevService):
    def __init__(self, api_key: str = "sms-fake-key-dev-only") -> None:
        super().__init__()
        self.api_key = api_key
        self.lock = threading.Lock()
        self.accepted: dict[str, dict] = {}  # id -> message, in arrival order
        self.duplicates = 0
        self.fail_next = 0
        self.delay = 0.0  # seconds per request, to make a fan-out slow enough to interrupt

    # Any path: the gateway has one endpoint and never checked which path it was called on.
    def handle(self, request: Request) -> Response:
        if request.method == "POST":
            return self._send(request)
        if request.method != "GET":
            return Response(501)
        with self.lock:
            data = list(self.accepted.values())
        return json_response({"messages": data, "duplicates": self.duplicates})

    def _send(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return json_response({"code": "UNAUTHORIZED"}, status=401)
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            if self.fail_next:
                self.fail_next -= 1
                return json_response({"code": "BUSY"}, status=503)
            for message in json.loads(request.body)["messages"]:
                if message["id"] in self.accepted:
                    self.duplicates += 1
                else:
                    self.accepted[message["id"]] = message
        return json_response({"code": "OK"})


def main(argv: list[str] | None = None) -> int:
    return serve_cli(lambda args: FakeSmsGateway(), description="Fake SMS gateway",
                     default_port=8002, banner="fake SMS gateway on {url}/v1/messages", argv=argv)


if __name__ == "__main__":
    sys.exit(main())
