"""Money in a hospital's schema. Every amount is integer fen (分); nothing here is a float.

Orders move only through `payments.services`; each move writes an `OrderEvent` (who, what,
when), which is the audit trail finance reads in admin.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

# A named type for readability: amounts are ints in fen everywhere.
Fen = int


class FenField(models.BigIntegerField):
    """An amount of money in fen (1 yuan = 100 fen)."""


class PaymentSettings(models.Model):
    """How this hospital takes money: which provider and its merchant credentials.

    One row per hospital (the pk is always 1). Secrets are write-only in admin.
    """

    class Provider(models.TextChoices):
        SANDBOX = "sandbox", _("Sandbox (built-in test provider)")
        WECHATPAY_V3 = "wechatpay_v3", _("WeChat Pay API v3")

    # Empty: not configured (no online payment until staff choose a provider).
    provider = models.CharField(_("provider"), max_length=20, choices=Provider.choices,
                                default=Provider.SANDBOX, blank=True)
    # sandbox
    sandbox_merchant_id = models.CharField(_("sandbox merchant id"), max_length=32, blank=True)
    sandbox_api_key = models.CharField(_("sandbox API key"), max_length=128, blank=True)
    # WeChat Pay v3
    wechat_mchid = models.CharField(_("WeChat merchant id (mchid)"), max_length=32, blank=True)
    wechat_appid = models.CharField(_("WeChat app id"), max_length=32, blank=True)
    wechat_cert_serial_no = models.CharField(_("merchant certificate serial number"),
                                             max_length=64, blank=True)
    wechat_private_key = models.TextField(_("merchant private key (PEM)"), blank=True)
    wechat_apiv3_key = models.CharField(_("APIv3 key"), max_length=32, blank=True)
    # Newer merchants verify WeChat with its platform public key instead of certificates.
    wechat_platform_public_key = models.TextField(_("WeChat Pay platform public key (PEM)"),
                                                  blank=True)
    wechat_platform_public_key_id = models.CharField(_("platform public key id"), max_length=64,
                                                     blank=True)
    wechat_base_url = models.URLField(_("API base URL"), blank=True,
                                      help_text=_("Leave empty for https://api.mch.weixin.qq.com"))
    # Medical insurance: this hospital's outpatient policy (payments.insurance.InsurancePolicy
    # as a dict) and, when the insurer's settlement service is used, where it is.
    insurance_policy = models.JSONField(_("insurance policy"), default=dict, blank=True,
                                        help_text=_("Empty: the illustrative default policy."))
    insurance_gateway_url = models.URLField(_("insurance settlement service URL"), blank=True,
                                            help_text=_("Empty: calculate locally."))
    insurance_api_key = models.CharField(_("insurance service API key"), max_length=128,
                                         blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("payment settings")
        verbose_name_plural = _("payment settings")

    def __str__(self) -> str:
        return str(self.get_provider_display())


class Order(models.Model):
    class Kind(models.TextChoices):
        REGISTRATION = "registration", _("Registration fee")
        CLINIC_BILL = "clinic_bill", _("Clinic bill")
        CONSULTATION = "consultation", _("Online consultation")

    class Status(models.TextChoices):
        CREATED = "created", _("Awaiting payment")
        PAID = "paid", _("Paid")
        CLOSED = "closed", _("Closed")
        PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
        REFUNDED = "refunded", _("Refunded")

    out_trade_no = models.CharField(_("merchant order number"), max_length=32, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    description = models.CharField(_("description"), max_length=127)
    payer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("payer"))
    total_fen = FenField(_("total (fen)"))
    insurance_fen = FenField(_("paid by insurance (fen)"), default=0)
    self_pay_fen = FenField(_("self-pay (fen)"))
    refunded_fen = FenField(_("refunded (fen)"), default=0)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    status = models.CharField(_("status"), max_length=20, choices=Status.choices,
                              default=Status.CREATED, db_index=True)
    provider = models.CharField(_("provider"), max_length=20,
                                choices=PaymentSettings.Provider.choices)
    provider_txn_id = models.CharField(_("provider transaction id"), max_length=64, blank=True,
                                       db_index=True)
    notify_url = models.URLField(_("notify URL"), max_length=300, blank=True)
    expires_at = models.DateTimeField(_("pay before"))
    # Indexed: reconciliation selects a day's payments by it, whatever the history's length.
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True, db_index=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    close_reason = models.CharField(_("close reason"), max_length=100, blank=True)
    # A payment that could not be accepted (amount or currency mismatch): finance decides.
    needs_attention = models.BooleanField(_("needs finance attention"), default=False,
                                          db_index=True)
    attention_reason = models.CharField(_("attention reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(total_fen__gte=0) & Q(insurance_fen__gte=0)
                                   & Q(self_pay_fen__gte=0) & Q(refunded_fen__gte=0),
                                   name="order_amounts_not_negative"),
            models.CheckConstraint(condition=Q(total_fen=F("insurance_fen") + F("self_pay_fen")),
                                   name="order_total_is_insurance_plus_self_pay"),
            models.CheckConstraint(condition=Q(refunded_fen__lte=F("self_pay_fen")),
                                   name="order_refund_within_self_pay"),
        ]

    def __str__(self) -> str:
        return self.out_trade_no

    @property
    def refundable_fen(self) -> Fen:
        if self.status not in (self.Status.PAID, self.Status.PARTIALLY_REFUNDED):
            return 0
        return self.self_pay_fen - self.refunded_fen


class OrderEvent(models.Model):
    """The audit trail of an order: every state change, who or what caused it, and when."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(_("action"), max_length=40)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                              blank=True, related_name="+", verbose_name=_("by"))
    source = models.CharField(_("source"), max_length=20)  # patient / staff / provider / system
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.order_id} {self.action}"


