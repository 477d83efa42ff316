from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import StaffMembership
from portal.accounts.selectors import staff_role
from portal.admin_sites import (
    AuditTrailInline,
    ReadOnlyInline,
    RoleModelAdmin,
    hospital_admin_site,
)
from portal.errors import DomainError

from . import services
from .models import Order, OrderEvent, PaymentSettings, Refund
from .money import fen_to_yuan, yuan_to_fen

Role = StaffMembership.Role


def yuan_column(field: str, label):
    """An admin column (or read-only field) showing a fen field in yuan, sortable by it."""

    @admin.display(description=label, ordering=field)
    def show(self, obj):
        return f"¥{fen_to_yuan(getattr(obj, field))}"

    return show


class OrderEventInline(AuditTrailInline):
    model = OrderEvent


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ("out_refund_no", "amount", "reason", "status", "requested_by", "created_at",
              "succeeded_at")
    readonly_fields = fields
    amount = yuan_column("amount_fen", _("amount"))


class RefundForm(forms.Form):
    amount = forms.CharField(label=_("Amount (yuan)"), max_length=20)
    reason = forms.CharField(label=_("Reason"), max_length=200, widget=forms.Textarea({"rows": 3}))

    def __init__(self, *args, refundable_fen: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.refundable_fen = refundable_fen
        self.fields["amount"].initial = fen_to_yuan(refundable_fen)

    def clean_amount(self) -> int:
        fen = yuan_to_fen(self.cleaned_data["amount"])
        if fen <= 0 or fen > self.refundable_fen:
            raise forms.ValidationError(
                _("Enter an amount between 0.01 and %(max)s.") % {"max": fen_to_yuan(self.refundable_fen)})
        return fen


@admin.register(Order, site=hospital_admin_site)
class OrderAdmin(RoleModelAdmin):
    """Orders are read-only here: money moves only through the refund form and the services."""

    list_display = ("out_trade_no", "kind", "description", "total", "insurance", "self_pay",
                    "refunded", "status", "needs_attention", "created_at")
    list_filter = ("status", "kind", "needs_attention", "provider")
    search_fields = ("out_trade_no", "provider_txn_id")
    date_hierarchy = "created_at"
    inlines = [RefundInline, OrderEventInline]
    readonly_fields = ("out_trade_no", "kind", "description", "payer", "total", "insurance",
                       "self_pay", "refunded", "currency", "status", "provider",
                       "provider_txn_id", "expires_at", "paid_at", "closed_at", "close_reason",
                       "needs_attention", "attention_reason", "created_at", "refund_link")
    fields = readonly_fields
    total = yuan_column("total_fen", _("total"))
    insurance = yuan_column("insurance_fen", _("insurance"))
    self_pay = yuan_column("self_pay_fen", _("self-pay"))
    refunded = yuan_column("refunded_fen", _("refunded"))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("refund"))
    def refund_link(self, obj):
        if obj.refundable_fen <= 0:
            return "—"
        url = reverse("hospital_admin:payments_order_refund", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Refund…"))

    def get_urls(self):
        return [path("<int:pk>/refund/", self.admin_site.admin_view(self.refund_view),
                     name="payments_order_refund"), *super().get_urls()]

    def refund_view(self, request, pk: int):
        if staff_role(request) not in (Role.HOSPITAL_ADMIN, Role.FINANCE):
            messages.error(request, _("Only finance staff and hospital admins can refund."))
            return redirect("hospital_admin:payments_order_change", pk)
        order = get_object_or_404(Order, pk=pk)
        form = RefundForm(request.POST or None, refundable_fen=order.refundable_fen)
        if request.method == "POST" and form.is_valid():
            try:
                refund = services.refund_request(
                    order=order, amount_fen=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"], actor=request.user, source="staff")
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, _("Refund %(no)s of ¥%(amount)s: %(status)s.") % {
                    "no": refund.out_refund_no, "amount": fen_to_yuan(refund.amount_fen),
                    "status": refund.get_status_display()}, messages.SUCCESS)
                return redirect("hospital_admin:payments_order_change", pk)
        context = {**self.admin_site.each_context(request), "opts": self.opts, "order": order,
                   "form": form, "title": _("Refund order %(no)s") % {"no": order.out_trade_no},
                   "refundable": fen_to_yuan(order.refundable_fen)}
        return TemplateResponse(request, "admin/payments/refund_form.html", context)


@admin.register(Refund, site=hospital_admin_site)
class RefundAdmin(RoleModelAdmin):
    list_display = ("out_refund_no", "order", "amount", "reason", "status", "requested_by",
                    "created_at", "succeeded_at")
    list_filter = ("status",)
    search_fields = ("out_refund_no", "order__out_trade_no")
    list_select_related = ("order", "requested_by")
    amount = yuan_column("amount_fen", _("amount"))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PaymentSettingsForm(forms.ModelForm):
    """Secrets are write-only: left empty, the stored value is kept."""

    SECRET_FIELDS = ("sandbox_api_key", "wechat_private_key", "wechat_apiv3_key",
                     "insurance_api_key")

    class Meta:
        model = PaymentSettings
        fields = ("provider", "sandbox_merchant_id", "sandbox_api_key", "wechat_mchid",
                  "wechat_appid", "wechat_cert_serial_no", "wechat_private_key",
                  "wechat_apiv3_key", "wechat_platform_public_key",
                  "wechat_platform_public_key_id", "wechat_base_url", "insurance_policy",
                  "insurance_gateway_url", "insurance_api_key")
        widgets = {
            "insurance_api_key": forms.PasswordInput(render_value=False),
            "sandbox_api_key": forms.PasswordInput(render_value=False),
            "wechat_private_key": forms.Textarea({"rows": 4, "placeholder": "(unchanged)"}),
            "wechat_apiv3_key": forms.PasswordInput(render_value=False),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.SECRET_FIELDS:
            self.fields[name].required = False
            self.initial[name] = ""

    def clean_insurance_policy(self):
        from .insurance import InsuranceInputError, InsurancePolicy

        policy = self.cleaned_data.get("insurance_policy") or {}
        if policy:
            try:
                InsurancePolicy.from_dict(policy)
            except (InsuranceInputError, TypeError) as exc:
                raise forms.ValidationError(str(getattr(exc, "message", exc))) from None
        return policy

    def clean(self):
        data = super().clean()
        for name in self.SECRET_FIELDS:
            if not data.get(name) and self.instance.pk:
                data[name] = getattr(self.instance, name)
        return data


@admin.register(PaymentSettings, site=hospital_admin_site)
class PaymentSettingsAdmin(RoleModelAdmin):
    roles = {Role.HOSPITAL_ADMIN}
    form = PaymentSettingsForm
    list_display = ("provider", "sandbox_merchant_id", "wechat_mchid", "changed_at")

    @admin.display(description=_("updated at"), ordering="updated_at")
    def changed_at(self, obj):
        return obj.updated_at  # the field has no verbose name of its own

    def has_add_permission(self, request):
        return not PaymentSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


# --------------------------------------------------------------------------- reconciliation


from .models import Discrepancy, ReconciliationRun  # noqa: E402
from .reconciliation import ReconciliationFailed, failure_message, reconcile_day  # noqa: E402


class ReconcileForm(forms.Form):
    day = forms.DateField(label=_("Statement day"), widget=forms.DateInput({"type": "date"}))

    def clean_day(self):
        from django.utils import timezone

        day = self.cleaned_data["day"]
        if day >= timezone.localdate():
            raise forms.ValidationError(_("Statements exist only for days that have ended."))
        return day


class DiscrepancyInline(ReadOnlyInline):
    model = Discrepancy
    fields = ("kind", "line_kind", "out_trade_no", "out_refund_no", "provider_amount_fen",
              "local_amount_fen", "local_status", "resolution", "note")
    readonly_fields = fields


@admin.register(ReconciliationRun, site=hospital_admin_site)
class ReconciliationRunAdmin(RoleModelAdmin):
    """The daily summary per hospital: totals on both sides and what did not match."""

    list_display = ("day", "provider", "status", "statement_lines", "provider_paid",
                    "local_paid", "provider_refunded", "local_refunded", "discrepancies",
                    "finished_at")
    list_filter = ("status", "failure", "provider")
    date_hierarchy = "day"
    inlines = [DiscrepancyInline]
    readonly_fields = ("day", "provider", "status", "failure_explained", "statement_lines",
                       "provider_paid", "local_paid", "provider_refunded", "local_refunded",
                       "discrepancies", "error", "started_by", "started_at", "finished_at")
    provider_paid = yuan_column("provider_paid_fen", _("provider: paid"))
    local_paid = yuan_column("local_paid_fen", _("ours: paid"))
    provider_refunded = yuan_column("provider_refunded_fen", _("provider: refunded"))
    local_refunded = yuan_column("local_refunded_fen", _("ours: refunded"))

    def get_fields(self, request, obj=None):
        # The exception text is for hospital admins (and support); finance reads what failed
        # and what to do in failure_explained.
        hidden = set() if staff_role(request) == Role.HOSPITAL_ADMIN else {"error"}
        if obj is None or obj.status != ReconciliationRun.Status.FAILED:
            hidden |= {"failure_explained", "error"}
        return [f for f in self.readonly_fields if f not in hidden]

    @admin.display(description=_("what happened"))
    def failure_explained(self, obj) -> str:
        return failure_message(obj)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def add_view(self, request, form_url="", extra_context=None):
        """'Add' is 'reconcile a day': fetch that day's statement and compare, now."""
        form = ReconcileForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                run = reconcile_day(day=form.cleaned_data["day"], actor=request.user)
            except ReconciliationFailed as exc:  # provider down, statement unreadable, ...
                # What failed and what to do, in words; the detail is on the run for admins.
                form.add_error(None, exc.message)
            else:
                self.message_user(request, _("%(day)s reconciled: %(n)d discrepancies.") % {
                    "day": run.day, "n": run.discrepancies}, messages.SUCCESS)
                return redirect("hospital_admin:payments_reconciliationrun_change", run.pk)
        context = {**self.admin_site.each_context(request), "opts": self.opts, "form": form,
                   "title": _("Reconcile a day")}
        return TemplateResponse(request, "admin/payments/reconcile_form.html", context)


@admin.register(Discrepancy, site=hospital_admin_site)
class DiscrepancyAdmin(RoleModelAdmin):
    list_display = ("run", "kind", "line_kind", "out_trade_no", "provider_amount_fen",
                    "local_amount_fen", "resolution", "note")
    list_filter = ("kind", "resolution", "line_kind")
    search_fields = ("out_trade_no", "out_refund_no")
    list_select_related = ("run",)
    readonly_fields = ("run", "kind", "line_kind", "out_trade_no", "out_refund_no",
                       "provider_amount_fen", "local_amount_fen", "local_status", "resolved_at")
    fields = (*readonly_fields, "resolution", "note")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        from .reconciliation import discrepancy_resolve_manually

        discrepancy_resolve_manually(discrepancy=obj, note=obj.note, by=request.user)


