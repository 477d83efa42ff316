"""Triage, online consultations, records and reports, in each hospital's own schema.

Rows hold data and their invariants; every change goes through `consult.services`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from portal.bilingual import english_active


class Outcome(models.TextChoices):
    """What triage decides. Ordered from most to least urgent (see `OUTCOME_RANK`)."""

    EMERGENCY_NOW = "emergency_now", _("Go to the emergency department now")
    VISIT_IN_PERSON = "visit_in_person", _("See a doctor in person")
    ONLINE_OK = "online_ok", _("Online consultation is suitable")


OUTCOME_RANK = {Outcome.EMERGENCY_NOW: 0, Outcome.VISIT_IN_PERSON: 1, Outcome.ONLINE_OK: 2}


class ConsultSettings(models.Model):
    """This hospital's consultation rules (one row, pk 1; staff change it in admin)."""

    response_hours = models.PositiveSmallIntegerField(
        _("first response within (hours)"), default=12,
        help_text=_("A consultation a doctor has not answered by then is closed and refunded."))
    department_fee_fen = models.PositiveIntegerField(
        _("fee of a department consultation (fen)"), default=2000)
    emergency_phone = models.CharField(_("emergency number"), max_length=20, default="120")
    emergency_advice = models.CharField(
        _("where the nearest emergency department is"), max_length=200, blank=True,
        help_text=_("Shown to patients whom triage sends to the emergency department."))

    class Meta:
        verbose_name = _("consultation settings")
        verbose_name_plural = _("consultation settings")

    def __str__(self) -> str:
        return str(_("Consultation settings"))


