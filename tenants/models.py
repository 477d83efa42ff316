"""Hospitals (tenants) and their host names. Both live in the public schema."""

from __future__ import annotations

import zoneinfo
from datetime import time

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_tenants.models import DomainMixin, TenantMixin

from portal.bilingual import BilingualNameMixin, english_active

HOSPITAL_CODE_RE = r"^[a-z][a-z0-9]{1,29}$"
validate_hospital_code = RegexValidator(
    HOSPITAL_CODE_RE,
    _("Use 2–30 lowercase letters and digits, starting with a letter."),
    code="invalid_code",
)


DEFAULT_TIME_ZONE = "Asia/Shanghai"


def hospital_tz(hospital=None) -> zoneinfo.ZoneInfo:
    """The one home of "which time zone": the given hospital's, else the hospital whose schema
    is active on the connection, else the platform's default (the public schema has no hospital
    of its own). Cached per name by zoneinfo."""
    if hospital is None:
        from django.db import connection

        hospital = getattr(connection, "tenant", None)
    return zoneinfo.ZoneInfo(getattr(hospital, "time_zone", None) or DEFAULT_TIME_ZONE)


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("Unknown time zone: %(tz)s"), params={"tz": value},
                              code="invalid_time_zone")


class Hospital(BilingualNameMixin, TenantMixin):
    """A hospital on the platform. Its schema holds everything clinical and financial."""

    class Level(models.TextChoices):
        GRADE_3A = "3A", _("Grade III, Class A (三级甲等)")
        GRADE_3B = "3B", _("Grade III, Class B (三级乙等)")
        GRADE_2A = "2A", _("Grade II, Class A (二级甲等)")
        GRADE_2B = "2B", _("Grade II, Class B (二级乙等)")
        GRADE_1 = "1", _("Grade I (一级)")
        UNRATED = "", _("Not rated")

    code = models.CharField(_("code"), max_length=30, unique=True,
                            validators=[validate_hospital_code],
                            help_text=_("Short identifier used in URLs and the API, e.g. binjiang."))
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=150, blank=True)
    city = models.CharField(_("city"), max_length=50, blank=True, db_index=True)
    level = models.CharField(_("level"), max_length=2, choices=Level.choices, blank=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    phone = models.CharField(_("enquiry phone"), max_length=30, blank=True)
    intro = models.TextField(_("introduction"), blank=True)
    intro_en = models.TextField(_("English introduction"), blank=True)
    time_zone = models.CharField(_("time zone"), max_length=50, default="Asia/Shanghai",
                                 validators=[validate_time_zone])
    is_active = models.BooleanField(
        _("active"), default=True,
        help_text=_("Inactive hospitals are hidden, their sites answer 404 and jobs skip them."))
    # Set once the schema is migrated and seeded; periodic jobs skip hospitals being built.
    is_ready = models.BooleanField(_("ready"), default=False, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    # ---- booking rules (hospital staff change them in admin) ----
    hold_minutes = models.PositiveSmallIntegerField(
        _("unpaid hold (minutes)"), default=15,
        validators=[MinValueValidator(1), MaxValueValidator(240)],
        help_text=_("How long an unpaid booking keeps its slot."))
    booking_window_days = models.PositiveSmallIntegerField(
        _("booking window (days)"), default=7,
        validators=[MinValueValidator(1), MaxValueValidator(90)],
        help_text=_("How many days ahead slots can be booked."))
    release_time = models.TimeField(
        _("daily release time"), default=time(8, 0),
        help_text=_("Slots of the last day of the window open at this local time."))
    max_active_bookings = models.PositiveSmallIntegerField(
        _("max active bookings per patient"), default=3,
        validators=[MinValueValidator(1), MaxValueValidator(50)])
    one_booking_per_doctor_per_day = models.BooleanField(
        _("one booking per patient per doctor per day"), default=True)
    identity_required = models.BooleanField(
        _("resident ID required to book"), default=True)
    cancel_cutoff_hour = models.PositiveSmallIntegerField(
        _("cancellation cut-off hour (day before)"), default=18,
        validators=[MaxValueValidator(23)],
        help_text=_("Patients can cancel online until this local hour on the day before."))
    no_show_limit = models.PositiveSmallIntegerField(
        _("no-shows before a ban"), default=3, validators=[MinValueValidator(1)])
    no_show_window_days = models.PositiveSmallIntegerField(
        _("no-show counting window (days)"), default=90, validators=[MinValueValidator(1)])
    no_show_ban_days = models.PositiveSmallIntegerField(
        _("online booking ban (days)"), default=90, validators=[MinValueValidator(1)])

    auto_create_schema = True
    auto_drop_schema = True

    class Meta:
        verbose_name = _("hospital")
        verbose_name_plural = _("hospitals")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def create_schema(self, check_if_exists=False, sync_schema=True, verbosity=1):
        """django-tenants' create_schema, except that a new schema first records the migrations
        of the shared apps, which do nothing in a hospital schema, so that migrate applies only
        the hospital apps' ones (tenants/schema_migrations.py; a 3x faster provisioning)."""
        from django.core.management import call_command
        from django.db import connections
        from django_tenants.postgresql_backend.base import _check_schema_name
        from django_tenants.utils import (
            get_creation_fakes_migrations,
            get_tenant_database_alias,
            quote_schema_name,
            schema_exists,
        )

        from .schema_migrations import record_shared_migrations

        if not sync_schema or get_creation_fakes_migrations():
            return super().create_schema(check_if_exists, sync_schema, verbosity)
        connection = connections[get_tenant_database_alias()]
        _check_schema_name(self.schema_name)
        if check_if_exists and schema_exists(self.schema_name):
            return False
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {quote_schema_name(self.schema_name)}")
        record_shared_migrations(self.schema_name)
        call_command("migrate_schemas", tenant=True, schema_name=self.schema_name,
                     interactive=False, verbosity=verbosity)
        connection.set_schema_to_public()
        return True

    @property
    def display_intro(self) -> str:
        return self.intro_en if english_active() and self.intro_en else self.intro

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        """The hospital's time zone: times are stored in UTC and shown and reasoned in this."""
        return hospital_tz(self)

    @property
    def is_public(self) -> bool:
        from django_tenants.utils import get_public_schema_name

        return self.schema_name == get_public_schema_name()


class Domain(DomainMixin):
    """A host name that serves a hospital (or, for the public tenant, the platform)."""

    class Meta:
        verbose_name = _("domain")
        verbose_name_plural = _("domains")

    def __str__(self) -> str:
        return self.domain
