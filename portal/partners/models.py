"""Partners of the open platform, their API keys and grants. All in the public schema.

Nothing here points into a hospital's schema: a booking or bill made through the API is
remembered as (hospital, kind, object id) in `PartnerRecord`, a plain integer id.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Scope(models.TextChoices):
    SCHEDULES_READ = "schedules:read", _("Read departments, doctors, schedules and slots")
    BOOKINGS_READ = "bookings:read", _("Read own bookings")
    BOOKINGS_WRITE = "bookings:write", _("Create and cancel bookings")
    BILLS_WRITE = "bills:write", _("Create clinic bills and read their status")
    REPORTS_WRITE = "reports:write", _("Push reports")
    WEBHOOKS_MANAGE = "webhooks:manage", _("Manage webhook endpoints")


class Partner(models.Model):
    """A company that integrates with the platform: an aggregator app, an insurer, a HIS vendor."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    contact_email = models.EmailField(_("contact email"), blank=True)
    is_active = models.BooleanField(
        _("active"), default=True,
        help_text=_("An inactive partner's keys stop working at once."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("partner")
        verbose_name_plural = _("partners")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """A secret a partner sends in the `X-Api-Key` header.

    The full key (`hpk_<prefix>_<secret>`) is shown once when created; only its SHA-256 is
    stored (the key is 32 random bytes, so a fast hash is enough), and the prefix finds the
    row without scanning."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="keys",
                                verbose_name=_("partner"))
    name = models.CharField(_("name"), max_length=100, blank=True,
                            help_text=_("What the key is for, e.g. “production”."))
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(_("scopes"), default=list)
    rate_limit = models.PositiveIntegerField(
        _("requests per minute"), null=True, blank=True,
        help_text=_("Leave empty for the platform default."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"hpk_{self.prefix}_…"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])


class Grant(models.Model):
    """A partner may use the API for this hospital."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="grants",
                                verbose_name=_("partner"))
    hospital = models.ForeignKey("tenants.Hospital", on_delete=models.CASCADE,
                                 related_name="partner_grants", verbose_name=_("hospital"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("grant")
        verbose_name_plural = _("grants")
        constraints = [models.UniqueConstraint(fields=["partner", "hospital"],
                                               name="grant_once_per_partner_hospital")]

    def __str__(self) -> str:
        return f"{self.partner} → {self.hospital}"


class PartnerRecord(models.Model):
    """Which partner made a booking or a clinic bill at a hospital (object id in its schema).

    Written in the same transaction as the object, so a partner sees exactly its own."""

    class Kind(models.TextChoices):
        BOOKING = "booking", _("booking")
        BILL = "bill", _("clinic bill")
        REPORT = "report", _("report")

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="+")
    hospital = models.ForeignKey("tenants.Hospital", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    object_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["hospital", "kind", "object_id"],
                                               name="partner_record_unique_object")]
        indexes = [models.Index(fields=["partner", "hospital", "kind", "object_id"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.hospital_id}:{self.object_id} by {self.partner_id}"


class IdempotencyRecord(models.Model):
    """The stored outcome of a POST sent with an `Idempotency-Key`, per API key.

    The row is inserted (unique per key) *before* the request runs, so of two simultaneous
    requests with one key only one executes; the other sees it in progress."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)  # null: in progress
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["api_key", "key"],
                                               name="idempotency_key_unique_per_api_key")]

    def __str__(self) -> str:
        return f"{self.api_key_id}:{self.key}"
