"""A local fake of the messaging app (a WeChat-like official account) over HTTP.

It speaks the protocol `portal/notifications/messaging_app.py` uses (see there): access tokens
that expire, template-message sends with WeChat's error codes, and the web OAuth flow that
binding uses.
`make run` starts it on port 8003; tests start their own (`FakeMessagingApp().start()`).
`python -m portal.dev.fake_messaging_app --port 8003`.

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
import secrets
import sys
import threading
import time
from urllib.parse import urlencode, urlsplit, urlunsplit

from portal.dev.http import DevService, Request, Response, html_response, json_response, redirect, serve_cli


def openid_for(appid: str, name: str) -> str:
    """The fake's openid of an app user: stable per app and name, like a real openid."""
    return "o" + hashlib.sha256(f"{appid}:{name}".encode()).hexdigest()[:27]


class FakeMessagingApp(DevService):
    def __init__(self, appid: str = "wxfakeappid00dev",
                 secret: str = "fake-app-secret-dev-only", token_seconds: int = 7200) -> None:
        super().__init__()
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
        self.routes = {
            ("GET", "/cgi-bin/token"): self._get_token,
            ("GET", "/sns/oauth2/access_token"): self._get_oauth_token,
            ("GET", "/connect/oauth2/authorize"): self._authorize,
            ("GET", "/fake/messages"): self._get_messages,
            ("GET", "/"): self._index,
            ("POST", "/cgi-bin/message/template/send"): self._post_template_send,
            ("POST", "/connect/oauth2/authorize"): self._post_allow,
            ("POST", "/fake/fail"): self._post_fail,
            ("POST", "/fake/expire-tokens"): self._post_expire_tokens,
            ("POST", "/fake/unsubscribe"): self._post_unsubscribe,
        }

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

    # ------------------------------------------------------------------ HTTP
    def _get_token(self, request: Request) -> Response:
        q = request.query
        if q.get("grant_type") != "client_credential":
            return json_response({"errcode": 40002, "errmsg": "invalid grant_type"})
        if q.get("appid") != self.appid:
            return json_response({"errcode": 40013, "errmsg": "invalid appid"})
        if q.get("secret") != self.secret:
            return json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        return json_response(self._token())

    def _get_oauth_token(self, request: Request) -> Response:
        q = request.query
        if q.get("appid") != self.appid or q.get("secret") != self.secret:
            return json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        return json_response(self._exchange(q.get("code", "")))

    def _get_messages(self, request: Request) -> Response:
        with self.lock:
            return json_response({"messages": list(self.sent), "duplicates": self.duplicates,
                                  "token_requests": self.token_requests})

    def _post_template_send(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            return json_response({"errcode": 47001, "errmsg": "data format error"})
        return json_response(self._send(request.query.get("access_token", ""), body))

    def _post_allow(self, request: Request) -> Response:  # the Allow button
        form = request.form()
        name = form.get("name", "").strip() or "demo"
        return self._back(form, openid_for(self.appid, name))

    def _control(self, request: Request) -> dict:
        body = request.json()
        return body if isinstance(body, dict) else {}

    def _post_fail(self, request: Request) -> Response:
        body = self._control(request)
        self.fail_next(*[int(c) for c in body.get("errcodes", [])], openid=body.get("openid"))
        return json_response({"ok": True})

    def _post_expire_tokens(self, request: Request) -> Response:
        self.expire_tokens()
        return json_response({"ok": True})

    def _post_unsubscribe(self, request: Request) -> Response:
        self.unsubscribe(str(self._control(request).get("openid", "")))
        return json_response({"ok": True})

    def not_found(self, request: Request) -> Response:
        return json_response({"errcode": 404, "errmsg": "not found"}, status=404)

    def _authorize(self, request: Request) -> Response:
        q = request.query
        if q.get("appid") != self.appid:
            return _page(400, "<p>invalid appid</p>")
        if not q.get("redirect_uri", "").startswith(("http://", "https://")):
            return _page(400, "<p>invalid redirect_uri</p>")
        if self.login_as:
            return self._back(q, openid_for(self.appid, self.login_as))
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" '
                         f'value="{html.escape(q.get(k, ""))}">'
                         for k in ("appid", "redirect_uri", "state"))
        return _page(200, (
            "<h1>Fake messaging app</h1><p>A site asks to know who you are in this "
            "app, to send you notices.</p><form method=post>" + hidden +
            "<p><label>Sign in as <input name=name value=demo></label></p>"
            "<button>Allow</button></form>"))

    def _back(self, q: dict[str, str], openid: str) -> Response:
        target = urlsplit(q.get("redirect_uri", ""))
        query = (target.query + "&" if target.query else "") + urlencode(
            {"code": self._code_for(openid), "state": q.get("state", "")})
        return redirect(urlunsplit(target._replace(query=query)))

    def _index(self, request: Request) -> Response:
        with self.lock:
            rows = "".join(
                f"<li><b>{html.escape(m['data'].get('first', {}).get('value', ''))}</b>"
                f" → {html.escape(m['touser'][:4])}…<br>"
                f"{html.escape(m['data'].get('keyword2', {}).get('value', ''))}</li>"
                for m in reversed(self.sent[-100:]))
        return _page(200, "<h1>Fake messaging app: template messages</h1>"
                          f"<ul>{rows or '<li>none yet</li>'}</ul>")


def _page(status: int, body: str) -> Response:
    return html_response("<!doctype html><meta charset=utf-8><title>Fake messaging app</title>"
                         + body, status=status)


def main(argv: list[str] | None = None) -> int:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--appid", default="wxfakeappid00dev")
        parser.add_argument("--secret", default="fake-app-secret-dev-only")

    return serve_cli(lambda args: FakeMessagingApp(appid=args.appid, secret=args.secret),
                     description="Fake messaging app (template messages)", default_port=8003,
                     banner="fake messaging app on {url}/ (sent messages there)",
                     add_arguments=add_arguments, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
