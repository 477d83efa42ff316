"""Bookings at the desk: check-in, cancel and refund."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from payments.models import Refund
from portal.admin_sites import (
    AUDIT_SOURCES,
    AuditTrailInline,
    action_page,
    hospital_admin_site,
    yuan_column,
)
from portal.errors import DomainError
from portal.money import fen_to_yuan

from ..models import (
    Booking,
    BookingEvent,
)
from ..services import booking as booking_services
from .base import BOTH, DeskAdmin, Role, hhmm


class BookingEventInline(AuditTrailInline):
    model = BookingEvent


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Reason (told to the patient)"), max_length=200,
                             widget=forms.Textarea({"rows": 3}))


def _booking_name(b: Booking) -> str:
    return f"{b.date.isoformat()} #{b.queue_number} {b.doctor.name} · {b.family_member}"


class DoctorFilter(admin.RelatedFieldListFilter):
    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        # Named here as well, whatever the field is called.
        self.title = _("doctor")


@admin.register(Booking, site=hospital_admin_site)
class BookingAdmin(DeskAdmin):
    """Registrars and hospital admins work the desk; finance looks (refund questions)."""

    read_only_roles = {Role.FINANCE}
    list_display = ("date", "time", "queue_number", "doctor_name", "department", "patient",
                    "masked_id", "medical_record_number", "fee", "status", "created_at")
    list_filter = ("date", "doctor__department", ("doctor", DoctorFilter), "status")
    list_select_related = ("doctor__department", "family_member", "patient_card", "slice")
    search_fields = ("queue_number__exact", "patient_card__medical_record_number",
                     "family_member__name")
    search_help_text = _("Queue number, medical record number or patient name.")
    date_hierarchy = "date"
    ordering = ("-date", "queue_number")
    inlines = [BookingEventInline]
    actions = ["check_in", "cancel_with_refund"]
    fields = ("date", "time", "queue_number", "doctor_name", "patient", "masked_id",
              "medical_record_number", "account", "fee", "status", "order", "source_label",
              "hold_expires_at", "created_at", "confirmed_at", "checked_in_at", "cancelled_at",
              "cancel_reason")
    readonly_fields = fields
    fee = yuan_column("fee_fen", _("fee"))

    @admin.display(description=_("time"), ordering="slice__start")
    def time(self, obj):
        return hhmm(obj.slice.start, obj.slice.end)

    @admin.display(description=_("doctor"), ordering="doctor__name")
    def doctor_name(self, obj):
        return obj.doctor

    @admin.display(description=_("department"), ordering="doctor__department")
    def department(self, obj):
        return obj.doctor.department

    @admin.display(description=_("source"))
    def source_label(self, obj):
        return AUDIT_SOURCES.get(obj.source, obj.source)

    @admin.display(description=_("patient"), ordering="family_member__name")
    def patient(self, obj):
        return obj.family_member.name

    @admin.display(description=_("resident ID number"))
    def masked_id(self, obj):
        return obj.family_member.masked_id_number  # never the full number

    @admin.display(description=_("medical record number"),
                   ordering="patient_card__medical_record_number")
    def medical_record_number(self, obj):
        return obj.patient_card.medical_record_number

    def has_add_permission(self, request):
        return False  # patients book on the site; staff act on bookings, never write them

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Check in"), permissions=["operate"], location=BOTH)
    def check_in(self, request, queryset):
        done = 0
        for b in queryset.select_related("doctor", "family_member"):
            try:
                booking_services.booking_check_in(booking=b, actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"{_booking_name(b)}: {exc.message}",
                                  messages.WARNING)
            else:
                done += 1
        if done:
            self.message_user(request, ngettext("Checked in %(n)d booking.",
                                                "Checked in %(n)d bookings.", done) % {"n": done},
                              messages.SUCCESS)

    @admin.action(description=_("Cancel with refund…"), permissions=["operate"],
                  location=BOTH)
    def cancel_with_refund(self, request, queryset):
        queryset = queryset.select_related("doctor", "family_member")
        form = CancelForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return action_page(
                self, request, queryset, form=form, title=_("Cancel bookings"),
                intro=_("Each booking is cancelled and its place returned to the pool; a paid "
                        "fee is refunded in full, an unpaid order is closed."),
                submit=_("Cancel and refund"), describe=_booking_name)
        since, done = timezone.now(), []
        for b in queryset:
            try:
                booking_services.booking_cancel(booking=b, actor=request.user, source="staff",
                                                reason=form.cleaned_data["reason"])
            except DomainError as exc:
                self.message_user(request, f"{_booking_name(b)}: {exc.message}",
                                  messages.WARNING)
            else:
                done.append(b.pk)
        if done:
            refunds = Refund.objects.filter(order__booking__pk__in=done, created_at__gte=since
                                            ).aggregate(n=Count("pk"),
                                                        fen=Coalesce(Sum("amount_fen"), 0))
            self.message_user(request, ngettext(
                "Cancelled %(n)d booking, %(r)d refunded (¥%(amount)s).",
                "Cancelled %(n)d bookings, %(r)d refunded (¥%(amount)s).", len(done)) % {
                "n": len(done), "r": refunds["n"], "amount": fen_to_yuan(refunds["fen"])},
                messages.SUCCESS)
        return None
