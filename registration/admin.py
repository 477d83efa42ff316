from __future__ import annotations

from django.contrib import admin

from portal.admin_sites import RoleModelAdmin, hospital_admin_site

from .models import Department, PatientCard


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
