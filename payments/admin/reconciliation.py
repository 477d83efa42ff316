"""Reconciliation runs and their discrepancies: finance compares a day's provider statement."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import StaffMembership
from portal.accounts.selectors import staff_role
from portal.admin_sites import (
    ReadOnlyInline,
    RoleModelAdmin,
    hospital_admin_site,
    yuan_column,
)

from ..models import Discrepancy, ReconciliationRun
from ..reconciliation import ReconciliationFailed, failure_message, reconcile_day

Role = StaffMembership.Role


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
        from ..reconciliation import discrepancy_resolve_manually

        discrepancy_resolve_manually(discrepancy=obj, note=obj.note, by=request.user)
