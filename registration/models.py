"""The hospital's catalogue and patients, in the hospital's own schema."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from payments.models import FenField
from portal.bilingual import BilingualNameMixin


class Department(BilingualNameMixin, models.Model):
    """A clinical department; departments form a tree (内科 → 心内科)."""

    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="children", verbose_name=_("parent department"))
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=50)
    name_en = models.CharField(_("English name"), max_length=100, blank=True)
    intro = models.TextField(_("introduction"), blank=True)
    location = models.CharField(_("location"), max_length=100, blank=True,
                                help_text=_("Building, floor and room patients go to."))
    # A context: a bare "order" is a payment order (订单) in the catalogue.
    sort_order = models.PositiveSmallIntegerField(pgettext_lazy("position in a list", "order"),
                                                  default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["sort_order", "pk"]

    def __str__(self) -> str:
        return self.name


class PatientCard(models.Model):
    """This hospital's card for a platform family member (就诊卡), with its record number.

    Created the first time the member books here. It refers to the
    public `accounts.FamilyMember`; the public schema never refers back.
    """

    family_member = models.OneToOneField("accounts.FamilyMember", on_delete=models.PROTECT,
                                         related_name="+", verbose_name=_("family member"))
    medical_record_number = models.CharField(_("medical record number"), max_length=20,
                                             unique=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("patient card")
        verbose_name_plural = _("patient cards")

    def __str__(self) -> str:
        return self.medical_record_number


class Doctor(BilingualNameMixin, models.Model):
    class Title(models.TextChoices):
        CHIEF = "chief", _("Chief physician (主任医师)")
        ASSOCIATE = "associate", _("Associate chief physician (副主任医师)")
        ATTENDING = "attending", _("Attending physician (主治医师)")
        RESIDENT = "resident", _("Physician (医师)")

    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="doctors",
                                   verbose_name=_("department"))
    name = models.CharField(_("name"), max_length=50)
    name_en = models.CharField(_("English name"), max_length=100, blank=True)
    # A doctor's rank (职称), not a heading (标题, what a bare "title" means in the catalogue).
    title = models.CharField(pgettext_lazy("doctor's rank", "title"), max_length=20,
                             choices=Title.choices)
    specialties = models.CharField(_("specialties"), max_length=200, blank=True)
    intro = models.TextField(_("introduction"), blank=True)
    photo_url = models.URLField(_("photo URL"), blank=True)
    fee_override_fen = models.PositiveIntegerField(
        _("registration fee override (fen)"), null=True, blank=True,
        help_text=_("Leave empty to use the fee of the doctor's title."))
    is_active = models.BooleanField(_("active"), default=True)
    sort_order = models.PositiveSmallIntegerField(pgettext_lazy("position in a list", "order"),
                                                  default=0)
    # The doctor's own login, for the workbench (a platform account with the doctor role).
    account = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="+", verbose_name=_("account"))

    class Meta:
        verbose_name = _("doctor")
        verbose_name_plural = _("doctors")
        ordering = ["sort_order", "pk"]

    def __str__(self) -> str:
        return self.name


class TitleFee(models.Model):
    """The registration fee of each doctor title at this hospital."""

    title = models.CharField(pgettext_lazy("doctor's rank", "title"), max_length=20,
                             choices=Doctor.Title.choices, unique=True)
    fee_fen = models.PositiveIntegerField(_("fee (fen)"))

    class Meta:
        verbose_name = _("registration fee by title")
        verbose_name_plural = _("registration fees by title")

    def __str__(self) -> str:
        return self.get_title_display()


class Period(models.TextChoices):
    MORNING = "am", _("Morning")
    AFTERNOON = "pm", _("Afternoon")
    EVENING = "evening", _("Evening")


class ScheduleTemplate(models.Model):
    """Every week on `weekday`, this doctor sees patients from start to end in slices."""

    doctor = models.ForeignKey(Doctor, on_delete=models.CASCADE, related_name="templates",
                               verbose_name=_("doctor"))
    weekday = models.PositiveSmallIntegerField(
        _("weekday"), choices=[(0, _("Monday")), (1, _("Tuesday")), (2, _("Wednesday")),
                               (3, _("Thursday")), (4, _("Friday")), (5, _("Saturday")),
                               (6, _("Sunday"))])
    period = models.CharField(_("period"), max_length=10, choices=Period.choices)
    start_time = models.TimeField(_("from"))
    end_time = models.TimeField(_("until"))
    slice_minutes = models.PositiveSmallIntegerField(_("slice length (minutes)"), default=30)
    capacity_per_slice = models.PositiveSmallIntegerField(_("patients per slice"), default=5)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("weekly schedule template")
        verbose_name_plural = _("weekly schedule templates")
        constraints = [
            models.UniqueConstraint(fields=["doctor", "weekday", "period"],
                                    name="template_one_per_doctor_weekday_period"),
            models.CheckConstraint(condition=Q(end_time__gt=F("start_time")),
                                   name="template_ends_after_start"),
            models.CheckConstraint(condition=Q(slice_minutes__gte=5) & Q(capacity_per_slice__gte=1),
                                   name="template_slices_sane"),
        ]

    def __str__(self) -> str:
        return f"{self.doctor} {self.get_weekday_display()} {self.get_period_display()}"


class Schedule(models.Model):
    """One doctor's clinic session on one day (出诊)."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        STOPPED = "stopped", _("Stopped (停诊)")

    doctor = models.ForeignKey(Doctor, on_delete=models.PROTECT, related_name="schedules",
                               verbose_name=_("doctor"))
    date = models.DateField(_("date"), db_index=True)
    period = models.CharField(_("period"), max_length=10, choices=Period.choices)
    fee_fen = models.PositiveIntegerField(_("fee (fen)"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices,
                              default=Status.OPEN)
    stop_reason = models.CharField(_("stop reason"), max_length=200, blank=True)
    template = models.ForeignKey(ScheduleTemplate, on_delete=models.SET_NULL, null=True,
                                 blank=True, related_name="+",
                                 verbose_name=_("schedule template"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("schedule")
        verbose_name_plural = _("schedules")
        ordering = ["date", "period"]
        constraints = [
            models.UniqueConstraint(fields=["doctor", "date", "period"],
                                    name="schedule_one_per_doctor_date_period"),
        ]
        indexes = [models.Index(fields=["date", "doctor"])]

    def __str__(self) -> str:
        return f"{self.doctor} {self.date} {self.get_period_display()}"


class TimeSlice(models.Model):
    """A bookable slice of a schedule (08:00–08:30) with its own capacity (号源)."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="slices")
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"))
    capacity = models.PositiveSmallIntegerField(_("capacity"))
    # Places taken by active bookings. Changed only by conditional UPDATEs in the services.
    booked = models.PositiveSmallIntegerField(_("booked"), default=0)
    # The first queue number (就诊序号) of this slice within its schedule.
    queue_base = models.PositiveSmallIntegerField(default=1)

    class Meta:
        verbose_name = _("time slice")
        verbose_name_plural = _("time slices")
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(condition=Q(booked__lte=F("capacity")),
                                   name="slice_never_overbooked"),
        ]

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    @property
    def remaining(self) -> int:
        return self.capacity - self.booked


class Booking(models.Model):
    class Status(models.TextChoices):
        HELD = "held", _("Awaiting payment")
        CONFIRMED = "confirmed", _("Confirmed")
        CHECKED_IN = "checked_in", _("Checked in")
        CANCELLED = "cancelled", _("Cancelled")
        EXPIRED = "expired", _("Expired (not paid in time)")
        NO_SHOW = "no_show", _("No-show")
        STOPPED = "stopped", _("Cancelled: clinic stopped")

    ACTIVE = (Status.HELD, Status.CONFIRMED, Status.CHECKED_IN)

    slice = models.ForeignKey(TimeSlice, on_delete=models.PROTECT, related_name="bookings",
                              verbose_name=_("time slice"))
    schedule = models.ForeignKey(Schedule, on_delete=models.PROTECT, related_name="bookings",
                                 verbose_name=_("schedule"))
    doctor = models.ForeignKey(Doctor, on_delete=models.PROTECT, related_name="bookings",
                               verbose_name=_("doctor"))
    date = models.DateField(_("date"), db_index=True)
    patient_card = models.ForeignKey(PatientCard, on_delete=models.PROTECT,
                                     related_name="bookings", verbose_name=_("patient card"))
    family_member = models.ForeignKey("accounts.FamilyMember", on_delete=models.PROTECT,
                                      related_name="+", verbose_name=_("patient"))
    account = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("booked by"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, db_index=True)
    queue_number = models.PositiveSmallIntegerField(_("queue number"))
    fee_fen = models.PositiveIntegerField(_("fee (fen)"))
    order = models.OneToOneField("payments.Order", on_delete=models.PROTECT, null=True,
                                 blank=True, related_name="booking", verbose_name=_("order"))
    hold_expires_at = models.DateTimeField(_("pay before"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=20, default="web")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancel_reason = models.CharField(_("cancel reason"), max_length=200, blank=True)
    checked_in_at = models.DateTimeField(_("checked in at"), null=True, blank=True)

    class Meta:
        verbose_name = _("booking")
        verbose_name_plural = _("bookings")
        ordering = ["-created_at"]
        constraints = [
            # The same queue number is never handed out twice within a slice's active bookings.
            models.UniqueConstraint(fields=["slice", "queue_number"],
                                    condition=Q(status__in=["held", "confirmed", "checked_in"]),
                                    name="booking_queue_number_unique_when_active"),
        ]
        indexes = [models.Index(fields=["family_member", "status"]),
                   models.Index(fields=["status", "hold_expires_at"])]

    def __str__(self) -> str:
        return f"{self.date} #{self.queue_number} {self.doctor}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class BookingEvent(models.Model):
    """Audit trail of bookings: who changed what, when."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(_("action"), max_length=30)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    actor = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="+", verbose_name=_("by"))
    source = models.CharField(_("source"), max_length=20)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("booking event")
        verbose_name_plural = _("booking events")
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.booking_id} {self.action}"


class WaitlistEntry(models.Model):
    """A patient waiting for a place on a full schedule (候补). First come, first served."""

    class Status(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        OFFERED = "offered", _("Offered a place")
        CANCELLED = "cancelled", _("Cancelled")
        EXPIRED = "expired", _("Ended")

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="waitlist",
                                 verbose_name=_("schedule"))
    family_member = models.ForeignKey("accounts.FamilyMember", on_delete=models.PROTECT,
                                      related_name="+", verbose_name=_("family member"))
    account = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("account"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices,
                              default=Status.WAITING, db_index=True)
    booking = models.OneToOneField(Booking, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="waitlist_entry", verbose_name=_("booking"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("waitlist entry")
        verbose_name_plural = _("waitlist")
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "family_member"],
                                    condition=Q(status="waiting"),
                                    name="waitlist_once_per_member_and_schedule"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule} waitlist #{self.pk}"


class BookingBan(models.Model):
    """No online booking for a patient at this hospital until `until` (too many no-shows)."""

    family_member = models.ForeignKey("accounts.FamilyMember", on_delete=models.PROTECT,
                                      related_name="+", verbose_name=_("family member"))
    until = models.DateField(_("banned until"))
    reason = models.CharField(_("reason"), max_length=200)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("booking ban")
        verbose_name_plural = _("booking bans")

    def __str__(self) -> str:
        return f"{self.family_member_id} until {self.until}"


class ClinicBill(models.Model):
    """A bill raised at the clinic (诊间): tests, drugs, treatment, paid on the phone.

    It belongs to a patient card and a department at a visit, and pays through a payments
    `Order` (kind clinic_bill); payments knows nothing of bills. The table keeps the name it
    had when bills lived in payments (`payments_clinicbill`), so moving the model moved no
    data (registration/migrations/0005_clinic_bills_from_payments.py)."""

    class Status(models.TextChoices):
        UNPAID = "unpaid", _("Unpaid")
        PAYING = "paying", _("Payment in progress")
        PAID = "paid", _("Paid")
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")

    bill_no = models.CharField(_("bill number"), max_length=32, unique=True)
    patient_card = models.ForeignKey(PatientCard, on_delete=models.PROTECT,
                                     related_name="clinic_bills", verbose_name=_("patient card"))
    department = models.ForeignKey(Department, on_delete=models.PROTECT,
                                   null=True, blank=True, related_name="+",
                                   verbose_name=_("department"))
    doctor_name = models.CharField(_("doctor"), max_length=50, blank=True)
    total_fen = FenField(_("total (fen)"), default=0)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices,
                              default=Status.UNPAID, db_index=True)
    insurance_type = models.CharField(_("insurance type"), max_length=20, blank=True)
    # The pre-settlement the patient agreed to pay (payments.insurance.settlement_to_dict).
    settlement = models.JSONField(_("settlement"), default=dict, blank=True)
    # With an insurer's settlement service: its settlement id and where it stands
    # (pending after pre-settlement, settled once paid, reversed if the payment never came).
    insurance_settlement_id = models.CharField(_("insurer settlement id"), max_length=64,
                                               blank=True, db_index=True)
    insurance_status = models.CharField(_("insurer settlement status"), max_length=10,
                                        blank=True)
    order = models.OneToOneField("payments.Order", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="clinic_bill", verbose_name=_("order"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   null=True, blank=True, related_name="+",
                                   verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)

    class Meta:
        db_table = "payments_clinicbill"
        verbose_name = _("clinic bill")
        verbose_name_plural = _("clinic bills")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.bill_no


class ClinicBillItem(models.Model):
    class ItemClass(models.TextChoices):
        A = "A", _("Class A (甲类, covered)")
        B = "B", _("Class B (乙类, partly covered)")
        C = "C", _("Class C (丙类, not covered)")

    bill = models.ForeignKey(ClinicBill, on_delete=models.CASCADE, related_name="items")
    name = models.CharField(_("item"), max_length=100)
    item_class = models.CharField(_("insurance class"), max_length=1, choices=ItemClass.choices,
                                  default=ItemClass.A)
    unit_price_fen = FenField(_("unit price (fen)"))
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    amount_fen = FenField(_("amount (fen)"), editable=False)

    class Meta:
        db_table = "payments_clinicbillitem"
        verbose_name = _("bill item")
        verbose_name_plural = _("bill items")
        constraints = [
            models.CheckConstraint(condition=Q(unit_price_fen__gte=0), name="bill_item_price_ok"),
            models.CheckConstraint(condition=Q(amount_fen=F("unit_price_fen") * F("quantity")),
                                   name="bill_item_amount_is_price_times_quantity"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def item_class_short(self) -> str:
        """The class as a patient's bill names it (甲类 / Class A), for a narrow column."""
        return str(_ITEM_CLASS_SHORT.get(self.item_class, self.item_class))


_ITEM_CLASS_SHORT = {"A": _("Class A"), "B": _("Class B"), "C": _("Class C")}
