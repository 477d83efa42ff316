"""The consultation settings, online doctors and consultations (with quality figures)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import StaffMembership
from portal.admin_sites import ReadOnlyInline, ReadOnlyModelAdmin, RoleModelAdmin, hospital_admin_site

from .. import selectors
from ..models import Consultation, ConsultationEvent, ConsultSettings, DoctorConsultProfile, Message, Record

Role = StaffMembership.Role

QUALITY_PERIOD_PARAM = "quality_period"


@admin.register(ConsultSettings, site=hospital_admin_site)
class ConsultSettingsAdmin(RoleModelAdmin):
    roles = {Role.HOSPITAL_ADMIN}
    list_display = ("__str__", "response_hours", "department_fee_fen", "emergency_phone")

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not ConsultSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DoctorConsultProfile, site=hospital_admin_site)
class DoctorConsultProfileAdmin(RoleModelAdmin):
    list_display = ("doctor", "department", "is_enabled", "fee_fen")
    list_select_related = ("doctor__department",)
    list_filter = ("is_enabled", "doctor__department")

    @admin.display(description=_("department"))
    def department(self, obj):
        return obj.doctor.department


class ConsultationEventInline(ReadOnlyInline):
    model = ConsultationEvent
    fields = ("at", "action", "from_status", "to_status", "source", "actor", "detail")
    readonly_fields = fields
    verbose_name_plural = _("audit trail")


class MessageInline(ReadOnlyInline):
    model = Message
    fields = ("created_at", "sender", "body", "attachment_type", "attachment_size")
    readonly_fields = fields


@admin.register(Consultation, site=hospital_admin_site)
class ConsultationAdmin(ReadOnlyModelAdmin):
    list_display = ("pk", "created_at", "family_member", "department", "doctor", "status",
                    "deadline_at", "first_response_at", "rating")
    list_filter = ("status", "department", "doctor")
    list_select_related = ("family_member", "department", "doctor")
    readonly_fields = ("account", "family_member", "patient_card", "department", "doctor",
                       "triage", "question", "fee_fen", "status", "order", "created_at",
                       "paid_at", "deadline_at", "first_response_at", "closed_at",
                       "summary_record", "rating", "rating_comment", "rated_at")
    # The summary is a record: it is read on the record's page, through the logging gate.
    exclude = ("summary",)
    inlines = [ConsultationEventInline, MessageInline]

    @admin.display(description=_("summary"))
    def summary_record(self, obj):
        from django.urls import reverse
        from django.utils.html import format_html

        record_id = Record.objects.filter(consultation=obj).values_list("pk", flat=True).first()
        if record_id is None:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse(
            "hospital_admin:consult_record_change", args=[record_id]), _("Open the record"))

    QUALITY_PERIOD_LABELS = {"7": _("Last 7 days"), "30": _("Last 30 days"),
                             "90": _("Last 90 days"), "all": _("All time")}

    def changelist_view(self, request, extra_context=None):
        # Quality figures for the whole hospital over a period, above the list. The period is
        # not a filter of the list: take it out before the changelist reads the query string
        # (it would take it for a field lookup).
        period, since = selectors.quality_since(request.GET.get(QUALITY_PERIOD_PARAM))
        if QUALITY_PERIOD_PARAM in request.GET:
            request.GET = request.GET.copy()
            del request.GET[QUALITY_PERIOD_PARAM]
        links = []
        for code, label in self.QUALITY_PERIOD_LABELS.items():
            query = request.GET.copy()
            query[QUALITY_PERIOD_PARAM] = code
            links.append({"code": code, "label": label, "url": "?" + query.urlencode(),
                          "current": code == period})
        extra = {"quality_doctors": selectors.quality("doctor", since=since),
                 "quality_departments": selectors.quality("department", since=since),
                 "quality_period": period, "quality_since": since,
                 "quality_periods": links}
        return super().changelist_view(request, {**(extra_context or {}), **extra})
