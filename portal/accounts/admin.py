from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _

from portal.admin_sites import (
    PlatformModelAdmin,
    RoleModelAdmin,
    hospital_admin_site,
    platform_admin_site,
)

from .forms import PhoneField
from .models import FamilyMember, StaffMembership, User
from .services import staff_grant


class PhoneUserCreationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("phone", "name")


@admin.register(User, site=platform_admin_site)
class UserAdmin(PlatformModelAdmin, BaseUserAdmin):
    ordering = ("-date_joined",)
    list_display = ("masked_phone", "name", "is_staff", "is_active", "date_joined")
    list_filter = ("is_staff", "is_active")
    search_fields = ("phone", "name")
    add_form = PhoneUserCreationForm
    fieldsets = (
        (None, {"fields": ("phone", "password")}),
        (_("Profile"), {"fields": ("name", "email", "language")}),
        (_("Access"), {"fields": ("is_active", "is_staff", "is_superuser")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",),
                             "fields": ("phone", "name", "password1", "password2")}),)
    filter_horizontal = ()

    def has_delete_permission(self, request, obj=None):
        # Deactivate instead: hospitals keep bookings, bills and cards that name the account,
        # and the admin's delete would follow them into hospital tables that are not here.
        return False

    @admin.display(description=_("mobile number"))
    def masked_phone(self, obj):
        return obj.masked_phone


@admin.register(FamilyMember, site=platform_admin_site)
class FamilyMemberAdmin(PlatformModelAdmin):
    list_display = ("name", "relation", "masked_id_number", "sex", "birth_date", "account")
    list_select_related = ("account",)
    fields = ("account", "name", "relation", "masked_id_number", "sex", "birth_date",
              "masked_phone")
    readonly_fields = fields  # changed by the patient only, through the services
    search_fields = ("name",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # Patients remove members themselves (the service keeps members hospitals refer to);
        # the admin's delete would follow relations into hospital tables that are not here.
        return False

    @admin.display(description=_("resident ID number"))
    def masked_id_number(self, obj):
        return obj.masked_id_number

    @admin.display(description=_("mobile number"))
    def masked_phone(self, obj):
        return obj.masked_phone


@admin.register(StaffMembership, site=platform_admin_site)
class StaffMembershipAdmin(PlatformModelAdmin):
    list_display = ("user", "hospital", "role", "is_active", "created_at")
    list_filter = ("role", "is_active", "hospital")
    autocomplete_fields = ("user",)
    search_fields = ("user__phone", "user__name", "hospital__name")


class HospitalStaff(StaffMembership):
    class Meta:
        proxy = True
        verbose_name = _("staff member")
        verbose_name_plural = _("staff members")


class HospitalStaffForm(forms.ModelForm):
    phone = PhoneField(label=_("Mobile number of the staff member's account"), max_length=20)

    class Meta:
        model = HospitalStaff
        fields = ("role", "is_active")

    def clean_phone(self):
        phone = self.cleaned_data["phone"]
        user = User.objects.filter(phone=phone).first()
        if user is None:
            raise forms.ValidationError(
                _("No account uses this number. Ask the person to sign up first."))
        self.instance.user = user
        return phone


@admin.register(HospitalStaff, site=hospital_admin_site)
class HospitalStaffAdmin(RoleModelAdmin):
    """A hospital admin manages the staff of their own hospital only."""

    roles = {StaffMembership.Role.HOSPITAL_ADMIN}
    list_display = ("user", "role", "is_active", "created_at")
    list_filter = ("role", "is_active")

    def get_queryset(self, request):
        return super().get_queryset(request).filter(hospital_id=request.tenant.pk)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            return HospitalStaffForm
        return super().get_form(request, obj, fields=("role", "is_active"))

    def get_fields(self, request, obj=None):
        return ("phone", "role", "is_active") if obj is None else ("role", "is_active")

    def save_model(self, request, obj, form, change):
        # Through the service, always for the request's own hospital.
        membership = staff_grant(user=obj.user, hospital=request.tenant, role=obj.role,
                                 is_active=obj.is_active)
        obj.pk, obj.hospital = membership.pk, membership.hospital
