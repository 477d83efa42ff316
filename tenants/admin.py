from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import StaffMembership
from portal.admin_sites import (
    PlatformModelAdmin,
    RoleModelAdmin,
    hospital_admin_site,
    platform_admin_site,
)
from portal.errors import DomainError

from .models import Domain, Hospital
from .services import hospital_provision

RULE_FIELDS = (
    "hold_minutes", "booking_window_days", "release_time", "max_active_bookings",
    "one_booking_per_doctor_per_day", "identity_required", "cancel_cutoff_hour",
    "no_show_limit", "no_show_window_days", "no_show_ban_days",
)
PROFILE_FIELDS = ("name", "name_en", "city", "level", "address", "phone", "intro", "intro_en",
                  "time_zone")


class ProvisionHospitalForm(forms.ModelForm):
    domain = forms.CharField(label=_("Host name"), max_length=253,
                             help_text=_("For example binjiang.localhost or www.example-hospital.cn"))

    class Meta:
        model = Hospital
        fields = ("code", "name", "name_en", "city", "level")


class DomainForm(forms.ModelForm):
    class Meta:
        model = Domain
        fields = ("domain", "is_primary")
        # django-tenants' fields carry no translatable names of their own.
        labels = {"domain": _("Host name"), "is_primary": _("Primary")}


class DomainInline(admin.TabularInline):
    model = Domain
    form = DomainForm
    extra = 0
    fields = ("domain", "is_primary")


@admin.register(Hospital, site=platform_admin_site)
class HospitalAdmin(PlatformModelAdmin):
    list_display = ("name", "code", "city", "level", "is_active", "is_ready", "created_at")
    list_filter = ("is_active", "city", "level")
    search_fields = ("name", "name_en", "code", "city")
    inlines = [DomainInline]
    fieldsets = (
        (None, {"fields": ("code", "schema", "is_active", "is_ready")}),
        (_("Profile"), {"fields": PROFILE_FIELDS}),
        (_("Booking rules"), {"fields": RULE_FIELDS}),
    )
    readonly_fields = ("code", "schema", "is_ready")

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(schema_name="public")

    @admin.display(description=_("database schema"))
    def schema(self, obj):
        return obj.schema_name

    def has_delete_permission(self, request, obj=None):
        return False  # dropping a hospital's schema is not a click in admin

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            return ProvisionHospitalForm
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return ((None, {"fields": ("code", "name", "name_en", "city", "level", "domain")}),)
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_inlines(self, request, obj):
        return [] if obj is None else self.inlines

    def add_view(self, request, form_url="", extra_context=None):
        # Provisioning is one service call; the generic ModelAdmin save path would skip it.
        if request.method == "POST":
            form = ProvisionHospitalForm(request.POST)
            if form.is_valid():
                try:
                    hospital = hospital_provision(**form.cleaned_data)
                except DomainError as exc:
                    field = exc.details.get("field")
                    form.add_error(field if field in form.fields else None, exc.message)
                else:
                    self.message_user(request, _("Hospital “%(name)s” is ready.") % {
                        "name": hospital.name}, messages.SUCCESS)
                    return HttpResponseRedirect(
                        reverse("platform_admin:tenants_hospital_change", args=[hospital.pk]))
            return self._render_provision_form(request, form)
        return super().add_view(request, form_url, extra_context)

    def _render_provision_form(self, request, form):
        admin_form = admin.helpers.AdminForm(form, list(self.get_fieldsets(request)), {})
        context = {
            **self.admin_site.each_context(request),
            "title": _("Add hospital"), "adminform": admin_form, "form_url": "",
            "is_popup": False, "add": True, "change": False, "has_view_permission": True,
            "has_add_permission": True, "has_change_permission": True,
            "has_delete_permission": False, "has_editable_inline_admin_formsets": False,
            "opts": self.opts, "save_as": False, "show_save": True,
            "errors": admin.helpers.AdminErrorList(form, []),
            "inline_admin_formsets": [], "media": self.media + admin_form.media,
            "app_label": self.opts.app_label, "original": None,
        }
        return self.render_change_form(request, context, add=True)


class HospitalSettings(Hospital):
    class Meta:
        proxy = True
        verbose_name = _("hospital profile and rules")
        verbose_name_plural = _("hospital profile and rules")


@admin.register(HospitalSettings, site=hospital_admin_site)
class HospitalSettingsAdmin(RoleModelAdmin):
    """A hospital's admins edit their own profile and booking rules (and nobody else's)."""

    roles = {StaffMembership.Role.HOSPITAL_ADMIN}
    fieldsets = ((_("Profile"), {"fields": PROFILE_FIELDS}),
                 (_("Booking rules"), {"fields": RULE_FIELDS}))
    list_display = ("name", "city", "hold_minutes", "booking_window_days", "max_active_bookings")

    def get_queryset(self, request):
        return super().get_queryset(request).filter(pk=request.tenant.pk)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
