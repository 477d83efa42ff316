from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from .channels import OPTIONAL_CHANNELS, channel_preference_set, channel_preferences
from .models import InboxMessage
from .services import inbox_mark_read


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    messages = list(InboxMessage.objects.filter(user=request.user)
                    .select_related("hospital").prefetch_related("hospital__domains")[:100])
    unread = [m.pk for m in messages if m.read_at is None]
    response = render(request, "notifications/inbox.html",
                      {"inbox_messages": messages, "unread_ids": set(unread)})
    if unread:
        inbox_mark_read(user=request.user, ids=unread)
    return response


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    """Which channels an account hears on, besides the site inbox (always on)."""
    if request.method == "POST":
        for channel in OPTIONAL_CHANNELS:
            channel_preference_set(user=request.user, channel=channel,
                                   enabled=request.POST.get(str(channel)) == "on")
        flash.success(request, _("Your notification settings are saved."))
        return redirect("inbox_preferences")
    current = channel_preferences(user=request.user)
    rows = [{"channel": str(ch), "label": ch.label, "enabled": current[str(ch)]}
            for ch in OPTIONAL_CHANNELS]
    return render(request, "notifications/preferences.html",
                  {"channels": rows, "has_email": bool(request.user.email),
                   "phone": request.user.masked_phone})
