from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.accounts.models import MessagingAppBinding
from portal.accounts.services import account_set_email
from portal.errors import DomainError
from tenants.selectors import hospital_site_url

from . import messaging_app
from .channels import available_channels, channel_preference_set, channel_preferences
from .models import Delivery, InboxMessage
from .services import (
    inbox_mark_read,
    messaging_app_bind_finish,
    messaging_app_unbind_account,
)


def _message_url(request: HttpRequest, message: InboxMessage) -> str:
    """Where a message leads (its booking, bill ...): a path on its hospital's own site, made
    absolute when read elsewhere (the platform, another hospital)."""
    link = message.link or ""
    if not link.startswith("/") or link.startswith("//"):
        return ""
    tenant = getattr(request, "tenant", None)
    if message.hospital is None or (tenant is not None and tenant.pk == message.hospital_id):
        return link
    site = hospital_site_url(message.hospital, scheme=request.scheme, port=request.get_port())
    return site.rstrip("/") + link if site else ""


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    messages = list(InboxMessage.objects.filter(user=request.user)
                    .select_related("hospital").prefetch_related("hospital__domains")[:100])
    for m in messages:
        m.url = _message_url(request, m)
    unread = [m.pk for m in messages if m.read_at is None]
    response = render(request, "notifications/inbox.html",
                      {"inbox_messages": messages, "unread_ids": set(unread)})
    if unread:
        inbox_mark_read(user=request.user, ids=unread)
    return response


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    """Which channels an account hears on, besides the site inbox (always on)."""
    channels = available_channels()
    email_error, status = "", 200
    if request.method == "POST":
        try:
            # The email channel needs an address: this page is where a patient gives one.
            if "email_address" in request.POST:
                account_set_email(user=request.user, email=request.POST["email_address"])
        except ValidationError:
            email_error, status = _("Enter a valid email address, or leave it empty."), 400
        else:
            for channel in channels:
                channel_preference_set(user=request.user, channel=channel,
                                       enabled=request.POST.get(str(channel)) == "on")
            flash.success(request, _("Your notification settings are saved."))
            return redirect("inbox_preferences")
    current = channel_preferences(user=request.user)
    rows = [{"channel": str(ch), "label": Delivery.Channel(ch).label, "enabled": current[str(ch)]}
            for ch in channels]
    binding = None
    if messaging_app.enabled():
        binding = MessagingAppBinding.objects.filter(user=request.user,
                                                     app_id=messaging_app.app_id()).first()
    return render(request, "notifications/preferences.html",
                  {"channels": rows, "has_email": bool(request.user.email),
                   "email": request.POST.get("email_address", "") if email_error
                   else request.user.email,
                   "email_error": email_error,
                   "phone": request.user.masked_phone, "binding": binding}, status=status)


def _messaging_app_on() -> None:
    if not messaging_app.enabled():
        raise Http404


@login_required
@require_POST
def messaging_app_bind(request: HttpRequest) -> HttpResponse:
    """Send the browser to the messaging app's authorize page with a one-time state."""
    _messaging_app_on()
    state = messaging_app.bind_state_issue(user=request.user, session=request.session)
    callback = request.build_absolute_uri(reverse("inbox_messaging_app_callback"))
    return redirect(messaging_app.authorize_url(redirect_uri=callback, state=state))


@login_required
def messaging_app_callback(request: HttpRequest) -> HttpResponse:
    """Where the messaging app sends the browser back, with ?code=..&state=.."""
    _messaging_app_on()
    try:
        messaging_app_bind_finish(user=request.user, session=request.session,
                                  state=request.GET.get("state", ""),
                                  code=request.GET.get("code", ""))
    except DomainError as exc:
        flash.error(request, exc.message)
    else:
        flash.success(request, _("Your account is now bound to the messaging app: notices "
                                 "can reach you there."))
    return redirect("inbox_preferences")


@login_required
@require_POST
def messaging_app_unbind(request: HttpRequest) -> HttpResponse:
    _messaging_app_on()
    if messaging_app_unbind_account(user=request.user):
        flash.success(request, _("Your account is no longer bound to the messaging app."))
    return redirect("inbox_preferences")
