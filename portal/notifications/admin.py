# --------------------------------------------------------------------------- delivery log
# Read-only: every event the outbox relayed and every delivery of it, with status, attempts
# and the last error; filters by event kind, channel and status. The platform sees all
# hospitals; a hospital's admins (hospital admin role only) see their hospital's events.

from django.contrib import admin as _dl_admin
from django.db.models import Count as _DlCount
from django.db.models import F as _DlF
from django.db.models import Func as _DlFunc
from django.db.models import IntegerField as _DlIntegerField
from django.db.models import Q as _DlQ
from django.urls import reverse as _dl_reverse
from django.utils.html import format_html as _dl_format_html
from django.utils.translation import gettext_lazy

from portal.accounts.validators import mask_mobile as _dl_mask_mobile
from portal.admin_sites import PlatformModelAdmin as _DlPlatformModelAdmin
from portal.admin_sites import RoleModelAdmin as _DlRoleModelAdmin
from portal.admin_sites import hospital_admin_site as _dl_hospital_site
from portal.admin_sites import platform_admin_site as _dl_platform_site

from .models import Delivery as _DlDelivery
from .models import OutboxEvent as _DlOutboxEvent


class _DlReadOnly:
    """Look, never change: the log is written by the workers only."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DeliveryEventKindFilter(_dl_admin.SimpleListFilter):
    """Event kinds among the deliveries this admin may see (not other hospitals' kinds)."""

    title = gettext_lazy("event")
    parameter_name = "event__kind"

    def lookups(self, request, model_admin):
        kinds = (model_admin.get_queryset(request).order_by()
                 .values_list("event__kind", flat=True).distinct())
        return [(k, k) for k in sorted(kinds)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(event__kind=self.value())
        return queryset


class EventKindFilter(DeliveryEventKindFilter):
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        kinds = model_admin.get_queryset(request).order_by().values_list(
            "kind", flat=True).distinct()
        return [(k, k) for k in sorted(kinds)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(kind=self.value())
        return queryset


class _OutboxEventLog(_DlReadOnly):
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
            _recipients=_DlFunc(_DlF("recipients"), function="jsonb_array_length",
                                output_field=_DlIntegerField()),
            _sent=_DlCount("deliveries", filter=_DlQ(deliveries__status=_DlDelivery.Status.SENT)),
            _failed=_DlCount("deliveries", filter=_DlQ(deliveries__status__in=[
                _DlDelivery.Status.FAILED, _DlDelivery.Status.DEAD])))

    @_dl_admin.display(description=gettext_lazy("recipients"), ordering="_recipients")
    def recipients_count(self, obj):
        return obj._recipients

    @_dl_admin.display(description=gettext_lazy("sent"), ordering="_sent")
    def sent_count(self, obj):
        return obj._sent

    @_dl_admin.display(description=gettext_lazy("failed"), ordering="_failed")
    def failed_count(self, obj):
        return obj._failed

    @_dl_admin.display(description=gettext_lazy("deliveries"))
    def deliveries_link(self, obj):
        url = _dl_reverse(f"{self.admin_site.name}:notifications_delivery_changelist")
        return _dl_format_html('<a href="{}?event__id__exact={}">{}</a>', url, obj.pk,
                               gettext_lazy("deliveries"))


class _DeliveryLog(_DlReadOnly):
    list_display = ("id", "event_link", "event_kind", "recipient", "channel", "status",
                    "attempts", "last_error", "created_at", "sent_at")
    list_filter = (DeliveryEventKindFilter, "channel", "status")
    list_select_related = ("event", "user")
    search_fields = ("dedupe_key", "last_error")
    readonly_fields = ("event_link", "event_kind", "recipient", "channel", "status", "attempts",
                       "last_error", "dedupe_key", "created_at", "sent_at")
    fields = readonly_fields
    show_full_result_count = False  # the log grows large: no second COUNT(*) per page

    @_dl_admin.display(description=gettext_lazy("event"), ordering="event__kind")
    def event_kind(self, obj):
        return obj.event.kind

    @_dl_admin.display(description=gettext_lazy("event"), ordering="event_id")
    def event_link(self, obj):
        url = _dl_reverse(f"{self.admin_site.name}:notifications_outboxevent_change",
                          args=[obj.event_id])
        return _dl_format_html('<a href="{}">#{}</a>', url, obj.event_id)

    @_dl_admin.display(description=gettext_lazy("recipient"), ordering="user_id")
    def recipient(self, obj):
        # never a full mobile number in the log
        return f"{obj.user.name or obj.user_id} ({_dl_mask_mobile(obj.user.phone)})"


class PlatformOutboxEventAdmin(_OutboxEventLog, _DlPlatformModelAdmin):
    pass


class PlatformDeliveryAdmin(_DeliveryLog, _DlPlatformModelAdmin):
    list_filter = (DeliveryEventKindFilter, "channel", "status", "event__hospital")


class HospitalOutboxEventAdmin(_OutboxEventLog, _DlRoleModelAdmin):
    roles = {"admin"}
    list_display = tuple(f for f in _OutboxEventLog.list_display if f != "hospital")
    readonly_fields = tuple(f for f in _OutboxEventLog.readonly_fields if f != "hospital")
    fields = readonly_fields

    def get_queryset(self, request):
        tenant = getattr(request, "tenant", None)
        return super().get_queryset(request).filter(hospital_id=getattr(tenant, "pk", None))


class HospitalDeliveryAdmin(_DeliveryLog, _DlRoleModelAdmin):
    roles = {"admin"}

    def get_queryset(self, request):
        tenant = getattr(request, "tenant", None)
        return super().get_queryset(request).filter(event__hospital_id=getattr(tenant, "pk", None))


_dl_platform_site.register(_DlOutboxEvent, PlatformOutboxEventAdmin)
_dl_platform_site.register(_DlDelivery, PlatformDeliveryAdmin)
_dl_hospital_site.register(_DlOutboxEvent, HospitalOutboxEventAdmin)
_dl_hospital_site.register(_DlDelivery, HospitalDeliveryAdmin)


# --------------------------------------------------------------------------- message templates
# A hospital's own wording of an event per language (hospital admins only, on the hospital's
# admin). Placeholders are checked on save: only the names the event's built-in text uses.

from django import forms as _nt_forms  # noqa: E402
from django.core.exceptions import ValidationError as _NtValidationError  # noqa: E402
from django.utils.translation import gettext_lazy  # noqa: E402  (named so makemessages finds it)

from .messages import MESSAGES as _NT_MESSAGES  # noqa: E402
from .messages import placeholders as _nt_placeholders  # noqa: E402
from .models import NotificationTemplate as _NtTemplate  # noqa: E402


class HospitalNotificationTemplateAdmin(_DlRoleModelAdmin):
    roles = {"admin"}
    list_display = ("kind", "language", "title", "updated_at")
    list_filter = ("kind", "language")
    fields = ("kind", "language", "title", "body")

    def get_queryset(self, request):
        tenant = getattr(request, "tenant", None)
        return super().get_queryset(request).filter(hospital_id=getattr(tenant, "pk", None))

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "kind":
            return _nt_forms.ChoiceField(
                label=db_field.verbose_name, choices=[(k, k) for k in _NT_MESSAGES],
                help_text=" · ".join(
                    f"{k}: " + ", ".join(f"%({n})s" for n in sorted(_nt_placeholders(k)))
                    for k in _NT_MESSAGES))
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_form(self, request, obj=None, **kwargs):
        base = super().get_form(request, obj, **kwargs)
        hospital_id = request.tenant.pk

        class TemplateForm(base):
            def __init__(self, *args, **kw):
                super().__init__(*args, **kw)
                self.instance.hospital_id = hospital_id  # the model's checks see the hospital

            def clean(self):
                data = super().clean()
                if _NtTemplate.objects.filter(
                        hospital_id=hospital_id, kind=data.get("kind"),
                        language=data.get("language")).exclude(pk=self.instance.pk).exists():
                    raise _NtValidationError(gettext_lazy(
                        "This hospital already has a template for this event and language."))
                return data

        return TemplateForm


_dl_hospital_site.register(_NtTemplate, HospitalNotificationTemplateAdmin)


# --------------------------------------------------------------------------- partner webhooks
# Hospital admins manage their hospital's endpoints (the signing secret is shown once, right
# after creation, never in lists) and see the delivery log with a "Re-send" action for dead
# or failed deliveries. Platform operators see every hospital's endpoints and deliveries.

from django import forms as _wh_forms  # noqa: E402
from django.contrib import admin as _wh_admin  # noqa: E402
from django.contrib import messages as _wh_messages  # noqa: E402

from portal.admin_sites import PlatformModelAdmin as _WhPlatformModelAdmin  # noqa: E402
from portal.admin_sites import RoleModelAdmin as _WhRoleModelAdmin  # noqa: E402
from portal.admin_sites import hospital_admin_site as _wh_hospital_site  # noqa: E402
from portal.admin_sites import platform_admin_site as _wh_platform_site  # noqa: E402

from . import webhooks as _wh  # noqa: E402
from .models import WebhookDelivery as _WhDelivery  # noqa: E402
from .models import WebhookEndpoint as _WhEndpoint  # noqa: E402


class _WhEndpointForm(_wh_forms.ModelForm):
    events = _wh_forms.MultipleChoiceField(
        label=gettext_lazy("events"), choices=[("*", gettext_lazy("All events"))] + [(k, k) for k in
                                                                     _wh.EVENT_KINDS],
        widget=_wh_forms.CheckboxSelectMultiple)

    class Meta:
        model = _WhEndpoint
        fields = ("partner", "url", "events", "is_active")


class _WhEndpointAdmin:
    form = _WhEndpointForm
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

    @_wh_admin.display(description=gettext_lazy("events"))
    def events_list(self, obj):
        return ", ".join(obj.events)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:  # the only time the secret is ever shown
            self.message_user(request, gettext_lazy(
                "Signing secret of this endpoint (shown only now; give it to the partner): "
                "%(secret)s") % {"secret": obj.secret}, _wh_messages.WARNING)


class _WhEventKindFilter(_wh_admin.SimpleListFilter):
    """Event kinds among the deliveries this admin may see (not other hospitals' kinds)."""

    title = gettext_lazy("event")
    parameter_name = "event__kind"

    def lookups(self, request, model_admin):
        kinds = (model_admin.get_queryset(request).order_by()
                 .values_list("event__kind", flat=True).distinct())
        return [(k, k) for k in sorted(kinds)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(event__kind=self.value())
        return queryset


class _WhDeliveryLog:
    list_display = ("id", "event_id", "event_kind", "endpoint", "status", "attempts",
                    "last_status_code", "last_error", "next_attempt_at", "delivered_at")
    list_filter = ("status", _WhEventKindFilter)
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

    @_wh_admin.display(description=gettext_lazy("event"), ordering="event__kind")
    def event_kind(self, obj):
        return obj.event.kind

    @_wh_admin.action(description=gettext_lazy("Re-send (dead or failed deliveries)"))
    def resend(self, request, queryset):
        count = _wh.resend(queryset.values_list("pk", flat=True))
        self.message_user(request, gettext_lazy("%(count)d deliveries queued again.") % {"count": count})


class PlatformWebhookEndpointAdmin(_WhEndpointAdmin, _WhPlatformModelAdmin):
    list_display = ("hospital",) + _WhEndpointAdmin.list_display
    list_filter = ("hospital", "is_active", "own_events_only")
    fields = ("hospital",) + _WhEndpointAdmin.fields + ("own_events_only",)


class PlatformWebhookDeliveryAdmin(_WhDeliveryLog, _WhPlatformModelAdmin):
    list_filter = ("status", _WhEventKindFilter, "endpoint__hospital")


class HospitalWebhookEndpointAdmin(_WhEndpointAdmin, _WhRoleModelAdmin):
    roles = {"admin"}

    def get_queryset(self, request):
        tenant = getattr(request, "tenant", None)
        return super().get_queryset(request).filter(hospital_id=getattr(tenant, "pk", None))

    def save_model(self, request, obj, form, change):
        obj.hospital_id = request.tenant.pk
        super().save_model(request, obj, form, change)


class HospitalWebhookDeliveryAdmin(_WhDeliveryLog, _WhRoleModelAdmin):
    roles = {"admin"}

    def get_queryset(self, request):
        tenant = getattr(request, "tenant", None)
        return super().get_queryset(request).filter(
            endpoint__hospital_id=getattr(tenant, "pk", None))


_wh_platform_site.register(_WhEndpoint, PlatformWebhookEndpointAdmin)
_wh_platform_site.register(_WhDelivery, PlatformWebhookDeliveryAdmin)
_wh_hospital_site.register(_WhEndpoint, HospitalWebhookEndpointAdmin)
_wh_hospital_site.register(_WhDelivery, HospitalWebhookDeliveryAdmin)
