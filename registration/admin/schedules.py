"""Schedules (a doctor's session on a day) and their slices; stop-clinic (停诊)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminTimeWidget
from django.db.models import Case, Count, F, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from payments.models import Refund
from portal.admin_sites import (
    ReadOnlyInline,
    YuanField,
    action_page,
    hospital_admin_site,
    yuan_column,
)
from portal.errors import DomainError
from portal.money import fen_to_yuan

from ..models import (
    Booking,
    Doctor,
    Schedule,
    TimeSlice,
)
from ..services import schedules as schedules_services
from .base import BOTH, DeskAdmin, hhmm, schedule_name


class TimeSliceInline(ReadOnlyInline):
    model = TimeSlice
    fields = ("time", "capacity", "booked", "remaining", "queue_numbers")
    readonly_fields = fields
    verbose_name_plural = _("time slices")

    @admin.display(description=_("time"))
    def time(self, obj):
        return hhmm(obj.start, obj.end)

    @admin.display(description=_("remaining"))
    def remaining(self, obj):
        return obj.remaining

    @admin.display(description=_("queue numbers"))
    def queue_numbers(self, obj):
        return f"{obj.queue_base}–{obj.queue_base + obj.capacity - 1}"


class ScheduleAddForm(forms.ModelForm):
    """A manual schedule: the session and how to cut it into slices."""

    start_time = forms.TimeField(label=_("From"), widget=AdminTimeWidget)
    end_time = forms.TimeField(label=_("Until"), widget=AdminTimeWidget)
    slice_minutes = forms.IntegerField(label=_("Slice length (minutes)"), min_value=5,
                                       max_value=480, initial=30)
    capacity = forms.IntegerField(label=_("Patients per slice"), min_value=1, max_value=999,
                                  initial=5)
    fee = YuanField(label=_("Fee (yuan)"), required=False,
                    help_text=_("In yuan. Leave empty for the doctor's current fee."))

    class Meta:
        model = Schedule
        fields = ("doctor", "date", "period")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["doctor"]
        field.queryset = Doctor.objects.filter(is_active=True).select_related("department")
        field.label_from_instance = lambda d: f"{d.name} · {d.department.name}"

    def clean_date(self):
        day = self.cleaned_data["date"]
        if day < timezone.localdate():
            raise forms.ValidationError(_("This day has passed."))
        return day

    def clean(self):
        data = super().clean()
        start, end, minutes = (data.get("start_time"), data.get("end_time"),
                               data.get("slice_minutes"))
        if start and end and minutes:
            length = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
            if length <= 0:
                self.add_error("end_time", _("The session must end after it starts."))
            elif length < minutes:
                self.add_error("slice_minutes",
                               _("Not even one slice fits between these times."))
        return data


def _stop_preview(s: Schedule) -> str:
    """A session on the stop-clinic page, with what stopping it will do: staff confirm the
    numbers before patients are told (the bookings stop-clinic cancels: held and confirmed)."""
    from payments.models import Order

    affected = Booking.objects.filter(schedule=s, status__in=(Booking.Status.HELD,
                                                              Booking.Status.CONFIRMED))
    figures = affected.aggregate(
        n=Coalesce(Sum(Value(1)), 0),
        paid=Coalesce(Sum(Case(When(order__status__in=(Order.Status.PAID,
                                                       Order.Status.PARTIALLY_REFUNDED),
                                    then=Value(1)), default=Value(0))), 0),
        refund=Coalesce(Sum(Case(When(order__status__in=(Order.Status.PAID,
                                                         Order.Status.PARTIALLY_REFUNDED),
                                      then=F("order__self_pay_fen") - F("order__refunded_fen")),
                                 default=Value(0))), 0))
    return ngettext(
        "%(s)s: %(n)d booking to cancel, %(paid)d of them paid, ¥%(amount)s to refund",
        "%(s)s: %(n)d bookings to cancel, %(paid)d of them paid, ¥%(amount)s to refund",
        figures["n"]) % {"s": schedule_name(s), "n": figures["n"], "paid": figures["paid"],
                         "amount": fen_to_yuan(figures["refund"])}


class StopForm(forms.Form):
    reason = forms.CharField(label=_("Reason (told to every patient)"), max_length=200,
                             widget=forms.Textarea({"rows": 3}))


@admin.register(Schedule, site=hospital_admin_site)
class ScheduleAdmin(DeskAdmin):
    list_display = ("doctor", "department", "date", "period", "status", "fee", "capacity",
                    "booked", "remaining")
    list_filter = ("date", "doctor__department", "doctor", "status", "period")
    list_select_related = ("doctor__department",)
    search_fields = ("doctor__name",)
    date_hierarchy = "date"
    inlines = [TimeSliceInline]
    actions = ["stop_clinic"]
    fee = yuan_column("fee_fen", _("fee"))

    def get_queryset(self, request):
        # The list's figures in the list's own query (no query per row).
        return super().get_queryset(request).annotate(
            capacity_total=Coalesce(Sum("slices__capacity"), 0),
            booked_total=Coalesce(Sum("slices__booked"), 0),
        ).annotate(remaining_total=F("capacity_total") - F("booked_total"))

    @admin.display(description=_("department"), ordering="doctor__department")
    def department(self, obj):
        return obj.doctor.department

    @admin.display(description=_("capacity"), ordering="capacity_total")
    def capacity(self, obj):
        return obj.capacity_total

    @admin.display(description=_("booked"), ordering="booked_total")
    def booked(self, obj):
        return obj.booked_total

    @admin.display(description=_("remaining"), ordering="remaining_total")
    def remaining(self, obj):
        return obj.remaining_total

    # Schedules are created (here or from templates) and stopped; never edited or deleted,
    # since bookings hang on them.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("doctor", "date", "period", "start_time", "end_time", "slice_minutes",
                    "capacity", "fee")
        return ("doctor", "date", "period", "status", "stop_reason", "fee", "capacity",
                "booked", "remaining", "template", "created_at")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ScheduleAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_inlines(self, request, obj):
        return [] if obj is None else self.inlines

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        created = schedules_services.schedule_create(
            doctor=data["doctor"], day=data["date"], period=data["period"],
            start_time=data["start_time"], end_time=data["end_time"],
            slice_minutes=data["slice_minutes"], capacity=data["capacity"], fee_fen=data["fee"])
        obj.pk, obj.fee_fen, obj.created_at = created.pk, created.fee_fen, created.created_at
        obj._state.adding = False

    @admin.action(description=_("Stop clinic (停诊)…"), permissions=["operate"], location=BOTH)
    def stop_clinic(self, request, queryset):
        queryset = queryset.select_related("doctor")
        form = StopForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return action_page(
                self, request, queryset, form=form, title=_("Stop clinic (停诊)"),
                intro=_("Every booking of these sessions is cancelled, paid fees are refunded "
                        "and each patient is told the reason. This cannot be undone."),
                submit=_("Stop clinic"), describe=_stop_preview)
        reason = form.cleaned_data["reason"]
        since = timezone.now()
        stopped, cancelled = [], 0
        for schedule in queryset:
            if schedule.status == Schedule.Status.STOPPED:
                self.message_user(request, _("%(s)s was already stopped.") % {
                    "s": schedule_name(schedule)}, messages.WARNING)
                continue
            try:
                cancelled += schedules_services.schedule_stop(schedule=schedule, reason=reason,
                                                              actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"{schedule_name(schedule)}: {exc.message}",
                                  messages.ERROR)
                continue
            stopped.append(schedule.pk)
            self.log_change(request, schedule, _("Stopped clinic: %(reason)s") % {
                "reason": reason})
        # Bookings reach "stopped" only through stop-clinic, so these are this run's refunds.
        refunds = Refund.objects.filter(
            order__booking__schedule__in=stopped, order__booking__status=Booking.Status.STOPPED,
            created_at__gte=since).aggregate(n=Count("pk"), fen=Coalesce(Sum("amount_fen"), 0))
        if stopped:
            self.message_user(request, ngettext(
                "Stopped %(n)d clinic: %(b)d bookings cancelled, %(r)d refunded (¥%(amount)s).",
                "Stopped %(n)d clinics: %(b)d bookings cancelled, %(r)d refunded (¥%(amount)s).",
                len(stopped)) % {"n": len(stopped), "b": cancelled, "r": refunds["n"],
                                 "amount": fen_to_yuan(refunds["fen"])},
                messages.SUCCESS)
        return None
