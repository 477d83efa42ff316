"""Every change to accounts, family members and staff roles goes through here."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _

from portal.errors import DomainError

from .models import FamilyMember, MessagingAppBinding, StaffMembership, User
from .validators import normalize_mobile, parse_id_number, validate_mobile


class PhoneTaken(DomainError):
    code = "phone_taken"


class FamilyLimitReached(DomainError):
    code = "family_limit_reached"


@transaction.atomic
def account_register(*, phone: str, password: str, name: str = "") -> User:
    phone = normalize_mobile(phone)
    validate_mobile(phone)
    if User.objects.filter(phone=phone).exists():
        raise PhoneTaken(_("An account with this mobile number already exists. Please log in."))
    try:
        with transaction.atomic():
            return User.objects.create_user(phone=phone, password=password, name=name.strip())
    except IntegrityError:  # a concurrent sign-up with the same number won
        raise PhoneTaken(
            _("An account with this mobile number already exists. Please log in.")) from None


def account_set_language(*, user: User, language: str) -> None:
    if user.language != language:
        user.language = language
        user.save(update_fields=["language"])


def account_set_email(*, user: User, email: str) -> None:
    """The address email notices go to ("" for none). Raises ValidationError if malformed."""
    email = (email or "").strip()
    if email:
        validate_email(email)
        email = User.objects.normalize_email(email)
    if user.email != email:
        user.email = email
        user.save(update_fields=["email"])


def _clean_member(*, account: User, name: str, relation: str, id_number: str, phone: str,
                  instance: FamilyMember | None) -> dict:
    errors: dict[str, list] = {}
    data: dict = {"name": (name or "").strip(), "relation": relation}
    if not data["name"]:
        errors["name"] = [ValidationError(_("Enter the patient's name."), code="required")]
    if relation not in FamilyMember.Relation.values:
        errors["relation"] = [ValidationError(_("Choose a relation."), code="invalid_choice")]
    try:
        rid = parse_id_number(id_number)
        data.update(id_number=rid.number, sex=rid.sex, birth_date=rid.birth_date)
    except ValidationError as exc:
        errors["id_number"] = exc.error_list
    phone = normalize_mobile(phone) if phone else ""
    if phone:
        try:
            validate_mobile(phone)
        except ValidationError as exc:
            errors["phone"] = exc.error_list
    data["phone"] = phone
    others = account.family_members.exclude(pk=instance.pk if instance else None)
    if "id_number" in data and others.filter(id_number=data["id_number"]).exists():
        errors.setdefault("id_number", []).append(ValidationError(
            _("This person is already one of your family members."), code="duplicate"))
    if relation == FamilyMember.Relation.SELF and others.filter(relation="self").exists():
        errors.setdefault("relation", []).append(ValidationError(
            _("You have already added yourself. Choose another relation."), code="duplicate"))
    if errors:
        raise ValidationError(errors)
    return data


@transaction.atomic
def family_member_add(*, account: User, name: str, relation: str, id_number: str,
                      phone: str = "") -> FamilyMember:
    # Lock the account row so two concurrent adds cannot both pass the limit check.
    User.objects.select_for_update().filter(pk=account.pk).first()
    if account.family_members.count() >= FamilyMember.MAX_PER_ACCOUNT:
        raise FamilyLimitReached(
            _("You can keep at most %(n)d family members.") % {"n": FamilyMember.MAX_PER_ACCOUNT})
    data = _clean_member(account=account, name=name, relation=relation, id_number=id_number,
                         phone=phone, instance=None)
    return FamilyMember.objects.create(account=account, **data)


# What a hospital files its records under: the person's name and resident ID number (sex and
# birth date are read from the number). Fixed once any hospital holds records of the member.
IDENTITY_FIELDS = ("name", "id_number")


@transaction.atomic
def family_member_update(*, member: FamilyMember, name: str, relation: str, id_number: str,
                         phone: str = "") -> FamilyMember:
    """Change a member's details. Name and ID number stay as they are once a hospital holds
    records of the member (a ValidationError on those fields; the hospital corrects them)."""
    # Lock the row (FOR UPDATE): a first booking creating a patient card meanwhile locks it
    # FOR KEY SHARE, so it either waits for this change or is seen by the check below.
    current = FamilyMember.objects.select_for_update().get(pk=member.pk)
    data = _clean_member(account=member.account, name=name, relation=relation,
                         id_number=id_number, phone=phone, instance=member)
    changed = [f for f in IDENTITY_FIELDS if f in data and data[f] != getattr(current, f)]
    if changed and family_member_has_records(member=member):
        raise ValidationError({f: ValidationError(identity_locked_message(), code="identity_locked")
                               for f in changed})
    for field, value in data.items():
        setattr(member, field, value)
    member.save()
    return member


def identity_locked_message() -> str:
    return _("A hospital already keeps records under this name and ID number, so they cannot "
             "be changed here. If they are wrong, please contact the hospital.")


class FamilyMemberHasRecords(DomainError):
    code = "family_member_has_records"


def _member_row_delete(member: FamilyMember) -> bool:
    """DELETE the member's row, every foreign key checked at once; False (row kept) when any
    hospital's patient card, booking, waitlist entry or consultation refers to it.

    Those rows live in each hospital's schema and keep their member (PROTECT). Django's delete
    collector would look for them in the current schema only (on the platform host: tables
    that do not exist there, a 500). The database's foreign keys from every hospital schema
    decide instead, checked at once rather than at commit.
    """
    table = connection.ops.quote_name(FamilyMember._meta.db_table)
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cur.execute(f"DELETE FROM {table} WHERE id = %s", [member.pk])  # noqa: S608
            cur.execute("SET CONSTRAINTS ALL DEFERRED")
    except IntegrityError:
        if connection.in_atomic_block:  # rolled back to a savepoint: the caller goes on
            with connection.cursor() as cur:
                cur.execute("SET CONSTRAINTS ALL DEFERRED")
        return False
    return True


class _Undo(Exception):
    pass


def family_member_has_records(*, member: FamilyMember) -> bool:
    """Whether any hospital holds records of the member (a patient card, bookings, ...).

    The removal's check, undone: one statement covers every hospital's schema (no query from
    here could name them all), and nothing changes.
    """
    try:
        with transaction.atomic():
            if not _member_row_delete(member):
                return True
            raise _Undo
    except _Undo:
        return False


def family_member_remove(*, member: FamilyMember) -> None:
    """Remove a family member no hospital's records refer to (see `_member_row_delete`)."""
    if not _member_row_delete(member):
        raise FamilyMemberHasRecords(
            _("%(name)s has bookings or records at a hospital, which are kept, so this family "
              "member cannot be removed.") % {"name": member.name})


