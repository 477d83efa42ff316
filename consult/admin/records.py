"""Records and reports (every opening goes through the logging gate) and the access log."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import StaffMembership
from portal.admin_sites import EditableInline, ReadOnlyModelAdmin, RoleModelAdmin, hospital_admin_site
from registration.models import PatientCard

from ..errors import RecordNotFound
from ..models import LabItem, Record, RecordAccess
from ..services import records

Role = StaffMembership.Role


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
            return records.record_access(record_id=object_id, user=request.user, via="admin")
        except RecordNotFound:
            return None

    def save_model(self, request, obj, form, change):
        records.record_save(record=obj, by=request.user)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        records.record_items_finish(record=form.instance, created=not change)


@admin.register(RecordAccess, site=hospital_admin_site)
class RecordAccessAdmin(ReadOnlyModelAdmin):
    roles = {Role.HOSPITAL_ADMIN}
    list_display = ("at", "record", "user", "via")
    list_filter = ("via",)
    list_select_related = ("record", "user")
    search_fields = ("record__title",)
    date_hierarchy = "at"
