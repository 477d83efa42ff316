"""Platform-level people: accounts, the family members they book for, hospital staff roles.

All of these live in the public schema. A hospital keeps its own patient card for a family
member in its schema (`registration.PatientCard`), which points here; nothing here points into
a hospital's schema.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .validators import mask_id_number, mask_mobile, normalize_mobile, validate_mobile


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, phone: str, password: str | None = None, **extra) -> User:
        phone = normalize_mobile(phone)
        validate_mobile(phone)
        user = self.model(phone=phone, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, phone: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(phone, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """One account for the whole platform, identified by a mainland mobile number.

    `is_staff` means *platform operator* (admits the platform admin). Hospital staff are
    ordinary users with a `StaffMembership` for that hospital.
    """

    phone = models.CharField(_("mobile number"), max_length=11, unique=True,
                             validators=[validate_mobile])
    name = models.CharField(_("name"), max_length=50, blank=True)
    email = models.EmailField(_("email"), blank=True)
    language = models.CharField(_("language"), max_length=10, blank=True,
                                choices=settings.LANGUAGES)
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(
        _("platform operator"), default=False,
        help_text=_("Can sign in to the platform admin (hospitals, domains, accounts)."))
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "phone"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")

    def __str__(self) -> str:
        return self.name or self.masked_phone

    def get_short_name(self) -> str:
        """What the admin's "Welcome, ..." shows: the name, not the full mobile number."""
        return str(self)

    @property
    def masked_phone(self) -> str:
        return mask_mobile(self.phone)


class FamilyMember(models.Model):
    """A person an account books for (就诊人): the account holder, a child, a parent ..."""

    class Relation(models.TextChoices):
        SELF = "self", _("Self")
        CHILD = "child", _("Child")
        PARENT = "parent", _("Parent")
        SPOUSE = "spouse", _("Spouse")
        OTHER = "other", _("Other")

    class Sex(models.TextChoices):
        MALE = "M", _("Male")
        FEMALE = "F", _("Female")

    MAX_PER_ACCOUNT = 10

    account = models.ForeignKey(User, on_delete=models.CASCADE, related_name="family_members",
                                verbose_name=_("account"))
    name = models.CharField(_("name"), max_length=50)
    relation = models.CharField(_("relation"), max_length=10, choices=Relation.choices)
    id_number = models.CharField(_("resident ID number"), max_length=18)
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices, editable=False)
    birth_date = models.DateField(_("birth date"), editable=False)
    phone = models.CharField(_("mobile number"), max_length=11, blank=True,
                             validators=[validate_mobile])
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("family member")
        verbose_name_plural = _("family members")
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["account", "id_number"],
                                    name="family_member_unique_id_per_account"),
            models.UniqueConstraint(fields=["account"], condition=Q(relation="self"),
                                    name="family_member_one_self_per_account"),
        ]

    def __str__(self) -> str:
        # Never the full ID number: this string ends up in admin, logs and messages.
        return f"{self.name} ({self.masked_id_number})"

    @property
    def masked_id_number(self) -> str:
        return mask_id_number(self.id_number)

    @property
    def masked_phone(self) -> str:
        return mask_mobile(self.phone) if self.phone else ""

    @property
    def age(self) -> int:
        today = timezone.localdate()
        b = self.birth_date
        return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


class StaffMembership(models.Model):
    """A user working for one hospital with one role; it admits them to that hospital's admin."""

    class Role(models.TextChoices):
        HOSPITAL_ADMIN = "admin", _("Hospital admin")
        REGISTRAR = "registrar", _("Registrar")
        FINANCE = "finance", _("Finance")
        DOCTOR = "doctor", _("Doctor")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships",
                             verbose_name=_("user"))
    hospital = models.ForeignKey("tenants.Hospital", on_delete=models.CASCADE,
                                 related_name="staff", verbose_name=_("hospital"))
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("staff membership")
        verbose_name_plural = _("staff memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "hospital"],
                                    name="staff_one_role_per_hospital"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.hospital.code}: {self.get_role_display()}"


class SsoTicket(models.Model):
    """A one-time, short-lived ticket that carries a platform login to a hospital's host.

    Hospitals with their own domain share no cookie with the platform, so the platform hands
    the browser a ticket in a redirect and the hospital's host redeems it once.
    """

    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    host = models.CharField(max_length=253)
    # The platform session the ticket came from: logging out there ends the hospital session.
    parent_session_key = models.CharField(max_length=40)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"])]

    def __str__(self) -> str:
        return f"ticket for {self.host} (expires {self.expires_at:%Y-%m-%d %H:%M:%S})"


class MessagingAppBinding(models.Model):
    """An account bound to its user of a messaging app (e.g. a WeChat official account's
    openid), so notices can go out as the app's template messages.

    `app_id` is the app's appid: an openid only means something for the app that issued it,
    so one openid belongs to at most one account per app, and an account has at most one
    openid per app. Made and removed only through `services.messaging_app_bind/_unbind`."""

    user = models.ForeignKey(User, on_delete=models.CASCADE,
                             related_name="messaging_app_bindings", verbose_name=_("account"))
    app_id = models.CharField(_("app id"), max_length=64)
    openid = models.CharField(_("app user id"), max_length=128)
    created_at = models.DateTimeField(_("bound at"), auto_now_add=True)

    class Meta:
        verbose_name = _("messaging-app binding")
        verbose_name_plural = _("messaging-app bindings")
        constraints = [
            models.UniqueConstraint(fields=["app_id", "openid"],
                                    name="messaging_app_one_account_per_openid"),
            models.UniqueConstraint(fields=["user", "app_id"],
                                    name="messaging_app_one_openid_per_account"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} @ {self.app_id}: {self.masked_openid}"

    @property
    def masked_openid(self) -> str:
        """Enough to tell bindings apart in logs and pages, not the whole id."""
        return f"{self.openid[:4]}…{self.openid[-4:]}" if len(self.openid) > 10 else "…"
