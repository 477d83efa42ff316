from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

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
