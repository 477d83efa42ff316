"""Consult and records in each hospital's admin: triage forms and rules (versioned), online
doctors, consultations with quality figures, records and reports with the access log.

Thin: every change calls `consult.services`; every opening of a record's page goes through
`services.record_access`, which logs it. Doctors (and hospital admins) work here.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import StaffMembership
from portal.admin_sites import ReadOnlyInline, ReadOnlyModelAdmin, RoleModelAdmin, hospital_admin_site
from registration.models import PatientCard

from . import selectors, services
from .models import (
    Consultation,
    ConsultationEvent,
    ConsultSettings,
    DoctorConsultProfile,
    LabItem,
    Message,
    Record,
    RecordAccess,
    TriageForm,
    TriageQuestion,
    TriageResult,
    TriageRule,
    TriageRuleVersion,
)

Role = StaffMembership.Role

QUALITY_PERIOD_PARAM = "quality_period"


class EditableInline:
    """Inlines follow their parent admin's role rules for every permission (Django would ask
    auth model permissions, which hospital staff do not have)."""

    def _parent(self):
        return self.admin_site.get_model_admin(self.parent_model)

    def has_view_permission(self, request, obj=None):
        return self._parent().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._parent().has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._parent().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._parent().has_change_permission(request, obj)


# --------------------------------------------------------------------------- settings


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


# --------------------------------------------------------------------------- triage


class TriageQuestionInline(EditableInline, admin.StackedInline):
    model = TriageQuestion
    extra = 0


# Triage forms and rules decide who is sent to the emergency department: a clinical safety
# rule set, changed by the hospital admin role only. Doctors read them (and their questions,
# through the inline, which follows its parent) and may not add, change or delete.
TRIAGE_EDITORS = {Role.HOSPITAL_ADMIN}
TRIAGE_READERS = {Role.DOCTOR}


@admin.register(TriageForm, site=hospital_admin_site)
class TriageFormAdmin(RoleModelAdmin):
    roles = TRIAGE_EDITORS
    read_only_roles = TRIAGE_READERS
    list_display = ("name", "code", "department", "is_active")
    inlines = [TriageQuestionInline]


class TriageRuleForm(forms.ModelForm):
    conditions = forms.JSONField(
        label=_("conditions"), widget=forms.Textarea(attrs={"rows": 8, "cols": 80}),
        help_text=_('e.g. {"all": [{"q": "symptoms", "op": "has", "value": "chest_pain"}, '
                    '{"q": "age_years", "op": "gte", "value": 40}]}. Operators: eq, ne, in, has, '
                    'has_any, gt, gte, lt, lte; also "any" and "not". Besides question codes: '
                    'age_years, age_days, sex (M/F).'))

    class Meta:
        model = TriageRule
        fields = ("code", "name", "name_en", "outcome", "conditions", "advice", "advice_en",
                  "suggest_department", "is_active")

    def clean(self):
        data = super().clean()
        if "conditions" in data:
            probe = TriageRule(conditions=data["conditions"])
            try:
                services.triage_rule_check(rule=probe)
            except services.InvalidRule as exc:
                raise ValidationError({"conditions": exc.message}) from None
        return data


@admin.register(TriageRule, site=hospital_admin_site)
class TriageRuleAdmin(RoleModelAdmin):
    roles = TRIAGE_EDITORS
    read_only_roles = TRIAGE_READERS
    form = TriageRuleForm
    list_display = ("name", "code", "outcome", "is_active", "updated_at")
    list_filter = ("outcome", "is_active")
    search_fields = ("name", "code")

    def save_model(self, request, obj, form, change):
        version = services.triage_rule_save(rule=obj, by=request.user)
        messages.info(request, _("Published triage rule version %(n)d.") % {"n": version.number})

    def delete_model(self, request, obj):
        services.triage_rule_delete(rule=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            services.triage_rule_delete(rule=rule, by=request.user)


@admin.register(TriageRuleVersion, site=hospital_admin_site)
class TriageRuleVersionAdmin(ReadOnlyModelAdmin):
    list_display = ("number", "created_at", "created_by", "note", "rule_count")
    readonly_fields = ("number", "created_at", "created_by", "note", "rules_pretty")
    exclude = ("rules",)

    @admin.display(description=_("rules"))
    def rule_count(self, obj):
        return len(obj.rules)

    @admin.display(description=_("rules"))
    def rules_pretty(self, obj):
        from django.utils.html import format_html

        return format_html("<pre>{}</pre>", json.dumps(obj.rules, ensure_ascii=False, indent=2))


@admin.register(TriageResult, site=hospital_admin_site)
class TriageResultAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "family_member", "outcome", "version", "department", "doctor")
    list_filter = ("outcome",)
    list_select_related = ("family_member", "version", "department", "doctor")


# --------------------------------------------------------------------------- consultations


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


# --------------------------------------------------------------------------- records


class LabItemInline(EditableInline, admin.TabularInline):
    model = LabItem
    extra = 3
    fields = ("name", "code", "value", "unit", "reference_range", "flag", "sort_order")


class RecordForm(forms.ModelForm):
    medical_record_number = forms.CharField(label=_("medical record number"), max_length=20)

    class Meta:
        model = Record
        fields = ("kind", "title", "department", "doctor_name", "issued_at", "body",
                  "conclusion")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["medical_record_number"].initial = \
                self.instance.patient_card.medical_record_number
            self.fields["medical_record_number"].disabled = True
        self.fields["issued_at"].required = False

    def clean_medical_record_number(self):
        value = self.cleaned_data["medical_record_number"].strip()
        card = PatientCard.objects.filter(medical_record_number=value).first()
        if card is None:
            raise ValidationError(_("No patient card has this number."))
        self.instance.patient_card = card
        return value


@admin.register(Record, site=hospital_admin_site)
class RecordAdmin(RoleModelAdmin):
    form = RecordForm
    list_display = ("title", "kind", "patient", "issued_at", "source", "created_by")
    list_filter = ("kind", "source")
    list_select_related = ("patient_card__family_member", "created_by")
    search_fields = ("title", "patient_card__medical_record_number")
    inlines = [LabItemInline]

    @admin.display(description=_("patient"))
    def patient(self, obj):
        return obj.patient_card.family_member  # its str is masked

    def get_object(self, request, object_id, from_field=None):
        # Every opening of a record in admin is a read: through the one gate that logs it.
        try:
            return services.record_access(record_id=object_id, user=request.user, via="admin")
        except services.RecordNotFound:
            return None

    def save_model(self, request, obj, form, change):
        services.record_save(record=obj, by=request.user)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.record_items_finish(record=form.instance, created=not change)


@admin.register(RecordAccess, site=hospital_admin_site)
class RecordAccessAdmin(ReadOnlyModelAdmin):
    roles = {Role.HOSPITAL_ADMIN}
    list_display = ("at", "record", "user", "via")
    list_filter = ("via",)
    list_select_related = ("record", "user")
    search_fields = ("record__title",)
    date_hierarchy = "at"