class UnknownRole(DomainError):
    code = "unknown_role"


@transaction.atomic
def staff_grant(*, user: User, hospital, role: str, is_active: bool = True) -> StaffMembership:
    """Make `user` staff of `hospital` with `role` (replacing an earlier role there)."""
    if role not in StaffMembership.Role.values:
        raise UnknownRole(_("Unknown role “%(role)s”. Choose one of: %(roles)s.") % {
            "role": role, "roles": ", ".join(StaffMembership.Role.values)})
    membership, _created = StaffMembership.objects.update_or_create(
        user=user, hospital=hospital, defaults={"role": role, "is_active": is_active})
    return membership


# --------------------------------------------------------------------------- messaging app


class MessagingAppOpenidTaken(DomainError):
    code = "messaging_app_openid_taken"


@transaction.atomic
def messaging_app_bind(*, user: User, app_id: str, openid: str) -> MessagingAppBinding:
    """Bind `user` to their user `openid` of the messaging app `app_id`; binding again with
    another openid replaces the old one. An openid already bound to another account is
    refused (that account must unbind first): notices must never go to someone else."""
    if not app_id or not openid:
        raise ValueError("app_id and openid are required")
    # Lock the account row: two callbacks of the same account at once end in one binding.
    User.objects.select_for_update().filter(pk=user.pk).first()
    other = (MessagingAppBinding.objects.filter(app_id=app_id, openid=openid)
             .exclude(user=user).exists())
    if other:
        raise MessagingAppOpenidTaken(_("This messaging-app account is already bound to "
                                        "another account on the platform. Unbind it there "
                                        "first."))
    try:
        with transaction.atomic():
            binding, _created = MessagingAppBinding.objects.update_or_create(
                user=user, app_id=app_id, defaults={"openid": openid})
    except IntegrityError:  # another account bound the same openid concurrently
        raise MessagingAppOpenidTaken(_("This messaging-app account is already bound to "
                                        "another account on the platform. Unbind it there "
                                        "first.")) from None
    return binding


@transaction.atomic
def messaging_app_unbind(*, user: User, app_id: str) -> bool:
    """Remove the account's binding to the app; True when there was one."""
    deleted, _details = MessagingAppBinding.objects.filter(user=user, app_id=app_id).delete()
    return bool(deleted)
