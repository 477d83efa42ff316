"""One login for the platform and every hospital site, whatever their host names.

The platform host is the only place passwords are typed. A hospital site (CODE.localhost in
development, or a hospital's own domain in production: no shared parent, so no shared cookie)
gets the login through a redirect:

1. hospital page, anonymous browser -> platform /sso/authorize/?next=<hospital URL>[&passive=1]
2. platform, signed in -> a one-time ticket (60 s, bound to the hospital's host) ->
   hospital /sso/callback/?ticket=...&next=<path>; the hospital redeems it and signs the
   browser in. Not signed in -> passive: back with no ticket (remembered for a few minutes);
   active: the platform's login page first.
3. The hospital session remembers the platform session it came from. When that session ends
   (logout on the platform, or on any hospital site, which ends it too) the hospital
   session ends at its next request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.sessions.models import Session
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from tenants.models import Domain

from .models import SsoTicket

# Fixed paths: each lives in only one of the two URLconfs, so neither side can reverse() the other's.
AUTHORIZE_PATH = "/sso/authorize/"
CALLBACK_PATH = "/sso/callback/"
SESSION_PARENT = "sso_parent"
SESSION_CHECKED = "sso_checked_at"
# How long a hospital site remembers "the platform said nobody is signed in".
PASSIVE_RECHECK_SECONDS = 300
_PASSIVE_EXEMPT_PREFIXES = ("/sso/", "/static/", "/health/", "/api/", "/fhir/", "/i18n/",
                            "/accounts/login/", "/accounts/logout/",
                            "/accounts/signup/", "/favicon")
AUTH_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def platform_base_url(request: HttpRequest) -> str:
    """The platform's origin, e.g. http://localhost:8000 (same scheme and port in dev)."""
    if settings.PLATFORM_URL:
        return settings.PLATFORM_URL.rstrip("/")
    port = request.get_port()
    default = "443" if request.is_secure() else "80"
    suffix = "" if port in ("", default) else f":{port}"
    return f"{request.scheme}://{settings.PLATFORM_DOMAIN}{suffix}"


def platform_url(request: HttpRequest, path: str, **params: str) -> str:
    query = f"?{urlencode(params)}" if params else ""
    return f"{platform_base_url(request)}{path}{query}"


def hospital_login_url(request: HttpRequest, next_path: str) -> str:
    """Where a hospital page sends a browser to sign in: the platform, then back here."""
    back = request.build_absolute_uri(next_path)
    authorize = platform_url(request, AUTHORIZE_PATH, next=back)
    return platform_url(request, reverse("accounts:login"), next=authorize)


def _hospital_host_of(url: str) -> str | None:
    """The host of `url` when it is an active hospital's domain; else None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    ok = Domain.objects.filter(domain=host, tenant__is_active=True, tenant__is_ready=True).exclude(
        tenant__schema_name="public").exists()
    return host if ok else None


# ------------------------------------------------------------------- platform side


def authorize(request: HttpRequest) -> HttpResponse:
    """Platform host: hand a signed-in browser a ticket for a hospital's host."""
    next_url = request.GET.get("next", "")
    host = _hospital_host_of(next_url)
    if host is None:
        return HttpResponseBadRequest("next must be a hospital site's URL")
    parts = urlsplit(next_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    back_path = parts.path + (f"?{parts.query}" if parts.query else "")
    callback = origin + CALLBACK_PATH
    if not request.user.is_authenticated:
        if request.GET.get("passive"):
            return HttpResponseRedirect(f"{callback}?{urlencode({'next': back_path})}")
        login_url = reverse("accounts:login")
        return HttpResponseRedirect(f"{login_url}?{urlencode({'next': request.get_full_path()})}")
    if not request.session.session_key:
        request.session.save()
    token = secrets.token_urlsafe(32)
    SsoTicket.objects.create(
        token_hash=_hash(token), user=request.user, host=host,
        parent_session_key=request.session.session_key,
        expires_at=timezone.now() + timedelta(seconds=settings.SSO_TICKET_SECONDS),
    )
    return HttpResponseRedirect(f"{callback}?{urlencode({'ticket': token, 'next': back_path})}")


# ------------------------------------------------------------------- hospital side


def callback(request: HttpRequest) -> HttpResponse:
    """Hospital host: redeem a ticket (once, before it expires, for this host only)."""
    next_path = request.GET.get("next", "/")
    if not url_has_allowed_host_and_scheme(next_path, allowed_hosts=None) or next_path.startswith("//"):
        next_path = "/"
    token = request.GET.get("ticket")
    if not token:
        request.session[SESSION_CHECKED] = time.time()
        return HttpResponseRedirect(next_path)
    now = timezone.now()
    ticket = (SsoTicket.objects.select_related("user")
              .filter(token_hash=_hash(token), host=request.get_host().split(":")[0].lower(),
                      used_at__isnull=True, expires_at__gt=now).first())
    # Conditional UPDATE: of two concurrent redemptions only one changes the row.
    if ticket is None or not SsoTicket.objects.filter(pk=ticket.pk, used_at__isnull=True).update(
            used_at=now):
        request.session[SESSION_CHECKED] = time.time()
        return HttpResponseRedirect(next_path)
    if not ticket.user.is_active:
        return HttpResponseRedirect(next_path)
    login(request, ticket.user, backend=AUTH_BACKEND)
    request.session[SESSION_PARENT] = ticket.parent_session_key
    return HttpResponseRedirect(next_path)


def end_parent_session(request: HttpRequest) -> None:
    """Logging out of a hospital site logs out of the platform session it came from."""
    parent = request.session.get(SESSION_PARENT)
    if parent:
        Session.objects.filter(session_key=parent).delete()


class SingleSignOnMiddleware:
    """On hospital hosts: follow the platform session, and quietly pick up a platform login."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant = getattr(request, "tenant", None)
        if tenant is None or tenant.is_public:
            return self.get_response(request)
        if request.user.is_authenticated:
            parent = request.session.get(SESSION_PARENT)
            if parent and not Session.objects.filter(
                    session_key=parent, expire_date__gt=timezone.now()).exists():
                logout(request)
        elif self._should_check_passively(request):
            next_url = request.build_absolute_uri()
            return HttpResponseRedirect(
                platform_url(request, AUTHORIZE_PATH, next=next_url, passive="1"))
        return self.get_response(request)

    @staticmethod
    def _should_check_passively(request: HttpRequest) -> bool:
        if request.method != "GET" or "text/html" not in request.headers.get("Accept", ""):
            return False  # API clients, health checks and form posts are never redirected
        if request.path.startswith(_PASSIVE_EXEMPT_PREFIXES):
            return False
        checked = request.session.get(SESSION_CHECKED)
        return not (checked and time.time() - checked < PASSIVE_RECHECK_SECONDS)


def expired_tickets_delete() -> int:
    return SsoTicket.objects.filter(expires_at__lt=timezone.now() - timedelta(hours=1)).delete()[0]