class TriageForm(models.Model):
    """The questions a patient answers before an online consultation. A department may have
    its own form; departments without one use the general form (department empty)."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=150, blank=True)
    department = models.OneToOneField("registration.Department", on_delete=models.CASCADE,
                                      null=True, blank=True, related_name="triage_form",
                                      verbose_name=_("department"),
                                      help_text=_("Empty: the general form."))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("triage form")
        verbose_name_plural = _("triage forms")

    def __str__(self) -> str:
        return self.name


class TriageQuestion(models.Model):
    class Kind(models.TextChoices):
        CHOICE = "choice", _("One choice")
        MULTI = "multi", _("Several choices")
        NUMBER = "number", _("Number")
        DURATION = "duration", _("Duration (hours)")

    form = models.ForeignKey(TriageForm, on_delete=models.CASCADE, related_name="questions",
                             verbose_name=_("form"))
    code = models.SlugField(_("code"), max_length=40,
                            help_text=_("Rules refer to the answer by this code."))
    text = models.CharField(_("question"), max_length=200)
    text_en = models.CharField(_("English question"), max_length=300, blank=True)
    kind = models.CharField(_("answer type"), max_length=10, choices=Kind.choices)
    # [[value, 中文, English], ...] for choice and multi questions.
    choices = models.JSONField(_("choices"), default=list, blank=True,
                               help_text=_('For choice questions: [["value", "中文", "English"], …]'))
    unit = models.CharField(_("unit"), max_length=20, blank=True)
    min_value = models.DecimalField(_("minimum"), max_digits=8, decimal_places=2, null=True,
                                    blank=True)
    max_value = models.DecimalField(_("maximum"), max_digits=8, decimal_places=2, null=True,
                                    blank=True)
    required = models.BooleanField(_("required"), default=True)
    sort_order = models.PositiveSmallIntegerField(pgettext_lazy("position in a list", "order"),
                                                  default=0)

    class Meta:
        verbose_name = _("triage question")
        verbose_name_plural = _("triage questions")
        ordering = ["sort_order", "pk"]
        constraints = [models.UniqueConstraint(fields=["form", "code"],
                                               name="triage_question_code_unique_per_form")]

    def __str__(self) -> str:
        return self.text

    @property
    def display_text(self) -> str:
        return self.text_en if english_active() and self.text_en else self.text

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.kind in (self.Kind.CHOICE, self.Kind.MULTI):
            ok = isinstance(self.choices, list) and bool(self.choices) and all(
                isinstance(c, list) and 2 <= len(c) <= 3 and all(isinstance(x, str) and x
                                                                 for x in c[:2])
                for c in self.choices)
            if not ok:
                raise ValidationError({"choices": _(
                    'Give the choices as [["value", "中文", "English"], …].')})
            values = [c[0] for c in self.choices]
            if len(values) != len(set(values)):
                raise ValidationError({"choices": _("Each choice needs its own value.")})

    def display_choices(self) -> list[tuple[str, str]]:
        en = english_active()
        return [(c[0], (c[2] if en and len(c) > 2 and c[2] else c[1])) for c in self.choices]


class TriageRule(models.Model):
    """Conditions over the answers and the patient's age and sex → an outcome.

    `conditions` is JSON: {"all": [...]} or {"any": [...]} of conditions, nested freely; a
    condition is {"q": CODE or "age_years" / "age_days" / "sex", "op": OP, "value": V} with OP
    one of eq, ne, in, has (a multi-choice answer includes V), has_any, gt, gte, lt, lte.
    Editing rules publishes a new `TriageRuleVersion`; consultations keep the one that decided.
    """

    code = models.SlugField(_("code"), max_length=60, unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=150, blank=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices)
    conditions = models.JSONField(_("conditions"))
    advice = models.CharField(_("advice to the patient"), max_length=300, blank=True)
    advice_en = models.CharField(_("English advice"), max_length=400, blank=True)
    suggest_department = models.ForeignKey(
        "registration.Department", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("suggested department"),
        help_text=_("For “see a doctor in person”: where to book."))
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("triage rule")
        verbose_name_plural = _("triage rules")
        ordering = ["outcome", "code"]

    def __str__(self) -> str:
        return self.name


class TriageRuleVersion(models.Model):
    """A frozen copy of every active rule, published whenever staff change the rules."""

    number = models.PositiveIntegerField(_("version"), unique=True)
    rules = models.JSONField(_("rules"))
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+", verbose_name=_("by"))
    created_at = models.DateTimeField(_("published at"), auto_now_add=True)

    class Meta:
        verbose_name = _("triage rule version")
        verbose_name_plural = _("triage rule versions")
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"v{self.number}"


class TriageResult(models.Model):
    """One answered triage form: the answers, the patient's age and sex at the time, the
    outcome and the rule version that decided it. Kept whatever the outcome."""

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                related_name="+", verbose_name=_("account"))
    family_member = models.ForeignKey("accounts.FamilyMember", on_delete=models.PROTECT,
                                      related_name="+", verbose_name=_("patient"))
    form = models.ForeignKey(TriageForm, on_delete=models.PROTECT, related_name="+",
                             verbose_name=_("form"))
    version = models.ForeignKey(TriageRuleVersion, on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("rule version"))
    answers = models.JSONField(_("answers"))
    age_days = models.PositiveIntegerField(_("age (days)"))
    sex = models.CharField(_("sex"), max_length=1)
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices)
    matched = models.JSONField(_("matched rules"), default=list)
    department = models.ForeignKey("registration.Department", on_delete=models.PROTECT,
                                   null=True, blank=True, related_name="+",
                                   verbose_name=_("department"))
    doctor = models.ForeignKey("registration.Doctor", on_delete=models.PROTECT, null=True,
                               blank=True, related_name="+", verbose_name=_("doctor"))
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("triage result")
        verbose_name_plural = _("triage results")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} #{self.pk}"


class DoctorConsultProfile(models.Model):
    """A doctor who answers online consultations, and their fee."""

    doctor = models.OneToOneField("registration.Doctor", on_delete=models.CASCADE,
                                  related_name="consult_profile", verbose_name=_("doctor"))
    is_enabled = models.BooleanField(_("offers online consultation"), default=True)
    fee_fen = models.PositiveIntegerField(_("consultation fee (fen)"))

    class Meta:
        verbose_name = _("online doctor")
        verbose_name_plural = _("online doctors")

    def __str__(self) -> str:
        return str(self.doctor)


class Consultation(models.Model):
    class Status(models.TextChoices):
        AWAITING_PAYMENT = "awaiting_payment", _("Awaiting payment")
        WAITING = "waiting", _("Waiting for the doctor")
        ACTIVE = "active", _("In progress")
        CLOSED = "closed", _("Closed")
        TIMED_OUT = "timed_out", _("Timed out (refund in progress)")
        REFUNDED = "refunded", _("Refunded")
        CANCELLED = "cancelled", _("Cancelled")

    OPEN = (Status.WAITING, Status.ACTIVE)

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                related_name="+", verbose_name=_("account"))
    family_member = models.ForeignKey("accounts.FamilyMember", on_delete=models.PROTECT,
                                      related_name="+", verbose_name=_("patient"))
    patient_card = models.ForeignKey("registration.PatientCard", on_delete=models.PROTECT,
                                     related_name="consultations", verbose_name=_("patient card"))
    department = models.ForeignKey("registration.Department", on_delete=models.PROTECT,
                                   related_name="consultations", verbose_name=_("department"))
    doctor = models.ForeignKey("registration.Doctor", on_delete=models.PROTECT, null=True,
                               blank=True, related_name="consultations", verbose_name=_("doctor"),
                               help_text=_("Empty for a department consultation until a "
                                           "doctor answers."))
    triage = models.OneToOneField(TriageResult, on_delete=models.PROTECT,
                                  related_name="consultation", verbose_name=_("triage"))
    question = models.TextField(_("question"))
    fee_fen = models.PositiveIntegerField(_("fee (fen)"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices,
                              default=Status.AWAITING_PAYMENT, db_index=True)
    order = models.OneToOneField("payments.Order", on_delete=models.PROTECT, null=True,
                                 blank=True, related_name="consultation", verbose_name=_("order"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    deadline_at = models.DateTimeField(_("answer before"), null=True, blank=True)
    first_response_at = models.DateTimeField(_("first answered at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    summary = models.TextField(_("summary"), blank=True)
    rating = models.PositiveSmallIntegerField(_("rating"), null=True, blank=True)
    rating_comment = models.CharField(_("rating comment"), max_length=500, blank=True)
    rated_at = models.DateTimeField(_("rated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("consultation")
        verbose_name_plural = _("consultations")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                                   name="consultation_rating_1_to_5"),
        ]
        indexes = [models.Index(fields=["status", "deadline_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.family_member.name}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN


class ConsultationEvent(models.Model):
    """Audit trail of a consultation: every status change, who or what caused it, when."""

    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE,
                                     related_name="events")
    action = models.CharField(_("action"), max_length=30)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                              blank=True, related_name="+", verbose_name=_("by"))
    source = models.CharField(_("source"), max_length=20)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("consultation event")
        verbose_name_plural = _("consultation events")
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.consultation_id} {self.action}"


def attachment_path(instance: Message, filename: str) -> str:
    # Tenant-prefixed, with a random name: never the patient's own file name.
    import uuid

    from django.db import connection

    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return (f"consult/{connection.schema_name}/{instance.consultation_id}/"
            f"{uuid.uuid4().hex}.{ext}")


class Message(models.Model):
    class Sender(models.TextChoices):
        PATIENT = "patient", _("Patient")
        DOCTOR = "doctor", _("Doctor")
        SYSTEM = "system", _("System")

    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE,
                                     related_name="messages")
    sender = models.CharField(_("from"), max_length=10, choices=Sender.choices)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                               blank=True, related_name="+")
    body = models.TextField(_("message"), blank=True)
    attachment = models.FileField(_("image"), upload_to=attachment_path, blank=True)
    attachment_type = models.CharField(max_length=30, blank=True)
    attachment_size = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(_("sent at"), auto_now_add=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.body[:40]


class Record(models.Model):
    """A medical record or report of a patient at this hospital. Read only through
    `services.records.record_access`, which logs every read."""

    class Kind(models.TextChoices):
        VISIT_SUMMARY = "visit_summary", _("Visit summary")
        CONSULTATION_SUMMARY = "consultation_summary", _("Online consultation summary")
        LAB_REPORT = "lab_report", _("Lab report")
        IMAGING_REPORT = "imaging_report", _("Imaging report")

    REPORT_KINDS = (Kind.LAB_REPORT, Kind.IMAGING_REPORT)

    patient_card = models.ForeignKey("registration.PatientCard", on_delete=models.PROTECT,
                                     related_name="records", verbose_name=_("patient card"))
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices, db_index=True)
    title = models.CharField(_("title"), max_length=200)
    department = models.ForeignKey("registration.Department", on_delete=models.PROTECT,
                                   null=True, blank=True, related_name="+",
                                   verbose_name=_("department"))
    doctor_name = models.CharField(_("doctor"), max_length=50, blank=True)
    body = models.TextField(_("content"), blank=True,
                            help_text=_("Summary, findings or description."))
    conclusion = models.TextField(_("conclusion / impression"), blank=True)
    consultation = models.OneToOneField(Consultation, on_delete=models.PROTECT, null=True,
                                        blank=True, related_name="record",
                                        verbose_name=_("consultation"))
    issued_at = models.DateTimeField(_("issued at"))
    source = models.CharField(_("source"), max_length=20, default="staff")
    # A partner's own id for the report: sending it twice creates it once.
    external_id = models.CharField(_("external id"), max_length=64, null=True, blank=True,
                                   unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+", verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("record or report")
        verbose_name_plural = _("records and reports")
        ordering = ["-issued_at", "-pk"]
        indexes = [models.Index(fields=["patient_card", "-issued_at"])]

    def __str__(self) -> str:
        return self.title


class LabItem(models.Model):
    """One result line of a lab report."""

    class Flag(models.TextChoices):
        NORMAL = "", _("Normal")
        HIGH = "H", _("High ↑")
        LOW = "L", _("Low ↓")
        ABNORMAL = "A", _("Abnormal")

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="items")
    name = models.CharField(_("item"), max_length=100)
    code = models.CharField(_("code"), max_length=30, blank=True)
    value = models.CharField(_("result"), max_length=50)
    unit = models.CharField(_("unit"), max_length=30, blank=True)
    reference_range = models.CharField(_("reference range"), max_length=50, blank=True,
                                       help_text=_("e.g. 3.5-5.5, <5.2, >1.0, or text"))
    flag = models.CharField(_("flag"), max_length=1, choices=Flag.choices, blank=True,
                            help_text=_("Left empty, it is worked out from a numeric range."))
    sort_order = models.PositiveSmallIntegerField(pgettext_lazy("position in a list", "order"),
                                                  default=0)

    class Meta:
        verbose_name = _("lab result")
        verbose_name_plural = _("lab results")
        ordering = ["sort_order", "pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_abnormal(self) -> bool:
        return bool(self.flag)


class RecordAccess(models.Model):
    """Who read which record, when, and through which door. Written by `record_access` only."""

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="accesses",
                               verbose_name=_("record"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                             blank=True, related_name="+", verbose_name=_("who"))
    via = models.CharField(_("through"), max_length=20)
    at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("record access")
        verbose_name_plural = _("record access log")
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.record_id} {self.via} {self.at:%Y-%m-%d %H:%M}"
