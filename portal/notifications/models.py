"""The site inbox (platform level: one inbox per account, across hospitals).

The Notifications issue adds the outbox, fan-out and other channels on top of this.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class InboxMessage(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="inbox", verbose_name=_("recipient"))
    hospital = models.ForeignKey("tenants.Hospital", on_delete=models.CASCADE, null=True,
                                 blank=True, related_name="+", verbose_name=_("hospital"))
    kind = models.CharField(_("kind"), max_length=40)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("message"))
    link = models.CharField(_("link"), max_length=300, blank=True)
    # One message per event and recipient, however often the sender retries.
    dedupe_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(_("sent at"), auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        verbose_name = _("inbox message")
        verbose_name_plural = _("inbox messages")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return self.title
