"""Departments, doctors, title fees and patient cards."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import User
from portal.admin_sites import (
    EditableInline,
    RoleModelAdmin,
    YuanField,
    hospital_admin_site,
    yuan_column,
)

from ..models import (
    Department,
    Doctor,
    PatientCard,
    ScheduleTemplate,
    TitleFee,
)
from ..services.rules import doctor_fee_fen_expression
from .base import Role


@admin.register(Department, site=hospital_admin_site)
class DepartmentAdmin(RoleModelAdmin):
    list_display = ("name", "name_en", "parent", "code", "sort_order", "is_active")
    list_filter = ("is_active", "parent")
    list_select_related = ("parent",)
    search_fields = ("name", "name_en", "code")
    list_editable = ("sort_order", "is_active")


@admin.register(PatientCard, site=hospital_admin_site)
class PatientCardAdmin(RoleModelAdmin):
    list_display = ("medical_record_number", "family_member", "created_at")
    list_select_related = ("family_member",)
    search_fields = ("medical_record_number", "family_member__name")
    readonly_fields = ("family_member", "medical_record_number", "created_at")

    def has_add_permission(self, request):
        return False  # cards are created on a patient's first booking


class TitleFeeForm(forms.ModelForm):
    fee = YuanField(label=_("Registration fee (yuan)"),
                    help_text=_("In yuan, e.g. 20 or 12.50. Applies to schedules created from "
                                "now on; existing schedules keep their fee."))

    class Meta:
        model = TitleFee
        fields = ("title",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["fee"] = self.instance.fee_fen

    def save(self, commit=True):
        self.instance.fee_fen = self.cleaned_data["fee"]
        return super().save(commit)


@admin.register(TitleFee, site=hospital_admin_site)
class TitleFeeAdmin(RoleModelAdmin):
    form = TitleFeeForm
    list_display = ("title", "fee")
    fee = yuan_column("fee_fen", _("registration fee"))

    def has_delete_permission(self, request, obj=None):
        return False  # without a row the built-in default fee would apply, silently


class ScheduleTemplateInline(EditableInline, admin.TabularInline):
    model = ScheduleTemplate
    fields = ("weekday", "period", "start_time", "end_time", "slice_minutes",
              "capacity_per_slice", "is_active")
    extra = 0


class DoctorForm(forms.ModelForm):
    fee_override = YuanField(
        label=_("Registration fee override (yuan)"), required=False,
        help_text=_("In yuan. Leave empty to use the fee of the doctor's title. Applies to "
                    "schedules created from now on."))

    class Meta:
        model = Doctor
        fields = ("department", "name", "name_en", "title", "specialties", "intro", "photo_url",
                  "is_active", "sort_order", "account")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["fee_override"] = self.instance.fee_override_fen

    def save(self, commit=True):
        self.instance.fee_override_fen = self.cleaned_data["fee_override"]
        return super().save(commit)


@admin.register(Doctor, site=hospital_admin_site)
class DoctorAdmin(RoleModelAdmin):
    form = DoctorForm
    list_display = ("name", "department", "title", "fee_override", "effective_fee",
                    "specialties", "is_active", "sort_order")
    list_filter = ("department", "title", "is_active")
    list_select_related = ("department",)
    search_fields = ("name", "name_en", "specialties")
    fields = ("department", "name", "name_en", "title", "fee_override", "specialties", "intro",
              "photo_url", "account", "is_active", "sort_order")
    inlines = [ScheduleTemplateInline]
    fee_override = yuan_column("fee_override_fen", _("fee override"))
    effective_fee = yuan_column("effective_fee_fen", _("fee"))

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(effective_fee_fen=doctor_fee_fen_expression())

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "account":
            # Only this hospital's doctor logins: never a list of every user of the platform.
            kwargs["queryset"] = User.objects.filter(
                memberships__hospital_id=request.tenant.pk, memberships__is_active=True,
                memberships__role=Role.DOCTOR).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
