"""Notifications in both admins: the outbox's delivery log, a hospital's message templates and
partner webhooks. One module per model group; importing them here registers them all when
Django's autodiscovery imports this package."""

from . import outbox, templates, webhooks

__all__ = ["outbox", "templates", "webhooks"]
