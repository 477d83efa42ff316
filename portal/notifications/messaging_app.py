"""The messaging app (a WeChat-like official account): access token, template messages, and
the web OAuth flow that tells us a patient's app user id (openid) for binding.

Protocol (the same as WeChat official accounts; `portal/dev/fake_messaging_app.py` speaks it locally):

    GET  /cgi-bin/token?grant_type=client_credential&appid=A&secret=S
         -> {"access_token": T, "expires_in": 7200}
    POST /cgi-bin/message/template/send?access_token=T
         {"touser": openid, "template_id", "url", "data": {...}, "client_msg_id"}
         -> {"errcode": 0, "errmsg": "ok", "msgid": 123}
    browser: /connect/oauth2/authorize?appid=A&redirect_uri=U&response_type=code
             &scope=snsapi_base&state=X#wechat_redirect   -> U?code=C&state=X
    GET  /sns/oauth2/access_token?appid=A&secret=S&code=C&grant_type=authorization_code
         -> {"access_token", "expires_in", "openid", "scope"}

A non-zero errcode is an error. The access token belongs to the app, not to a hospital, so it
is cached in Redis under a tenant-independent key, refreshed before it expires, and refreshed
once when the app says it is invalid or expired (another process may have replaced it).
Secrets, tokens and full openids are never logged or put into error texts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.error
import urllib.request
from urllib.parse import urlencode

import redis
from django.conf import settings
from django.core import signing
from django.utils.crypto import constant_time_compare, get_random_string

log = logging.getLogger(__name__)

#: The access token was replaced (40001 invalid credential, 40014 invalid token) or expired.
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
#: Worth trying again later: system busy, API frequency / quota limits.
RETRYABLE_ERRORS = frozenset({-1, 45009, 45011})
# Everything else is permanent for that message, e.g. 43004 (the user unfollowed the account),
# 40003 (invalid openid), 40037 (invalid template id), 47003 (bad template data).

TIMEOUT = 10
#: Refresh this long before the app's expiry (at most a fifth of the token's life).
EARLY_REFRESH_SECONDS = 300


class MessagingAppError(Exception):
    def __init__(self, errcode: int, errmsg: str, *, retryable: bool) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.retryable = retryable
        super().__init__(f"messaging app errcode {errcode}: {errmsg}"[:200])


def enabled() -> bool:
    return bool(settings.MESSAGING_APP_URL)


def app_id() -> str:
    return settings.MESSAGING_APP_APPID


def template_for(kind: str) -> str:
    return settings.MESSAGING_APP_TEMPLATES.get(kind) or settings.MESSAGING_APP_TEMPLATE_ID


def _api(path: str, **query: str) -> str:
    return f"{settings.MESSAGING_APP_URL.rstrip('/')}{path}?{urlencode(query)}"


def _call(url: str, body: dict | None = None) -> dict:
    """GET (or POST JSON) and return the JSON answer; transport trouble is retryable."""
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:  # never echo the URL: it carries secrets
        raise MessagingAppError(-2, f"HTTP {exc.code}", retryable=True) from None
    except (OSError, ValueError) as exc:
        raise MessagingAppError(-3, type(exc).__name__, retryable=True) from None


def _check(answer: dict) -> dict:
    code = int(answer.get("errcode") or 0)
    if code:
        raise MessagingAppError(code, str(answer.get("errmsg", ""))[:100],
                                retryable=code in RETRYABLE_ERRORS or code in TOKEN_ERRORS)
    return answer


# --------------------------------------------------------------------------- access token


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2)


def token_cache_key() -> str:
    """Per app (and API host), never per hospital: every worker shares one token."""
    host = hashlib.sha256(settings.MESSAGING_APP_URL.encode()).hexdigest()[:10]
    return f"portal:msgapp:token:{host}:{app_id()}"


def access_token(*, replacing: str | None = None) -> str:
    """The app's access token from Redis, fetched when missing. With `replacing`, the app
    refused that token: fetch a new one unless another process already has."""
    client = _redis()
    key = token_cache_key()

    def usable(raw: bytes | None) -> str | None:
        token = raw.decode() if raw else None
        return token if token and token != replacing else None

    token = usable(client.get(key))
    if token:
        return token
    # One fetch at a time: with WeChat, every fetch replaces the token the others hold.
    with client.lock(key + ":lock", timeout=30, blocking_timeout=30):
        token = usable(client.get(key))
        if token:
            return token
        answer = _check(_call(_api("/cgi-bin/token", grant_type="client_credential",
                                   appid=app_id(), secret=settings.MESSAGING_APP_SECRET)))
        token = answer["access_token"]
        life = int(answer.get("expires_in") or 7200)
        ttl = max(1, life - min(EARLY_REFRESH_SECONDS, life // 5))
        client.set(key, token, ex=ttl)
        log.info("messaging app: new access token (valid %ss, cached %ss)", life, ttl)
        return token


# --------------------------------------------------------------------------- template messages


def template_data(*, title: str, body: str, source: str, when: str) -> dict:
    """The data of the generic template (first / keyword1..3 / remark): every per-event
    template configured in MESSAGING_APP_TEMPLATES uses the same fields."""
    def value(text: str) -> dict:
        return {"value": text[:200]}

    return {"first": value(title), "keyword1": value(source), "keyword2": value(body),
            "keyword3": value(when), "remark": value("")}


def template_send(*, openid: str, template_id: str, data: dict, url: str = "",
                  client_msg_id: str = "") -> int | None:
    """Send one template message; returns the app's msgid. Raises MessagingAppError.

    `client_msg_id` (our dedupe key) lets the app drop a repeat of the same message, as
    when a worker died between the app's answer and our record of it."""
    body = {"touser": openid, "template_id": template_id, "data": data}
    if url:
        body["url"] = url
    if client_msg_id:
        body["client_msg_id"] = client_msg_id
    token = access_token()
    try:
        answer = _check(_call(_api("/cgi-bin/message/template/send", access_token=token), body))
    except MessagingAppError as exc:
        if exc.errcode not in TOKEN_ERRORS:
            raise
        # The token expired or was replaced: refresh once (or take the one another worker
        # just fetched) and try once more; a second refusal is left to the task's retry.
        token = access_token(replacing=token)
        answer = _check(_call(_api("/cgi-bin/message/template/send", access_token=token), body))
    return answer.get("msgid")


