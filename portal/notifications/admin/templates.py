"""A hospital's own wording of an event per language (hospital admins only, on the hospital's
admin). Placeholders are checked on save: only the names the event's built-in text uses."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from portal.admin_sites import RoleModelAdmin, hospital_admin_site

from ..messages import MESSAGES, placeholders
from ..models import NotificationTemplate


class HospitalNotificationTemplateAdmin(RoleModelAdmin):
    roles = {"admin"}
    list_display = ("kind", "language", "title", "updated_at")
    list_filter = ("kind", "language")
    fields = ("kind", "language", "title", "body")

    def get_queryset(self, request):
        tenant = getattr(request, "tenant", None)
        return super().get_queryset(request).filter(hospital_id=getattr(tenant, "pk", None))

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "kind":
            return forms.ChoiceField(
                label=db_field.verbose_name, choices=[(k, k) for k in MESSAGES],
                help_text=" · ".join(
                    f"{k}: " + ", ".join(f"%({n})s" for n in sorted(placeholders(k)))
                    for k in MESSAGES))
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
                if NotificationTemplate.objects.filter(
                        hospital_id=hospital_id, kind=data.get("kind"),
                        language=data.get("language")).exclude(pk=self.instance.pk).exists():
                    raise ValidationError(_(
                        "This hospital already has a template for this event and language."))
                return data

        return TemplateForm


hospital_admin_site.register(NotificationTemplate, HospitalNotificationTemplateAdmin)
