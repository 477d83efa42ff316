"""Platform admin: partners, their API keys (the plaintext shown once) and grants."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.admin_sites import PlatformModelAdmin, platform_admin_site

from . import services
from .auth import auth_cache
from .models import ApiKey, Grant, Partner, Scope


class GrantInline(admin.TabularInline):
    model = Grant
    extra = 0
    fields = ("hospital", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ()

    def has_view_permission(self, request, obj=None):
        return platform_admin_site.has_permission(request)

    has_add_permission = has_change_permission = has_delete_permission = \
        lambda self, request, obj=None: platform_admin_site.has_permission(request)


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ("name", "prefix", "scopes", "rate_limit", "created_at", "last_used_at",
              "revoked_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True
    verbose_name_plural = _("API keys (create them under API keys)")

    def has_view_permission(self, request, obj=None):
        return platform_admin_site.has_permission(request)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PartnerAdmin(PlatformModelAdmin):
    list_display = ("name", "contact_email", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "contact_email")
    inlines = [GrantInline, ApiKeyInline]

    def has_delete_permission(self, request, obj=None):
        return False  # bookings remember their partner: deactivate instead


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(label=_("scopes"), choices=Scope.choices,
                                       widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ("partner", "name", "scopes", "rate_limit")


class ApiKeyAdmin(PlatformModelAdmin):
    form = ApiKeyForm
    list_display = ("__str__", "partner", "name", "scopes_list", "last_used_at", "revoked_at")
    list_filter = ("partner", "revoked_at")
    list_select_related = ("partner",)
    search_fields = ("prefix", "name", "partner__name")
    actions = ("revoke",)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("partner", "name", "scopes", "rate_limit")
        return ("partner", "name", "prefix", "scopes", "rate_limit", "created_at",
                "last_used_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("partner", "prefix", "created_at", "last_used_at", "revoked_at")

    @admin.display(description=_("scopes"))
    def scopes_list(self, obj):
        return ", ".join(obj.scopes)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = services.api_key_create(
            partner=form.cleaned_data["partner"], scopes=form.cleaned_data["scopes"],
            name=form.cleaned_data.get("name", ""), rate_limit=form.cleaned_data.get("rate_limit"))
        obj.pk = key.pk
        obj.prefix, obj.key_hash, obj.created_at = key.prefix, key.key_hash, key.created_at
        # The only time the key is ever shown: it is stored hashed.
        self.message_user(request, _("API key (shown only now; give it to the partner): "
                                     "%(key)s") % {"key": raw}, messages.WARNING)

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the key's history stays

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        auth_cache.invalidate()
        self.message_user(request, _("%(count)d keys revoked.") % {"count": count})


class GrantAdmin(PlatformModelAdmin):
    list_display = ("partner", "hospital", "created_at")
    list_filter = ("partner", "hospital")
    list_select_related = ("partner", "hospital")


platform_admin_site.register(Partner, PartnerAdmin)
platform_admin_site.register(ApiKey, ApiKeyAdmin)
platform_admin_site.register(Grant, GrantAdmin)
