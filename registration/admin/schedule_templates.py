"""Weekly schedule templates, and generating schedules from them."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from portal.admin_sites import (
    action_page,
    hospital_admin_site,
    names_at_most,
)

from ..models import (
    ScheduleTemplate,
)
from ..services import schedules as schedules_services
from .base import DeskAdmin, schedule_name


class GenerateForm(forms.Form):
    weeks = forms.IntegerField(label=_("Number of weeks"), min_value=1, max_value=12, initial=2,
                               help_text=_("From today; 1 to 12. Existing schedules are kept."))


@admin.register(ScheduleTemplate, site=hospital_admin_site)
class ScheduleTemplateAdmin(DeskAdmin):
    list_display = ("doctor", "department", "weekday", "period", "start_time", "end_time",
                    "slice_minutes", "capacity_per_slice", "is_active")
    list_filter = ("doctor__department", "weekday", "period", "is_active")
    list_select_related = ("doctor__department",)
    search_fields = ("doctor__name",)
    actions = ["generate_schedules"]

    @admin.display(description=_("department"), ordering="doctor__department")
    def department(self, obj):
        return obj.doctor.department

    @admin.action(description=_("Generate schedules for the next N weeks…"),
                  permissions=["operate"])
    def generate_schedules(self, request, queryset):
        form = GenerateForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return action_page(self, request, queryset.select_related("doctor"), form=form,
                                title=_("Generate schedules"),
                                intro=_("Create each day's schedule and time slices from these "
                                        "weekly templates. Days that already have a schedule "
                                        "are left alone."),
                                submit=_("Generate"))
        usable = queryset.filter(is_active=True, doctor__is_active=True)
        skipped = queryset.count() - usable.count()
        if skipped:
            self.message_user(request, ngettext(
                "%(n)d inactive template (or template of an inactive doctor) was skipped.",
                "%(n)d inactive templates (or templates of inactive doctors) were skipped.",
                skipped) % {"n": skipped}, messages.WARNING)
        created = schedules_services.schedules_generate(weeks=form.cleaned_data["weeks"],
                                                        templates=usable)
        for schedule in created:
            self.log_addition(request, schedule, [{"added": {}}])
        if created:
            self.message_user(request, ngettext(
                "Created %(n)d schedule: %(list)s", "Created %(n)d schedules: %(list)s",
                len(created)) % {"n": len(created), "list": names_at_most(created, schedule_name)},
                messages.SUCCESS)
        else:
            self.message_user(request, _("Nothing to create: all exist."), messages.INFO)
        return None
