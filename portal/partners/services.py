"""Every change to partners, keys, grants and partner records goes through here."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.errors import DomainError

from .models import ApiKey, Grant, Partner, PartnerRecord, Scope

KEY_PREFIX = "hpk_"


class UnknownScope(DomainError):
    code = "unknown_scope"


class PatientMismatch(DomainError):
    code = "patient_mismatch"


class PatientInvalid(ValidationError):
    """The patient's name, resident ID or mobile is invalid: the API answers it under
    `details.patient`, where the request has these fields."""


def key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(raw: str) -> tuple[str, str] | None:
    """'hpk_<prefix>_<secret>' -> (prefix, whole key), or None if it is not shaped like one."""
    raw = (raw or "").strip()
    if not raw.startswith(KEY_PREFIX):
        return None
    prefix, sep, rest = raw[len(KEY_PREFIX):].partition("_")
    if not sep or not prefix or not rest or len(prefix) > 16:
        return None
    return prefix, raw


def key_matches(api_key: ApiKey, raw: str) -> bool:
    return hmac.compare_digest(api_key.key_hash, key_hash(raw))


@transaction.atomic
def api_key_create(*, partner: Partner, scopes: list[str], name: str = "",
                   rate_limit: int | None = None, raw: str | None = None) -> tuple[ApiKey, str]:
    """A new key for `partner`; returns the row and the plaintext key (shown once, never stored).

    `raw` fixes the plaintext instead of drawing one: only for the demo data (`seed_demo`)."""
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise UnknownScope(_("Unknown scope(s): %(scopes)s.") % {"scopes": ", ".join(unknown)})
    if raw is None:
        prefix = secrets.token_hex(4)
        raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    else:
        parsed = parse_key(raw)
        if parsed is None:
            raise ValueError("not an API key: hpk_<prefix>_<secret>")
        prefix = parsed[0]
    key = ApiKey.objects.create(partner=partner, name=name, prefix=prefix, key_hash=key_hash(raw),
                                scopes=sorted(set(scopes)), rate_limit=rate_limit)
    return key, raw


def api_key_revoke(*, api_key: ApiKey) -> None:
    from .auth import auth_cache

    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    auth_cache.invalidate()  # every process drops its cached keys within a second


def grant_create(*, partner: Partner, hospital) -> Grant:
    grant, _created = Grant.objects.get_or_create(partner=partner, hospital=hospital)
    return grant


def record_object(*, partner: Partner, hospital, kind: str, object_id: int) -> PartnerRecord:
    record, _created = PartnerRecord.objects.get_or_create(
        hospital=hospital, kind=kind, object_id=object_id, defaults={"partner": partner})
    return record


def record_owner(*, hospital_id: int, kind: str, object_id: int) -> int | None:
    """The partner that made this object through the API, if any."""
    return (PartnerRecord.objects.filter(hospital_id=hospital_id, kind=kind, object_id=object_id)
            .values_list("partner_id", flat=True).first())


def own_object_ids(*, partner: Partner, hospital, kind: str):
    """A subquery of the partner's object ids at a hospital (the public schema is on the
    search path, so it runs in the same SQL as the hospital's own tables)."""
    return PartnerRecord.objects.filter(partner=partner, hospital_id=hospital.pk,
                                        kind=kind).values("object_id")


@transaction.atomic
def patient_resolve(*, name: str, id_number: str, mobile: str):
    """Find or create the platform account (by mobile) and the family member (by resident ID)
    a partner books for, through the account services. Returns (account, family member).

    A resident ID already registered under that account with a different name is refused
    (`patient_mismatch`): the partner's data and ours disagree about who this is."""
    from portal.accounts.models import FamilyMember, User
    from portal.accounts.services import PhoneTaken, account_register, family_member_add
    from portal.accounts.validators import (
        normalize_id_number,
        normalize_mobile,
        parse_id_number,
        validate_mobile,
    )

    errors: dict[str, list] = {}
    phone = normalize_mobile(mobile)
    try:
        validate_mobile(phone)
    except ValidationError as exc:
        errors["mobile"] = exc.error_list
    try:
        number = parse_id_number(id_number).number
    except ValidationError as exc:  # wrong length, characters, birth date or check digit
        errors["id_number"] = exc.error_list
    name = (name or "").strip()
    if not name:
        errors["name"] = [ValidationError(_("Enter the patient's name."), code="required")]
    if errors:
        raise PatientInvalid(errors)
    account = User.objects.filter(phone=phone).first()
    if account is None:
        try:
            with transaction.atomic():
                # No password: the patient signs in later with an SMS code or resets it.
                account = account_register(phone=phone, password=None, name=name)
        except (PhoneTaken, IntegrityError):
            account = User.objects.get(phone=phone)
    member = FamilyMember.objects.filter(account=account,
                                         id_number=normalize_id_number(number)).first()
    if member is not None:
        if member.name != name:
            raise PatientMismatch(_("This resident ID is registered under another name for "
                                    "this mobile number."))
        return account, member
    has_self = account.family_members.filter(relation=FamilyMember.Relation.SELF).exists()
    relation = (FamilyMember.Relation.SELF if not has_self and (account.name or name) == name
                else FamilyMember.Relation.OTHER)
    member = family_member_add(account=account, name=name, relation=relation, id_number=number,
                               phone=phone)
    return account, member


def idempotency_records_purge(*, limit: int = 10000) -> int:
    """Delete expired Idempotency-Key records (hourly, beat). Returns how many."""
    from .models import IdempotencyRecord

    ids = list(IdempotencyRecord.objects.filter(expires_at__lte=timezone.now())
               .values_list("pk", flat=True)[:limit])
    return IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]
