"""A local fake SMS gateway speaking the same small protocol as the real adapter expects.

    POST /v1/messages  {"messages": [{"id", "to", "text"}]}   (Authorization: Bearer KEY)
    GET  /v1/messages                                        every message accepted, in order

It accepts each message id once (a repeated id is acknowledged and not sent again), like
gateways that take a client message id. `make run` starts it on port 8002; tests start their
own. `python -m portal.notifications.fake_sms --port 8002`.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeSmsGateway:
    def __init__(self, api_key: str = "sms-fake-key-dev-only") -> None:
        self.api_key = api_key
        self.lock = threading.Lock()
        self.accepted: dict[str, dict] = {}  # id -> message, in arrival order
        self.duplicates = 0
        self.fail_next = 0
        self.delay = 0.0  # seconds per request, to make a fan-out slow enough to interrupt
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self, port: int = 0) -> FakeSmsGateway:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - stdlib name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.headers.get("Authorization") != f"Bearer {gateway.api_key}":
                    return self._answer(401, {"code": "UNAUTHORIZED"})
                if gateway.delay:
                    import time

                    time.sleep(gateway.delay)
                with gateway.lock:
                    if gateway.fail_next:
                        gateway.fail_next -= 1
                        return self._answer(503, {"code": "BUSY"})
                    for message in json.loads(body)["messages"]:
                        if message["id"] in gateway.accepted:
                            gateway.duplicates += 1
                        else:
                            gateway.accepted[message["id"]] = message
                return self._answer(200, {"code": "OK"})

            def do_GET(self):  # noqa: N802
                with gateway.lock:
                    data = list(gateway.accepted.values())
                return self._answer(200, {"messages": data, "duplicates": gateway.duplicates})

            def _answer(self, status, payload):
                data = json.dumps(payload, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake SMS gateway")
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    gateway = FakeSmsGateway().start(args.port)
    print(f"fake SMS gateway on {gateway.url}/v1/messages", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
