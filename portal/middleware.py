"""Request plumbing: tenant lookup with a per-process cache, and language choice."""

from __future__ import annotations

import copy
import logging
import threading
import time
import zoneinfo

import redis
from django.conf import settings
from django.http import HttpRequest
from django.middleware.locale import LocaleMiddleware
from django.utils import timezone, translation
from django_tenants.middleware.main import TenantMainMiddleware

log = logging.getLogger(__name__)

DOMAIN_GENERATION_KEY = "portal:tenants:domain-generation"
_TTL_SECONDS = 300.0
_GENERATION_CHECK_SECONDS = 1.0


class _DomainCache:
    """host name -> hospital, per process.

    The domain -> tenant lookup is most of the tenant middleware's cost. Entries live a few
    minutes; any change to a hospital or domain bumps a generation counter in Redis, which each
    process reads at most once a second, so a deactivated hospital disappears within a second
    everywhere (or within the TTL if Redis is down).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, object]] = {}
        self._generation: bytes | None = None
        self._checked_at = 0.0
        self._redis: redis.Redis | None = None

    def _client(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.2,
                                               socket_connect_timeout=0.2)
        return self._redis

    def _check_generation(self, now: float) -> None:
        if now - self._checked_at < _GENERATION_CHECK_SECONDS:
            return
        self._checked_at = now
        try:
            generation = self._client().get(DOMAIN_GENERATION_KEY)
        except redis.RedisError:
            return
        if generation != self._generation:
            with self._lock:
                self._entries.clear()
                self._generation = generation

    def get(self, hostname: str):
        now = time.monotonic()
        self._check_generation(now)
        entry = self._entries.get(hostname)
        if entry and now - entry[0] < _TTL_SECONDS:
            return entry[1]
        return None

    def put(self, hostname: str, tenant) -> None:
        with self._lock:
            self._entries[hostname] = (time.monotonic(), tenant)

    def invalidate(self) -> None:
        with self._lock:
            self._entries.clear()
        try:
            generation = self._client().incr(DOMAIN_GENERATION_KEY)
        except redis.RedisError:
            log.warning("could not publish a domain cache invalidation (Redis unreachable)")
            return
        # This process has already forgotten everything: remember the generation it published,
        # or its next check would see "a change" and empty the fresh entries once more.
        with self._lock:
            self._generation = str(generation).encode()


domain_cache = _DomainCache()


class CachedTenantMiddleware(TenantMainMiddleware):
    """django-tenants' middleware, with a cached lookup and inactive hospitals hidden.

    It also shows times in the hospital's own time zone (stored times are UTC).
    """

    def process_request(self, request):
        response = super().process_request(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None and not tenant.is_public:
            timezone.activate(zoneinfo.ZoneInfo(tenant.time_zone))
        else:
            timezone.deactivate()
        return response

    def get_tenant(self, domain_model, hostname):
        tenant = domain_cache.get(hostname)
        if tenant is None:
            domain = domain_model.objects.select_related("tenant").get(domain=hostname)
            tenant = domain.tenant
            if not tenant.is_public and not (tenant.is_active and tenant.is_ready):
                raise domain_model.DoesNotExist
            domain_cache.put(hostname, tenant)
        # A copy per request: the middleware annotates the object it returns.
        return copy.copy(tenant)


class PortalLocaleMiddleware(LocaleMiddleware):
    """zh-hans unless the patient chose otherwise (their account, then the language cookie).

    The browser's Accept-Language is deliberately ignored: the platform serves Chinese
    hospitals and defaults to Chinese; English is one click away and then sticks.
    """

    def process_request(self, request: HttpRequest) -> None:
        language = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.language:
            language = user.language
        if language is None:
            cookie = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
            if cookie and translation.check_for_language(cookie):
                language = cookie
        language = translation.get_supported_language_variant(language or settings.LANGUAGE_CODE)
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
