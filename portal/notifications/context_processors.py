from __future__ import annotations

from django.http import HttpRequest

from .models import InboxMessage


def inbox(request: HttpRequest) -> dict:
    """The unread count in the header (one small indexed query per page, signed-in only)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"inbox_unread": InboxMessage.objects.filter(user=user, read_at__isnull=True).count()}
