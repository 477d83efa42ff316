"""Request plumbing: tenant lookup with a per-process cache, and language choice."""

from __future__ import annotations

import copy

from django.conf import settings
from django.http import HttpRequest
from django.middleware.locale import LocaleMiddleware
from django.utils import timezone, translation
from django_tenants.middleware.main import TenantMainMiddleware

from portal.process_cache import GenerationCache

DOMAIN_GENERATION_KEY = "portal:tenants:domain-generation"
# host name -> hospital, per process: the domain -> tenant lookup is most of the tenant
# middleware's cost. Any change to a hospital or domain (tenants/signals.py) empties it in every
# process within a second.
domain_cache = GenerationCache(generation_key=DOMAIN_GENERATION_KEY, ttl_seconds=300.0)


class CachedTenantMiddleware(TenantMainMiddleware):
    """django-tenants' middleware, with a cached lookup and inactive hospitals hidden.

    It also shows times in the hospital's own time zone (stored times are UTC).
    """

    def process_request(self, request):
        response = super().process_request(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None and not tenant.is_public:
            timezone.activate(tenant.tz)
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
