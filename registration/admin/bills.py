"""Clinic bills in a hospital's admin: doctors and finance raise them, items priced in yuan.

Served at the admin address bills had while they lived
in payments (/admin/payments/clinicbill/)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import StaffMembership
from portal.admin_sites import RoleInline, RoleModelAdmin, YuanField, hospital_admin_site, yuan_column
from portal.errors import DomainError
from registration.models import ClinicBill, ClinicBillItem
from registration.services import bills

Role = StaffMembership.Role



class ClinicBillItemForm(forms.ModelForm):
    unit_price_fen = YuanField(label=_("Unit price (yuan)"))

    class Meta:
        model = ClinicBillItem
        fields = ("name", "item_class", "unit_price_fen", "quantity")


class ClinicBillItemInline(RoleInline, admin.TabularInline):
    model = ClinicBillItem
    form = ClinicBillItemForm
    fields = ("name", "item_class", "unit_price_fen", "quantity")
    extra = 3

    def has_change_permission(self, request, obj=None):
        return self._parent_admin().has_change_permission(request, obj) and (
            obj is None or obj.status == ClinicBill.Status.UNPAID)

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission


@admin.register(ClinicBill, site=hospital_admin_site)
class ClinicBillAdmin(RoleModelAdmin):
    """Doctors and finance raise bills; the patient pays them on the hospital site."""

    roles = {Role.HOSPITAL_ADMIN, Role.FINANCE, Role.DOCTOR}
    # Where bills were before they moved from payments to registration (see admin_sites).
    admin_url_path = "payments/clinicbill/"
    list_display = ("bill_no", "patient_card", "department", "doctor_name", "total",
                    "status", "created_at")
    list_filter = ("status", "department")
    search_fields = ("bill_no", "patient_card__medical_record_number")
    autocomplete_fields = ("patient_card",)
    list_select_related = ("patient_card", "department")
    inlines = [ClinicBillItemInline]
    total = yuan_column("total_fen", _("total"))

    def get_fields(self, request, obj=None):
        base = ["patient_card", "department", "doctor_name"]
        return base if obj is None else ["bill_no", *base, "total", "status", "insurance_type",
                                         "order", "paid_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("bill_no", "patient_card", "total", "status", "insurance_type", "order",
                "paid_at", *(() if obj.status == ClinicBill.Status.UNPAID else
                             ("department", "doctor_name")))

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["department", "doctor_name"])
            return
        bill = bills.clinic_bill_open(patient_card=form.cleaned_data["patient_card"],
                                      department=form.cleaned_data.get("department"),
                                      doctor_name=form.cleaned_data.get("doctor_name", ""),
                                      by=request.user)
        obj.pk, obj.bill_no, obj.created_at = bill.pk, bill.bill_no, bill.created_at
        obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        # Items go through the service, which checks them and recomputes the total.
        obj = form.instance
        for formset in formsets:
            # The service writes the items; the admin's change message expects these lists.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            if formset.model is ClinicBillItem and (not change or formset.has_changed()):
                items = [f.cleaned_data for f in formset.forms
                         if f.cleaned_data and not f.cleaned_data.get("DELETE")]
                try:
                    bills.clinic_bill_set_items(bill=obj, items=[
                        {"name": i["name"], "item_class": i["item_class"],
                         "unit_price_fen": i["unit_price_fen"], "quantity": i["quantity"]}
                        for i in items])
                except DomainError as exc:
                    self.message_user(request, exc.message, messages.ERROR)

    @admin.action(description=_("Cancel selected unpaid bills"))
    def cancel_bills(self, request, queryset):
        done = 0
        for bill in queryset:
            try:
                bills.clinic_bill_cancel(bill=bill, by=request.user)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{bill.bill_no}: {exc.message}", messages.WARNING)
        self.message_user(request, _("%(n)d bills cancelled.") % {"n": done})

    actions = ["cancel_bills"]
