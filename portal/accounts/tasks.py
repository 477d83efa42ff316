from __future__ import annotations

from celery import shared_task

from portal.accounts.sso import expired_tickets_delete


@shared_task(name="accounts.sso_tickets_cleanup")
def sso_tickets_cleanup() -> int:
    """Delete single sign-on tickets that expired more than an hour ago (public schema)."""
    return expired_tickets_delete()
