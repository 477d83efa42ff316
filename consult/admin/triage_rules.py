"""Triage forms and rules (every change publishes a new rule version) and triage results."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import StaffMembership
from portal.admin_sites import EditableInline, ReadOnlyModelAdmin, RoleModelAdmin, hospital_admin_site

from ..errors import InvalidRule
from ..models import TriageForm, TriageQuestion, TriageResult, TriageRule, TriageRuleVersion
from ..services import triage_rules

Role = StaffMembership.Role


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
                triage_rules.triage_rule_check(rule=probe)
            except InvalidRule as exc:
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
        version = triage_rules.triage_rule_save(rule=obj, by=request.user)
        messages.info(request, _("Published triage rule version %(n)d.") % {"n": version.number})

    def delete_model(self, request, obj):
        triage_rules.triage_rule_delete(rule=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            triage_rules.triage_rule_delete(rule=rule, by=request.user)


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
