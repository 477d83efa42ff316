"""The site inbox (platform level: one inbox per account, across hospitals), and the outbox
events and deliveries behind every channel."""

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


class OutboxEvent(models.Model):
    """Something patients (or partners) must hear about, written in the same transaction as
    the change that causes it. Workers relay it; nothing is lost if Redis or every worker is
    down: the row waits and a sweeper relays it later."""

    hospital = models.ForeignKey("tenants.Hospital", on_delete=models.CASCADE, null=True,
                                 blank=True, related_name="+", verbose_name=_("hospital"))
    kind = models.CharField(_("event"), max_length=40, db_index=True)
    context = models.JSONField(_("context"), default=dict)
    recipients = models.JSONField(_("recipients"), default=list)  # account ids
    link = models.CharField(_("link"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    relayed_at = models.DateTimeField(_("handed to workers at"), null=True, blank=True,
                                      db_index=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class Delivery(models.Model):
    """One message of one event to one recipient on one channel."""

    class Channel(models.TextChoices):
        INBOX = "inbox", _("Site inbox")
        SMS = "sms", _("SMS")
        EMAIL = "email", _("Email")
        MESSAGING_APP = "msgapp", _("Messaging app")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed (will retry)")
        DEAD = "dead", _("Gave up")

    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="deliveries",
                              verbose_name=_("event"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+", verbose_name=_("recipient"))
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    # event:channel:user — retries and redelivered tasks can never send twice.
    dedupe_key = models.CharField(_("deduplication key"), max_length=120, unique=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices,
                              default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.dedupe_key


class ChannelPreference(models.Model):
    """An account's choice per channel (the site inbox is always on)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="channel_preferences")
    channel = models.CharField(max_length=10, choices=Delivery.Channel.choices)
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "channel"],
                                               name="one_preference_per_channel")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.channel}={self.enabled}"


class NotificationTemplate(models.Model):
    """A hospital's own wording of one event in one language, used instead of the built-in
    text of `messages.MESSAGES`. Uses the same %(placeholder)s names as the built-in text."""

    hospital = models.ForeignKey("tenants.Hospital", on_delete=models.CASCADE,
                                 related_name="+", verbose_name=_("hospital"))
    kind = models.CharField(_("event"), max_length=40)
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("message"))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["hospital", "kind", "language"]
        constraints = [models.UniqueConstraint(fields=["hospital", "kind", "language"],
                                               name="one_template_per_event_and_language")]

    def __str__(self) -> str:
        return f"{self.kind} ({self.language})"

    def save(self, *args, **kwargs):
        self.clean()  # never store a template that would fail when a message is sent
        super().save(*args, **kwargs)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from .messages import MESSAGES, placeholders, placeholders_in

        if self.kind not in MESSAGES:
            raise ValidationError({"kind": _("Unknown event “%(kind)s”. Known events: "
                                             "%(known)s.") % {"kind": self.kind,
                                                              "known": ", ".join(sorted(MESSAGES))}})
        allowed = placeholders(self.kind)
        errors = {}
        for field in ("title", "body"):
            text = getattr(self, field) or ""
            unknown = sorted(placeholders_in(text) - allowed)
            if unknown:
                errors[field] = _("Unknown placeholder(s): %(unknown)s. This event can use: "
                                  "%(allowed)s.") % {
                    "unknown": ", ".join(f"%({n})s" for n in unknown),
                    "allowed": ", ".join(f"%({n})s" for n in sorted(allowed)) or "-"}
            else:
                try:
                    text % {n: "" for n in allowed}
                except (ValueError, TypeError, KeyError):
                    errors[field] = _("Write placeholders like %(example)s and a percent sign "
                                      "as %(percent)s.") % {"example": "%(name)s",
                                                            "percent": "%%"}
        if errors:
            raise ValidationError(errors)


# --------------------------------------------------------------------------- partner webhooks


def _webhook_secret() -> str:
    import secrets

    return "whsec_" + secrets.token_hex(24)


class WebhookEndpoint(models.Model):
    """A partner's URL that receives a hospital's events as signed JSON POSTs (webhooks.py).

    `secret` signs every delivery (HMAC-SHA256), so it is stored as given; the admin shows it
    once, on creation, and never in lists or logs.

    What an endpoint receives (webhooks.endpoint_receives): one registered by the hospital's
    admin gets every subscribed event of that hospital (the hospital chose to trust it, as
    before partners had keys); one a partner registered itself through the API
    (`own_events_only`) gets only events about its own bookings, plus hospital-wide ones."""

    hospital = models.ForeignKey("tenants.Hospital", on_delete=models.CASCADE,
                                 related_name="+", verbose_name=_("hospital"))
    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT,
                                related_name="webhook_endpoints", verbose_name=_("partner"))
    own_events_only = models.BooleanField(
        _("only the partner's own bookings"), default=False,
        help_text=_("Set for endpoints a partner registered through the API: booking events "
                    "only for bookings that partner made, plus hospital-wide announcements."))
    url = models.URLField(_("URL"), max_length=500)
    secret = models.CharField(_("signing secret"), max_length=100, default=_webhook_secret,
                              editable=False)
    events = models.JSONField(_("events"), default=list,
                              help_text=_('Event kinds to send, or "*" for all.'))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["hospital", "partner", "pk"]

    def __str__(self) -> str:
        return f"{self.partner}: {self.url}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from .webhooks import TargetNotAllowed, check_target

        try:
            check_target(self.url)
        except TargetNotAllowed as exc:
            raise ValidationError({"url": _(
                "This URL is not reachable from the internet (%(reason)s): use a public "
                "address.") % {"reason": exc}}) from exc

    def wants(self, kind: str) -> bool:
        return self.is_active and ("*" in self.events or kind in self.events)


class WebhookDelivery(models.Model):
    """One event POSTed to one endpoint; retried with backoff, dead after N attempts."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed (will retry)")
        DEAD = "dead", _("Gave up (dead letter)")

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE,
                                 related_name="deliveries", verbose_name=_("endpoint"))
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE,
                              related_name="webhook_deliveries", verbose_name=_("event"))
    # event:endpoint — one delivery per event and endpoint however often the relay runs.
    dedupe_key = models.CharField(_("deduplication key"), max_length=60, unique=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices,
                              default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True,
                                           db_index=True)
    last_status_code = models.PositiveSmallIntegerField(_("last HTTP status"), null=True,
                                                        blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.dedupe_key
