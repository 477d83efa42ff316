"""The small HTTP-service base every development fake shares.

A fake subclasses `DevService` and answers `Request`s with `Response`s, either by listing exact
`(method, path)` routes or by overriding `handle()` when its paths have parameters. The base
owns the plumbing: a threading server on 127.0.0.1 (port 0 picks a free one), body and
JSON/form parsing, quiet logging, a 500 for a fake's own bug instead of a dropped connection,
`start()` / `stop()` for tests, and `serve_cli()` for `python -m portal.dev.<fake> --port N`,
which stops cleanly on SIGTERM (how `make run` stops its children) or Ctrl-C.

The server speaks HTTP/1.0 (one request per connection), as the fakes always did.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

JSON = "application/json"
HTML = "text/html; charset=utf-8"


@dataclass
class Request:
    method: str
    target: str  # as sent: path and query
    headers: Message  # case-insensitive
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query_string(self) -> str:
        return urlsplit(self.target).query

    @property
    def query(self) -> dict[str, str]:
        """Query parameters, the first value of each."""
        return {k: v[0] for k, v in parse_qs(self.query_string).items()}

    def form(self) -> dict[str, str]:
        """An urlencoded body, the first value of each field."""
        return {k: v[0] for k, v in parse_qs(self.body.decode(errors="replace")).items()}

    def json(self, default: Any = None) -> Any:
        """The JSON body (`{}` when empty), or `default` when it is not JSON."""
        try:
            return json.loads(self.body or b"{}")
        except ValueError:
            return default


@dataclass
class Response:
    """Content-Length is added unless set here, or the status is 204 (no body by definition)."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)  # sent in this order


def json_response(payload: Any, status: int = 200, content_type: str = JSON,
                  headers: Iterable[tuple[str, str]] = ()) -> Response:
    data = json.dumps(payload, ensure_ascii=False).encode()
    return Response(status, data, [("Content-Type", content_type), *headers])


def html_response(body: str, status: int = 200) -> Response:
    return Response(status, body.encode(), [("Content-Type", HTML)])


def redirect(location: str, status: int = 302) -> Response:
    return Response(status, b"", [("Location", location)])


Route = Callable[[Request], Response]


class DevService:
    """Subclass and fill `routes` (in `__init__`) or override `handle()`."""

    poll_interval = 0.5  # how fast `stop()` returns; fakes in tests shorten it

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.server: ThreadingHTTPServer | None = None
        self.host = "127.0.0.1"

    # ------------------------------------------------------------------ answering
    def handle(self, request: Request) -> Response:
        route = self.routes.get((request.method, request.path))
        if route is None:
            return self.not_found(request)
        return route(request)

    def not_found(self, request: Request) -> Response:
        return json_response({"code": "NOT_FOUND"}, status=404)

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        assert self.server is not None, "start() the service first"
        return self.server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, port: int = 0, host: str = "127.0.0.1") -> Self:
        """Serve in a daemon thread; port 0 picks a free port (read it from `url`)."""
        self.host = host
        self.server = ThreadingHTTPServer((host, port), _handler_for(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name=type(self).__name__,
                         kwargs={"poll_interval": self.poll_interval}, daemon=True).start()
        self.started()
        return self

    def started(self) -> None:
        """Hook: runs once the port is bound."""

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self) -> Self:
        return self if self.server is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler_for(service: DevService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(self.command, self.path, self.headers, body)
            try:
                response = service.handle(request)
            except Exception:
                traceback.print_exc()
                response = Response(500, b"internal error in the fake",
                                    [("Content-Type", "text/plain")])
            try:
                self.send_response(response.status)
                for name, value in response.headers:
                    self.send_header(name, value)
                named = {name.lower() for name, _ in response.headers}
                if "content-length" not in named and response.status != 204:
                    self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting: the answer is lost, as in real life

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch  # noqa: N815 - stdlib names

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

    return Handler


def serve_cli(build: Callable[[argparse.Namespace], DevService], *, description: str,
              default_port: int, banner: str,
              add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
              argv: list[str] | None = None) -> int:
    """`python -m portal.dev.<fake> --port N [...]`: serve until SIGTERM or Ctrl-C.

    `banner` is printed once serving, formatted with `url` (the first line of output, which
    tests wait for)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=default_port)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    service = build(args).start(args.port, host=getattr(args, "host", "127.0.0.1"))
    print(banner.format(url=service.url), flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        service.stop()
    return 0

