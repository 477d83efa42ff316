"""The registration desk in each hospital's admin: catalogue, schedules, bookings.

Thin by design: every state change (generate, stop-clinic, check-in, cancel) is one call to a
service in `registration.booking`, which keeps the invariants and writes the audit trail; this
module parses forms, calls the service and reports. Lists that grow with data annotate their
figures in the queryset, so a page costs the same number of queries for 3 rows or 300.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import ActionLocation, helpers
from django.contrib.admin.widgets import AdminTimeWidget
from django.db.models import Case, Count, F, IntegerField, OuterRef, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from payments.models import Refund
from payments.money import fen_to_yuan, yuan_to_fen
from portal.accounts.models import StaffMembership, User
from portal.accounts.selectors import staff_role
from portal.admin_sites import (
    AUDIT_SOURCES,
    AuditTrailInline,
    ReadOnlyInline,
    RoleInline,
    RoleModelAdmin,
    hospital_admin_site,
)
from portal.errors import DomainError

from . import booking as services
from .models import (
    Booking,
    BookingBan,
    BookingEvent,
    Department,
    Doctor,
    PatientCard,
    Schedule,
    ScheduleTemplate,
    TimeSlice,
    TitleFee,
    WaitlistEntry,
)

Role = StaffMembership.Role

# Actions offered both in the list and on the object's own page.
_BOTH = [ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM]
# How many objects an action's intermediate page and its report name before "…".
_NAME_AT_MOST = 20


def _yuan(field: str, label, ordering: str | None = None):
    """A list column showing an integer-fen attribute as ¥12.50 (empty stays empty)."""

    @admin.display(description=label, ordering=ordering or field)
    def show(self, obj):
        fen = getattr(obj, field)
        return "—" if fen is None else f"¥{fen_to_yuan(fen)}"

    return show


def _names(objects, describe=str) -> str:
    shown = [describe(o) for o in objects[:_NAME_AT_MOST]]
    more = len(objects) - len(shown)
    return "; ".join(shown) + (f"; … (+{more})" if more > 0 else "")


class YuanField(forms.Field):
    """Money typed in yuan ("12.50"), cleaned to integer fen; empty → None when optional."""

    widget = forms.TextInput(attrs={"inputmode": "decimal", "size": 10})

    def to_python(self, value):
        value = str(value).strip() if value is not None else ""
        return None if value in self.empty_values else yuan_to_fen(value)

    def prepare_value(self, value):
        return fen_to_yuan(value) if isinstance(value, int) else value


class DeskAdmin(RoleModelAdmin):
    """Registration admins: `operate` is the permission of the desk actions (generate, stop,
    check in, cancel), held by whoever may write here; read-only roles never get them."""

    def has_operate_permission(self, request) -> bool:
        return self._may_write(request)


def _action_page(modeladmin, request, queryset, *, form, title, intro, submit, describe=str):
    """The intermediate page of an action: what is selected, a form, and a button that posts
    the same action back (to the list or to the object's page, wherever it came from)."""
    field = ("CHANGE_FORM-action" if "CHANGE_FORM-action" in request.POST else "action")
    objects = list(queryset)
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.opts, "title": title, "intro": intro, "form": form,
        "objects": [describe(o) for o in objects[:_NAME_AT_MOST]],
        "more": max(0, len(objects) - _NAME_AT_MOST),
        "selected": [o.pk for o in objects], "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "action_field": field, "action": request.POST.get(field, ""), "submit": submit,
        "media": modeladmin.media + form.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/registration/action_form.html", context)


# --------------------------------------------------------------------------- catalogue


@admin.register(Department, site=hospital_admin_site)
class DepartmentAdmin(RoleModelAdmin):
    list_display = ("name", "name_en", "parent", "code", "sort_order", "is_active")
    list_filter = ("is_active", "parent")
    list_select_related = ("parent",)
    search_fields = ("name", "name_en", "code")
    list_editable = ("sort_order", "is_active")


@admin.register(PatientCard, site=hospital_admin_site)
class PatientCardAdmin(RoleModelAdmin):
    list_display = ("medical_record_number", "family_member", "created_at")
    list_select_related = ("family_member",)
    search_fields = ("medical_record_number", "family_member__name")
    readonly_fields = ("family_member", "medical_record_number", "created_at")

    def has_add_permission(self, request):
        return False  # cards are created on a patient's first booking


class TitleFeeForm(forms.ModelForm):
    fee = YuanField(label=_("Registration fee (yuan)"),
                    help_text=_("In yuan, e.g. 20 or 12.50. Applies to schedules created from "
                                "now on; existing schedules keep their fee."))

    class Meta:
        model = TitleFee
        fields = ("title",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["fee"] = self.instance.fee_fen

    def save(self, commit=True):
        self.instance.fee_fen = self.cleaned_data["fee"]
        return super().save(commit)


@admin.register(TitleFee, site=hospital_admin_site)
class TitleFeeAdmin(RoleModelAdmin):
    form = TitleFeeForm
    list_display = ("title", "fee")
    fee = _yuan("fee_fen", _("registration fee"))

    def has_delete_permission(self, request, obj=None):
        return False  # without a row the built-in default fee would apply, silently


class ScheduleTemplateInline(RoleInline, admin.TabularInline):
    model = ScheduleTemplate
    fields = ("weekday", "period", "start_time", "end_time", "slice_minutes",
              "capacity_per_slice", "is_active")
    extra = 0

    def has_add_permission(self, request, obj=None):
        return self._parent_admin().has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._parent_admin().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._parent_admin().has_change_permission(request, obj)


class DoctorForm(forms.ModelForm):
    fee_override = YuanField(
        label=_("Registration fee override (yuan)"), required=False,
        help_text=_("In yuan. Leave empty to use the fee of the doctor's title. Applies to "
                    "schedules created from now on."))

    class Meta:
        model = Doctor
        fields = ("department", "name", "name_en", "title", "specialties", "intro", "photo_url",
                  "is_active", "sort_order", "account")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["fee_override"] = self.instance.fee_override_fen

    def save(self, commit=True):
        self.instance.fee_override_fen = self.cleaned_data["fee_override"]
        return super().save(commit)


def _effective_fee_fen():
    """The fee a new schedule of the doctor gets, as SQL: `booking.doctor_fee_fen` for a whole
    list in one query (override, else the title's fee, else the built-in default)."""
    title_fee = TitleFee.objects.filter(title=OuterRef("title")).values("fee_fen")[:1]
    default = Case(*[When(title=t, then=Value(fee))
                     for t, fee in services.DEFAULT_TITLE_FEES.items()],
                   default=Value(0), output_field=IntegerField())
    return Coalesce(F("fee_override_fen"), Subquery(title_fee), default,
                    output_field=IntegerField())


@admin.register(Doctor, site=hospital_admin_site)
class DoctorAdmin(RoleModelAdmin):
    form = DoctorForm
    list_display = ("name", "department", "title", "fee_override", "effective_fee",
                    "specialties", "is_active", "sort_order")
    list_filter = ("department", "title", "is_active")
    list_select_related = ("department",)
    search_fields = ("name", "name_en", "specialties")
    fields = ("department", "name", "name_en", "title", "fee_override", "specialties", "intro",
              "photo_url", "account", "is_active", "sort_order")
    inlines = [ScheduleTemplateInline]
    fee_override = _yuan("fee_override_fen", _("fee override"))
    effective_fee = _yuan("effective_fee_fen", _("fee"))

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(effective_fee_fen=_effective_fee_fen())

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "account":
            # Only this hospital's doctor logins: never a list of every user of the platform.
            kwargs["queryset"] = User.objects.filter(
                memberships__hospital_id=request.tenant.pk, memberships__is_active=True,
                memberships__role=Role.DOCTOR).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


# --------------------------------------------------------------------------- templates


class GenerateForm(forms.Form):
    weeks = forms.IntegerField(label=_("Number of weeks"), min_value=1, max_value=12, initial=2,
                               help_text=_("From today; 1 to 12. Existing schedules are kept."))


def _schedule_name(s: Schedule) -> str:
    return f"{s.doctor.name} {s.date.isoformat()} {s.get_period_display()}"


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
            return _action_page(self, request, queryset.select_related("doctor"), form=form,
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
        created = services.schedules_generate(weeks=form.cleaned_data["weeks"], templates=usable)
        for schedule in created:
            self.log_addition(request, schedule, [{"added": {}}])
        if created:
            self.message_user(request, ngettext(
                "Created %(n)d schedule: %(list)s", "Created %(n)d schedules: %(list)s",
                len(created)) % {"n": len(created), "list": _names(created, _schedule_name)},
                messages.SUCCESS)
        else:
            self.message_user(request, _("Nothing to create: all exist."), messages.INFO)
        return None


# --------------------------------------------------------------------------- schedules


def _hhmm(start, end) -> str:
    return f"{timezone.localtime(start):%H:%M}–{timezone.localtime(end):%H:%M}"


class TimeSliceInline(ReadOnlyInline):
    model = TimeSlice
    fields = ("time", "capacity", "booked", "remaining", "queue_numbers")
    readonly_fields = fields
    verbose_name_plural = _("time slices")

    @admin.display(description=_("time"))
    def time(self, obj):
        return _hhmm(obj.start, obj.end)

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
        figures["n"]) % {"s": _schedule_name(s), "n": figures["n"], "paid": figures["paid"],
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
    fee = _yuan("fee_fen", _("fee"))

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
        created = services.schedule_create(
            doctor=data["doctor"], day=data["date"], period=data["period"],
            start_time=data["start_time"], end_time=data["end_time"],
            slice_minutes=data["slice_minutes"], capacity=data["capacity"], fee_fen=data["fee"])
        obj.pk, obj.fee_fen, obj.created_at = created.pk, created.fee_fen, created.created_at
        obj._state.adding = False

    @admin.action(description=_("Stop clinic (停诊)…"), permissions=["operate"], location=_BOTH)
    def stop_clinic(self, request, queryset):
        queryset = queryset.select_related("doctor")
        form = StopForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return _action_page(
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
                    "s": _schedule_name(schedule)}, messages.WARNING)
                continue
            try:
                cancelled += services.schedule_stop(schedule=schedule, reason=reason,
                                                    actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"{_schedule_name(schedule)}: {exc.message}",
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


# --------------------------------------------------------------------------- bookings


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
    fee = _yuan("fee_fen", _("fee"))

    @admin.display(description=_("time"), ordering="slice__start")
    def time(self, obj):
        return _hhmm(obj.slice.start, obj.slice.end)

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

    @admin.action(description=_("Check in"), permissions=["operate"], location=_BOTH)
    def check_in(self, request, queryset):
        done = 0
        for b in queryset.select_related("doctor", "family_member"):
            try:
                services.booking_check_in(booking=b, actor=request.user)
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
                  location=_BOTH)
    def cancel_with_refund(self, request, queryset):
        queryset = queryset.select_related("doctor", "family_member")
        form = CancelForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return _action_page(
                self, request, queryset, form=form, title=_("Cancel bookings"),
                intro=_("Each booking is cancelled and its place returned to the pool; a paid "
                        "fee is refunded in full, an unpaid order is closed."),
                submit=_("Cancel and refund"), describe=_booking_name)
        since, done = timezone.now(), []
        for b in queryset:
            try:
                services.booking_cancel(booking=b, actor=request.user, source="staff",
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


# --------------------------------------------------------------------------- waitlist, bans


class WaitlistStatusFilter(admin.ChoicesFieldListFilter):
    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = _("status")


@admin.register(WaitlistEntry, site=hospital_admin_site)
class WaitlistEntryAdmin(RoleModelAdmin):
    # WaitlistEntry's fields have no verbose names (naming them would be a migration): the
    # columns, filter and fields are named here, in the staff's language.
    list_display = ("entry_schedule", "entry_patient", "entry_status", "entry_booking",
                    "entry_created_at")
    list_filter = (("status", WaitlistStatusFilter), "schedule__date",
                   "schedule__doctor__department")
    list_select_related = ("schedule__doctor", "family_member", "booking__doctor")
    search_fields = ("family_member__name", "schedule__doctor__name")
    fields = list_display
    readonly_fields = fields

    @admin.display(description=_("schedule"), ordering="schedule__date")
    def entry_schedule(self, obj):
        return obj.schedule

    @admin.display(description=_("patient"), ordering="family_member__name")
    def entry_patient(self, obj):
        return obj.family_member

    @admin.display(description=_("status"), ordering="status")
    def entry_status(self, obj):
        return obj.get_status_display()

    @admin.display(description=_("booking"))
    def entry_booking(self, obj):
        return obj.booking or "-"

    @admin.display(description=_("created at"), ordering="created_at")
    def entry_created_at(self, obj):
        return obj.created_at

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BookingBan, site=hospital_admin_site)
class BookingBanAdmin(RoleModelAdmin):
    """Bans come from the no-show job; a hospital admin lifts one by deleting it (logged in
    the admin history)."""

    list_display = ("family_member", "until", "in_force", "reason", "created_at")
    list_filter = ("until",)
    list_select_related = ("family_member",)
    search_fields = ("family_member__name",)
    fields = ("family_member", "until", "reason", "created_at")
    readonly_fields = fields

    @admin.display(description=_("in force"), boolean=True)
    def in_force(self, obj):
        return obj.until >= timezone.localdate()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return staff_role(request) == Role.HOSPITAL_ADMIN


from registration import bill_admin  # noqa: E402, F401  (clinic bills: registration/bill_admin.py)
