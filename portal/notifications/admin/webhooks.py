"""Partner webhooks. Hospital admins manage their hospital's endpoints (the signing secret is
shown once, right after creation, never in lists) and see the delivery log with a "Re-send"
action for dead or failed deliveries. Platform operators see every hospital's endpoints and
deliveries."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from portal.admin_sites import (
    PlatformModelAdmin,
    RoleModelAdmin,
    hospital_admin_site,
    platform_admin_site,
)

from .. import webhooks
from ..models import WebhookDelivery, WebhookEndpoint
from .filters import DeliveryEventKindFilter


class WebhookEndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        label=_("events"), choices=[("*", _("All events"))] + [(k, k) for k in
                                                               webhooks.EVENT_KINDS],
        widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ("partner", "url", "events", "is_active")


class WebhookEndpointAdminBase:
    form = WebhookEndpointForm
    list_display = ("partner", "url", "events_list", "own_events_only", "is_active",
                    "created_at")
    list_filter = ("is_active",)
    list_select_related = ("partner",)
    search_fields = ("partner__name", "url")
    fields = ("partner", "url", "events", "is_active")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "partner":
            from portal.partners.models import Partner

            kwargs["queryset"] = Partner.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=_("events"))
    def events_list(self, obj):
        return ", ".join(obj.events)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:  # the only time the secret is ever shown
            self.message_user(request, _(
                "Signing secret of this endpoint (shown only now; give it to the partner): "
                "%(secret)s") % {"secret": obj.secret}, messages.WARNING)


class WebhookDeliveryLog:
    list_display = ("id", "event_id", "event_kind", "endpoint", "status", "attempts",
                    "last_status_code", "last_error", "next_attempt_at", "delivered_at")
    list_filter = ("status", DeliveryEventKindFilter)
    list_select_related = ("event", "endpoint")
    search_fields = ("dedupe_key", "last_error")
    readonly_fields = ("endpoint", "event", "dedupe_key", "status", "attempts",
                       "next_attempt_at", "last_status_code", "last_error", "created_at",
                       "delivered_at")
    fields = readonly_fields
    actions = ("resend",)
    show_full_result_count = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # the log is read-only; the "Re-send" action needs the change permission
        return obj is None and super().has_change_permission(request, obj)

    @admin.display(description=_("event"), ordering="event__kind")
    def event_kind(self, obj):
        return obj.event.kind

    @admin.action(description=_("Re-send (dead or failed deliveries)"))
    def resend(self, request, queryset):
        count = webhooks.resend(queryset.values_list("pk", flat=True))
        self.message_user(request, _("%(count)d deliveries queued again.") % {"count": count})


class PlatformWebhookEndpointAdmin(WebhookEndpointAdminBase, PlatformModelAdmin):
    list_display = ("hospital",) + WebhookEndpointAdminBase.list_display
    list_filter = ("hospital", "is_active", "own_events_only")
    fields = ("hospital",) + WebhookEndpointAdminBase.fields + ("own_events_only",)


class PlatformWebhookDeliveryAdmin(WebhookDeliveryLog, PlatformModelAdmin):
    list_filter = ("status", DeliveryEventKindFilter, "endpoint__hospital")


class HospitalWebhookEndpointAdmin(WebhookEndpointAdminBase, RoleModelAdmin):
    roles = {"admin"}

    def get_queryset(self, request):
        tenant = getattr(request, "tenant", None)
        return super().get_queryset(request).filter(hospital_id=getattr(tenant, "pk", None))

    def save_model(self, request, obj, form, change):
        obj.hospital_id = request.tenant.pk
        super().save_model(request, obj, form, change)


class HospitalWebhookDeliveryAdmin(WebhookDeliveryLog, RoleModelAdmin):
    roles = {"admin"}

    def get_queryset(self, request):
        tenant = getattr(request, "tenant", None)
        return super().get_queryset(request).filter(
            endpoint__hospital_id=getattr(tenant, "pk", None))


platform_admin_site.register(WebhookEndpoint, PlatformWebhookEndpointAdmin)
platform_admin_site.register(WebhookDelivery, PlatformWebhookDeliveryAdmin)
hospital_admin_site.register(WebhookEndpoint, HospitalWebhookEndpointAdmin)
hospital_admin_site.register(WebhookDelivery, HospitalWebhookDeliveryAdmin)