# --------------------------------------------------------------------------- binding (web OAuth)

_STATE_SALT = "portal.notifications.messaging_app.bind"
_STATE_SESSION_KEY = "msgapp_bind_nonce"
STATE_MAX_AGE = 600


def bind_state_issue(*, user, session) -> str:
    """A signed, one-time `state` for the authorize redirect: it names the account and a
    nonce kept in this browser's session, so a callback with someone else's code (binding
    their app user to this account) or a replayed callback is refused."""
    nonce = get_random_string(24)
    session[_STATE_SESSION_KEY] = nonce
    return signing.dumps({"u": user.pk, "n": nonce}, salt=_STATE_SALT)


def bind_state_valid(*, user, session, state: str) -> bool:
    # Pop first: whatever happens next, this nonce is spent.
    expected = session.pop(_STATE_SESSION_KEY, None)
    try:
        data = signing.loads(state or "", salt=_STATE_SALT, max_age=STATE_MAX_AGE)
    except signing.BadSignature:  # also SignatureExpired
        return False
    return (bool(expected) and isinstance(data, dict) and data.get("u") == user.pk
            and constant_time_compare(str(data.get("n", "")), expected))


def authorize_url(*, redirect_uri: str, state: str) -> str:
    base = (settings.MESSAGING_APP_OAUTH_URL or settings.MESSAGING_APP_URL).rstrip("/")
    query = urlencode({"appid": app_id(), "redirect_uri": redirect_uri, "response_type": "code",
                       "scope": "snsapi_base", "state": state})
    return f"{base}/connect/oauth2/authorize?{query}#wechat_redirect"


def openid_for_code(code: str) -> str:
    """Exchange the one-time code from the authorize redirect for the user's openid."""
    answer = _check(_call(_api("/sns/oauth2/access_token", appid=app_id(),
                               secret=settings.MESSAGING_APP_SECRET, code=code,
                               grant_type="authorization_code")))
    openid = str(answer.get("openid") or "")
    if not openid:
        raise MessagingAppError(-4, "no openid in the answer", retryable=False)
    return openid


def mask_openid(openid: str) -> str:
    return f"{openid[:4]}…{openid[-4:]}" if len(openid) > 10 else "…"
