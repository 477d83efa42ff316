"""A local fake of the messaging app (a WeChat-like official account) over HTTP.

It speaks the protocol `messaging_app.py` uses (see there): access tokens that expire,
template-message sends with WeChat's error codes, and the web OAuth flow that binding uses.
`make run` starts it on port 8003; tests start their own (`FakeMessagingApp().start()`).
`python -m portal.notifications.fake_messaging_app --port 8003`.

For people and tests:
    GET  /                                the messages sent so far (HTML), newest first
    GET  /fake/messages                   JSON: {"messages": [...], "duplicates": n, ...}
    POST /fake/fail      {"errcodes": [-1, 43004], "openid": optional}
                                          the next template sends (to that openid) answer
                                          these error codes, one each
    POST /fake/expire-tokens              every access token issued so far is expired (42001)
    POST /fake/unsubscribe {"openid": X}  that user unfollowed the account (43004 from now on)

The authorize page asks which app user is signing in (a name; the openid is derived from it),
unless `login_as` is set (tests): then it redirects straight back with a code.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit


def openid_for(appid: str, name: str) -> str:
    """The fake's openid of an app user: stable per app and name, like a real openid."""
    return "o" + hashlib.sha256(f"{appid}:{name}".encode()).hexdigest()[:27]


class FakeMessagingApp:
    def __init__(self, appid: str = "wxfakeappid00dev",
                 secret: str = "fake-app-secret-dev-only", token_seconds: int = 7200) -> None:
        self.appid = appid
        self.secret = secret
        self.token_seconds = token_seconds
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}  # access token -> expires at (monotonic)
        self.codes: dict[str, tuple[str, float]] = {}  # OAuth code -> (openid, expires at)
        self.unsubscribed: set[str] = set()
        self.failures: list[tuple[str | None, int]] = []  # (openid or None, errcode)
        self.sent: list[dict] = []  # accepted template messages, in order
        self.attempts: list[dict] = []  # every send request: openid, errcode
        self.seen_client_ids: dict[tuple[str, str], int] = {}  # (openid, client id) -> msgid
        self.duplicates = 0
        self.token_requests = 0
        self.login_as: str | None = None  # tests: the app user who "taps Allow"
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}"

    # ------------------------------------------------------------------ test controls

    def fail_next(self, *errcodes: int, openid: str | None = None) -> None:
        with self.lock:
            self.failures.extend((openid, code) for code in errcodes)

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    def unsubscribe(self, openid: str) -> None:
        with self.lock:
            self.unsubscribed.add(openid)

    def messages_to(self, openid: str) -> list[dict]:
        with self.lock:
            return [m for m in self.sent if m["touser"] == openid]

    # ------------------------------------------------------------------ protocol

    def _token(self) -> dict:
        token = secrets.token_urlsafe(48)
        with self.lock:
            self.token_requests += 1
            self.tokens[token] = time.monotonic() + self.token_seconds
        return {"access_token": token, "expires_in": self.token_seconds}

    def _send(self, token: str, message: dict) -> dict:
        with self.lock:
            expires = self.tokens.get(token)
            openid = str(message.get("touser") or "")
            if expires is None:
                code, answer = 40001, {"errcode": 40001, "errmsg": "invalid credential, "
                                       "access_token is invalid or not latest"}
            elif expires < time.monotonic():
                code, answer = 42001, {"errcode": 42001, "errmsg": "access_token expired"}
            elif not openid.startswith("o") or len(openid) < 10:
                code, answer = 40003, {"errcode": 40003, "errmsg": "invalid openid"}
            elif not message.get("template_id"):
                code, answer = 40037, {"errcode": 40037, "errmsg": "invalid template_id"}
            elif not isinstance(message.get("data"), dict):
                code, answer = 47003, {"errcode": 47003, "errmsg": "argument invalid! data"}
            elif openid in self.unsubscribed:
                code, answer = 43004, {"errcode": 43004, "errmsg": "require subscribe"}
            else:
                injected = next((i for i, (who, _c) in enumerate(self.failures)
                                 if who in (None, openid)), None)
                if injected is not None:
                    code = self.failures.pop(injected)[1]
                    answer = {"errcode": code, "errmsg": "injected failure"}
                else:
                    code = 0
                    key = (openid, str(message.get("client_msg_id") or ""))
                    if key[1] and key in self.seen_client_ids:
                        self.duplicates += 1  # a repeat: acknowledged, not sent again
                        msgid = self.seen_client_ids[key]
                    else:
                        msgid = 1000 + len(self.sent)
                        self.sent.append({**message, "msgid": msgid})
                        if key[1]:
                            self.seen_client_ids[key] = msgid
                    answer = {"errcode": 0, "errmsg": "ok", "msgid": msgid}
            self.attempts.append({"openid": openid, "errcode": code,
                                  "client_msg_id": message.get("client_msg_id", "")})
        return answer

    def _code_for(self, openid: str) -> str:
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.codes[code] = (openid, time.monotonic() + 300)
        return code

    def _exchange(self, code: str) -> dict:
        with self.lock:
            openid, expires = self.codes.pop(code, ("", 0.0))  # a code works once
        if not openid or expires < time.monotonic():
            return {"errcode": 40029, "errmsg": "invalid code"}
        return {"access_token": secrets.token_urlsafe(32), "expires_in": 7200,
                "refresh_token": secrets.token_urlsafe(32), "openid": openid,
                "scope": "snsapi_base"}

    # ------------------------------------------------------------------ server

    def start(self, port: int = 0) -> FakeMessagingApp:
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - stdlib name
                parts = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/cgi-bin/token":
                    if q.get("grant_type") != "client_credential":
                        return self._json({"errcode": 40002, "errmsg": "invalid grant_type"})
                    if q.get("appid") != app.appid:
                        return self._json({"errcode": 40013, "errmsg": "invalid appid"})
                    if q.get("secret") != app.secret:
                        return self._json({"errcode": 40125, "errmsg": "invalid appsecret"})
                    return self._json(app._token())
                if parts.path == "/sns/oauth2/access_token":
                    if q.get("appid") != app.appid or q.get("secret") != app.secret:
                        return self._json({"errcode": 40125, "errmsg": "invalid appsecret"})
                    return self._json(app._exchange(q.get("code", "")))
                if parts.path == "/connect/oauth2/authorize":
                    return self._authorize(q)
                if parts.path == "/fake/messages":
                    with app.lock:
                        return self._json({"messages": list(app.sent),
                                           "duplicates": app.duplicates,
                                           "token_requests": app.token_requests})
                if parts.path == "/":
                    return self._index()
                return self._json({"errcode": 404, "errmsg": "not found"}, status=404)

            def do_POST(self):  # noqa: N802
                parts = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                form = {k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()}
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                if parts.path == "/cgi-bin/message/template/send":
                    if not isinstance(body, dict):
                        return self._json({"errcode": 47001, "errmsg": "data format error"})
                    return self._json(app._send(q.get("access_token", ""), body))
                if parts.path == "/connect/oauth2/authorize":  # the Allow button
                    name = form.get("name", "").strip() or "demo"
                    return self._back(form, openid_for(app.appid, name))
                body = body if isinstance(body, dict) else {}
                if parts.path == "/fake/fail":
                    app.fail_next(*[int(c) for c in body.get("errcodes", [])],
                                  openid=body.get("openid"))
                    return self._json({"ok": True})
                if parts.path == "/fake/expire-tokens":
                    app.expire_tokens()
                    return self._json({"ok": True})
                if parts.path == "/fake/unsubscribe":
                    app.unsubscribe(str(body.get("openid", "")))
                    return self._json({"ok": True})
                return self._json({"errcode": 404, "errmsg": "not found"}, status=404)

            def _authorize(self, q):
                if q.get("appid") != app.appid:
                    return self._page(400, "<p>invalid appid</p>")
                if not q.get("redirect_uri", "").startswith(("http://", "https://")):
                    return self._page(400, "<p>invalid redirect_uri</p>")
                if app.login_as:
                    return self._back(q, openid_for(app.appid, app.login_as))
                hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" '
                                 f'value="{html.escape(q.get(k, ""))}">'
                                 for k in ("appid", "redirect_uri", "state"))
                return self._page(200, (
                    "<h1>Fake messaging app</h1><p>A site asks to know who you are in this "
                    "app, to send you notices.</p><form method=post>" + hidden +
                    "<p><label>Sign in as <input name=name value=demo></label></p>"
                    "<button>Allow</button></form>"))

            def _back(self, q, openid):
                target = urlsplit(q.get("redirect_uri", ""))
                query = (target.query + "&" if target.query else "") + urlencode(
                    {"code": app._code_for(openid), "state": q.get("state", "")})
                self.send_response(302)
                self.send_header("Location", urlunsplit(target._replace(query=query)))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _index(self):
                with app.lock:
                    rows = "".join(
                        f"<li><b>{html.escape(m['data'].get('first', {}).get('value', ''))}</b>"
                        f" → {html.escape(m['touser'][:4])}…<br>"
                        f"{html.escape(m['data'].get('keyword2', {}).get('value', ''))}</li>"
                        for m in reversed(app.sent[-100:]))
                return self._page(200, "<h1>Fake messaging app: template messages</h1>"
                                       f"<ul>{rows or '<li>none yet</li>'}</ul>")

            def _page(self, status, body):
                data = ("<!doctype html><meta charset=utf-8><title>Fake messaging app</title>"
                        + body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _json(self, payload, status=200):
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
    parser = argparse.ArgumentParser(description="Fake messaging app (template messages)")
    parser.add_argument("--port", type=int, default=8003)
    parser.add_argument("--appid", default="wxfakeappid00dev")
    parser.add_argument("--secret", default="fake-app-secret-dev-only")
    args = parser.parse_args()
    app = FakeMessagingApp(appid=args.appid, secret=args.secret).start(args.port)
    print(f"fake messaging app on {app.url}/ (sent messages there)", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
