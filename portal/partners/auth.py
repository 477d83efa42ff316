"""How a partner's request is recognised and limited: the API key, scopes and rate limits."""

from __future__ import annotations

import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

import redis
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.throttling import BaseThrottle

from portal.middleware import DOMAIN_GENERATION_KEY
from portal.process_cache import GenerationCache

from .models import ApiKey
from .services import key_matches, parse_key

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-Api-Key"
# last_used_at is written at most this often per key (a write per request would cost more
# than the request itself).
_TOUCH_EVERY = timedelta(seconds=60)


_MISSING = object()
# Per process: API keys by prefix, and the partner's hospitals and grants, for a few seconds.
# Every API request needs both; this takes two queries off each. A change to a key, partner or
# grant (signals.py, services, admin), or to a hospital or domain (the host cache's counter),
# empties it everywhere within a second: a revoked key stops at once in the process that
# revoked it.
auth_cache = GenerationCache(generation_key="partners:auth-generation", ttl_seconds=30.0,
                             also_watch=[DOMAIN_GENERATION_KEY])


class PartnerPrincipal:
    """`request.user` of an API request: the partner behind the key (not a platform account)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    pk = None

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.partner = api_key.partner

    def __str__(self) -> str:
        return f"partner:{self.partner.pk}"


class ApiKeyAuthentication(BaseAuthentication):
    """`X-Api-Key: hpk_...` (or `Authorization: Bearer hpk_...`)."""

    def authenticate(self, request):
        raw = request.headers.get(API_KEY_HEADER, "")
        if not raw:
            scheme, _sep, value = request.headers.get("Authorization", "").partition(" ")
            raw = value.strip() if scheme.lower() == "bearer" else ""
        if not raw:
            return None
        parsed = parse_key(raw)
        key = None
        if parsed is not None:
            key = auth_cache.get(("key", parsed[0]), _MISSING)
            if key is _MISSING:
                key = ApiKey.objects.select_related("partner").filter(prefix=parsed[0]).first()
                auth_cache.put(("key", parsed[0]), key)
        if key is None or not key_matches(key, parsed[1]):
            raise exceptions.AuthenticationFailed(_("Invalid API key."), code="invalid_api_key")
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed(_("This API key has been revoked."),
                                                  code="api_key_revoked")
        if not key.partner.is_active:
            raise exceptions.AuthenticationFailed(_("This partner is not active."),
                                                  code="partner_inactive")
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > _TOUCH_EVERY:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now  # the cached row too
        return PartnerPrincipal(key), key

    def authenticate_header(self, request) -> str:
        return f'ApiKey header="{API_KEY_HEADER}"'


class IsPartner(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, PartnerPrincipal)


class HasScope(BasePermission):
    """The view's `required_scopes[method]` must be among the key's scopes."""

    code = "missing_scope"
    message = _("This API key lacks the scope this request needs.")

    def has_permission(self, request, view) -> bool:
        scopes = getattr(view, "required_scopes", {})
        # HEAD runs the GET view: it needs GET's scope (it must not read without it).
        scope = scopes.get("GET" if request.method == "HEAD" else request.method)
        if scope is None:
            return True
        if request.auth is not None and request.auth.has_scope(scope):
            return True
        self.message = _("This API key lacks the scope “%(scope)s”.") % {"scope": scope}
        return False


_redis: redis.Redis | None = None


def _client() -> redis.Redis:
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5,
                                      socket_connect_timeout=0.5)
    return _redis


#: The clock of the limiter (unix seconds); tests replace it.
clock = time.time

# A sliding log per API key: a sorted set of the requests let through in the last window (score
# = their time in microseconds). Run as one script, so two processes cannot both take the last
# place. Refused requests are not recorded: hammering while limited does not extend the wait.
# Returns {allowed (0/1), requests in the window after this one, µs until a place frees}.
_SLIDING_WINDOW = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1)
-- A place frees when the request at rank count - limit leaves (the oldest one, unless the
-- key's limit was lowered below what the window already holds).
local reset = 0
local at = math.max(0, count - limit)
local frees = redis.call('ZRANGE', KEYS[1], at, at, 'WITHSCORES')
if frees[2] then
  reset = tonumber(frees[2]) + window - now
end
return {allowed, count, reset}
"""
_script = None  # registered on first use (redis-py reloads it after a SCRIPT FLUSH)


@dataclass(frozen=True)
class RateLimit:
    """A key's budget as of this request: the X-RateLimit-* headers of its response."""

    limit: int
    remaining: int
    #: seconds until the oldest request counted in the window leaves it (a place frees up)
    reset: int

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": str(self.reset)}


def rate_limit_take(*, api_key: ApiKey) -> tuple[bool, RateLimit | None]:
    """Count a request of `api_key` against its limit, if there is a place in the window.
    Returns (allowed, the budget after it); (True, None) when Redis cannot be reached."""
    global _script
    limit = api_key.rate_limit or settings.PARTNER_API_RATE_LIMIT
    window_us = int(settings.PARTNER_API_RATE_WINDOW * 1_000_000)
    now_us = int(clock() * 1_000_000)
    try:
        client = _client()
        if _script is None:
            _script = client.register_script(_SLIDING_WINDOW)
        allowed, count, reset_us = _script(
            keys=[f"partners:ratelimit:{api_key.pk}"],
            args=[now_us, window_us, limit, f"{now_us}:{secrets.token_hex(4)}"], client=client)
    except redis.RedisError:
        log.warning("rate limit skipped: Redis unreachable")
        return True, None
    return bool(allowed), RateLimit(limit=limit, remaining=max(0, limit - int(count)),
                                    reset=math.ceil(int(reset_us) / 1_000_000))


class ApiKeyRateThrottle(BaseThrottle):
    """A sliding window per API key in Redis: at most PARTNER_API_RATE_LIMIT requests (or the
    key's own limit) in any PARTNER_API_RATE_WINDOW seconds, shared by every web process; a
    burst across a fixed-window boundary cannot get twice the limit. The budget is
    per API key, not per hospital: one key's requests to all its hospitals (platform paths and
    hospital hosts, REST and FHIR) share it. The budget as of this request is left on the
    request (`request.rate_limit`) for the X-RateLimit-* headers (PartnerAPIMixin). If Redis is
    down requests are let through, without headers (the API stays up; limits return with
    Redis)."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True
        allowed, budget = rate_limit_take(api_key=key)
        request.rate_limit = budget
        if not allowed and budget is not None:
            self._wait = max(1, budget.reset)
        return allowed

    def wait(self) -> float | None:
        return self._wait
