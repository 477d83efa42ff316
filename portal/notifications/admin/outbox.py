"""The delivery log: every event the outbox relayed and every delivery of it, with status,
attempts and the last error; filters by event kind, channel and status.

Read-only (the log is written by the workers only). The platform sees all hospitals; a
hospital's admins (hospital admin role only) see their hospital's events.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, F, Func, IntegerField, Q
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from portal.accounts.validators import mask_mobile
from portal.admin_sites import (
    PlatformModelAdmin,
    ReadOnlyPermissions,
    RoleModelAdmin,
    hospital_admin_site,
    platform_admin_site,
)

from ..models import Delivery, OutboxEvent
from .filters import DeliveryEventKindFilter, EventKindFilter


class OutboxEventLog(ReadOnlyPermissions):
    list_display = ("id", "kind", "hospital", "created_at", "relayed_at", "recipients_count",
                    "sent_count", "failed_count", "deliveries_link")
    list_filter = (EventKindFilter, "relayed_at")
    list_select_related = ("hospital",)
    search_fields = ("kind",)
    date_hierarchy = "created_at"
    exclude = ("recipients",)  # thousands of ids: the count is enough
    readonly_fields = ("kind", "hospital", "created_at", "relayed_at", "recipients_count",
                       "sent_count", "failed_count", "link", "context", "deliveries_link")
    fields = readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            _recipients=Func(F("recipients"), function="jsonb_array_length",
                             output_field=IntegerField()),
            _sent=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.SENT)),
            _failed=Count("deliveries", filter=Q(deliveries__status__in=[
                Delivery.Status.FAILED, Delivery.Status.DEAD])))

    @admin.display(description=_("recipients"), ordering="_recipients")
    def recipients_count(self, obj):
        return obj._recipients

    @admin.display(description=_("sent"), ordering="_sent")
    def sent_count(self, obj):
        return obj._sent

    @admin.display(description=_("failed"), ordering="_failed")
    def failed_count(self, obj):
        return obj._failed

    @admin.display(description=_("deliveries"))
    def deliveries_link(self, obj):
        url = reverse(f"{self.admin_site.name}:notifications_delivery_changelist")
        return format_html('<a href="{}?event__id__exact={}">{}</a>', url, obj.pk,
                           _("deliveries"))


class DeliveryLog(ReadOnlyPermissions):
    list_display = ("id", "event_link", "event_kind", "recipient", "channel", "status",
                    "attempts", "last_error", "created_at", "sent_at")
    list_filter = (DeliveryEventKindFilter, "channel", "status")
    list_select_related = ("event", "user")
    search_fields = ("dedupe_key", "last_error")
    readonly_fields = ("event_link", "event_kind", "recipient", "channel", "status", "attempts",
                       "last_error", "dedupe_key", "created_at", "sent_at")
    fields = readonly_fields
    show_full_result_count = False  # the log grows large: no second COUNT(*) per page

    @admin.display(description=_("event"), ordering="event__kind")
    def event_kind(self, obj):
        return obj.event.kind

    @admin.display(description=_("event"), ordering="event_id")
    def event_link(self, obj):
        url = reverse(f"{self.admin_site.name}:notifications_outboxevent_change",
                      args=[obj.event_id])
        return format_html('<a href="{}">#{}</a>', url, obj.event_id)

    @admin.display(description=_("recipient"), ordering="user_id")
    def recipient(self, obj):
        # never a full mobile number in the log
        return f"{obj.user.name or obj.user_id} ({mask_mobile(obj.user.phone)})"


class PlatformOutboxEventAdmin(OutboxEventLog, PlatformModelAdmin):
    pass


class PlatformDeliveryAdmin(DeliveryLog, PlatformModelAdmin):
    list_filter = (DeliveryEventKindFilter, "channel", "status", "event__hospital")


class HospitalOutboxEventAdmin(OutboxEventLog, RoleModelAdmin):
    roles = {"admin"}
    list_display = tuple(f for f in OutboxEventLog.list_display if f != "hospital")
    readonly_fields = tuple(f for f in OutboxEventLog.readonly_fields if f != "hospital")
    fields = readonly_fields

    def get_queryset(self, request):
        tenant = getattr(request, "tenant", None)
        return super().get_queryset(request).filter(hospital_id=getattr(tenant, "pk", None))


class HospitalDeliveryAdmin(DeliveryLog, RoleModelAdmin):
    roles = {"admin"}

    def get_queryset(self, request):
        tenant = getattr(request, "tenant", None)
        return super().get_queryset(request).filter(event__hospital_id=getattr(tenant, "pk", None))


platform_admin_site.register(OutboxEvent, PlatformOutboxEventAdmin)
platform_admin_site.register(Delivery, PlatformDeliveryAdmin)
hospital_admin_site.register(OutboxEvent, HospitalOutboxEventAdmin)
hospital_admin_site.register(Delivery, HospitalDeliveryAdmin)
