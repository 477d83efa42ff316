"""Orders and refunds in a hospital's admin: read-only records, refunds issued by finance."""

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
    ReadOnlyModelAdmin,
    hospital_admin_site,
    yuan_column,
)
from portal.errors import DomainError
from portal.money import fen_to_yuan, yuan_to_fen

from .. import services
from ..models import Order, OrderEvent, Refund

Role = StaffMembership.Role


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
class OrderAdmin(ReadOnlyModelAdmin):
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
class RefundAdmin(ReadOnlyModelAdmin):
    list_display = ("out_refund_no", "order", "amount", "reason", "status", "requested_by",
                    "created_at", "succeeded_at")
    list_filter = ("status",)
    search_fields = ("out_refund_no", "order__out_trade_no")
    list_select_related = ("order", "requested_by")
    amount = yuan_column("amount_fen", _("amount"))
