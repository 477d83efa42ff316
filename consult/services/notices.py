"""Telling a patient about their consultation or record, through the notification outbox (in
the caller's transaction: the notice exists exactly when the change does)."""

from __future__ import annotations

from django.db import connection


def patient_notify(kind: str, *, account_id: int, link: str, **context) -> None:
    """One notice of `kind` (a template of portal.notifications) to the account, from this
    hospital."""
    from portal.notifications.services import notify

    notify(kind=kind, hospital=connection.tenant, recipients=[account_id], context=context,
           link=link)