class PaymentNotification(models.Model):
    """Every verified callback from a provider, once (the unique id makes replays no-ops)."""

    provider = models.CharField(max_length=20)
    notification_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=20)  # payment / refund
    out_trade_no = models.CharField(max_length=32, db_index=True)
    body = models.JSONField()
    outcome = models.CharField(max_length=40, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("provider notification")
        verbose_name_plural = _("provider notifications")
        constraints = [
            models.UniqueConstraint(fields=["provider", "notification_id"],
                                    name="notification_once_per_provider"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.notification_id}"


class Refund(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Processing")
        SUCCEEDED = "succeeded", _("Refunded")
        FAILED = "failed", _("Failed")

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds",
                              verbose_name=_("order"))
    out_refund_no = models.CharField(_("refund number"), max_length=64, unique=True)
    amount_fen = FenField(_("amount (fen)"))
    reason = models.CharField(_("reason"), max_length=200)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices,
                              default=Status.PENDING, db_index=True)
    provider_refund_id = models.CharField(_("provider refund number"), max_length=64,
                                          blank=True)
    failure_reason = models.CharField(_("failure reason"), max_length=200, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     null=True, blank=True, related_name="+",
                                     verbose_name=_("requested by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    succeeded_at = models.DateTimeField(_("refunded at"), null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="refund_amount_positive"),
        ]

    def __str__(self) -> str:
        return self.out_refund_no


class ReconciliationRun(models.Model):
    """One comparison of a day's provider statement with this hospital's records."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    class Failure(models.TextChoices):
        PROVIDER_UNREACHABLE = "provider_unreachable", _("Payment provider unreachable")
        STATEMENT_MALFORMED = "statement_malformed", _("Statement file unreadable")
        INTERNAL = "internal", _("Internal error")

    day = models.DateField(_("statement day"), db_index=True)
    provider = models.CharField(_("provider"), max_length=20,
                                choices=PaymentSettings.Provider.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices,
                              default=Status.RUNNING)
    statement_lines = models.PositiveIntegerField(_("statement lines"), default=0)
    provider_paid_fen = FenField(_("provider: paid"), default=0)
    provider_refunded_fen = FenField(_("provider: refunded"), default=0)
    local_paid_fen = FenField(_("ours: paid"), default=0)
    local_refunded_fen = FenField(_("ours: refunded"), default=0)
    discrepancies = models.PositiveIntegerField(_("discrepancies"), default=0)
    # What failed, in words staff understand; `error` keeps the technical detail for admins.
    failure = models.CharField(_("what failed"), max_length=30, choices=Failure.choices,
                               blank=True)
    error = models.TextField(_("error"), blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+", verbose_name=_("started by"))
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("reconciliation")
        verbose_name_plural = _("reconciliations")
        ordering = ["-day", "-started_at"]

    def __str__(self) -> str:
        return f"{self.day} {self.get_provider_display()}"


class Discrepancy(models.Model):
    class Kind(models.TextChoices):
        MISSING_LOCALLY = "missing_locally", _("Missing locally")
        MISSING_AT_PROVIDER = "missing_at_provider", _("Missing at provider")
        AMOUNT_MISMATCH = "amount_mismatch", _("Amount mismatch")
        STATUS_MISMATCH = "status_mismatch", _("Status mismatch")

    class Resolution(models.TextChoices):
        OPEN = "open", _("Open")
        AUTO_REFUNDED = "auto_refunded", _("Orphan payment refunded automatically")
        REQUERIED = "requeried", _("Re-queried the provider and applied")
        FOR_FINANCE = "for_finance", _("Marked for finance")
        RESOLVED = "resolved", _("Resolved by finance")

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE,
                            related_name="discrepancy_rows", verbose_name=_("reconciliation"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, db_index=True)
    line_kind = models.CharField(_("payment or refund"), max_length=10)
    out_trade_no = models.CharField(_("merchant order number"), max_length=32, db_index=True)
    out_refund_no = models.CharField(_("refund number"), max_length=64, blank=True)
    provider_amount_fen = FenField(_("provider amount"), null=True, blank=True)
    local_amount_fen = FenField(_("our amount"), null=True, blank=True)
    local_status = models.CharField(_("our status"), max_length=20, blank=True)
    resolution = models.CharField(_("resolution"), max_length=20, choices=Resolution.choices,
                                  default=Resolution.OPEN, db_index=True)
    note = models.CharField(_("note"), max_length=300, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("discrepancy")
        verbose_name_plural = _("discrepancies")
        ordering = ["kind", "out_trade_no"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.out_trade_no}"
