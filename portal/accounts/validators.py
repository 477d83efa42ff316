"""Mainland mobile numbers and resident ID numbers (GB 11643-1999)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def normalize_mobile(value: str) -> str:
    """Strip spaces, dashes and a +86 / 0086 prefix: '+86 138-0013-8000' -> '13800138000'."""
    digits = re.sub(r"[\s\-()]", "", value or "")
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix):]
    return digits


def validate_mobile(value: str) -> None:
    if not _MOBILE_RE.match(normalize_mobile(value)):
        raise ValidationError(
            _("Enter a valid mainland China mobile number: 11 digits starting with 13–19."),
            code="invalid_mobile",
        )


def mask_mobile(value: str) -> str:
    """138****8000"""
    value = value or ""
    return f"{value[:3]}****{value[-4:]}" if len(value) == 11 else "****"


def id_check_digit(first17: str) -> str:
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def normalize_id_number(value: str) -> str:
    return (value or "").strip().replace(" ", "").upper()


@dataclass(frozen=True)
class ResidentId:
    number: str
    birth_date: date
    sex: str  # "M" or "F"


def parse_id_number(value: str) -> ResidentId:
    """Validate an 18-character resident ID number and return what it encodes.

    Raises ValidationError with a message a patient can act on: wrong length, wrong
    characters, an impossible birth date, or a check digit that does not match.
    """
    number = normalize_id_number(value)
    if len(number) != 18:
        raise ValidationError(
            _("A resident ID number has 18 characters; this one has %(n)d."),
            params={"n": len(number)}, code="id_wrong_length",
        )
    if not (number[:17].isdigit() and (number[17].isdigit() or number[17] == "X")):
        raise ValidationError(
            _("A resident ID number is 17 digits followed by a digit or X."),
            code="id_bad_characters",
        )
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValidationError(
            _("The birth date inside this resident ID number is not a real date."),
            code="id_bad_birth_date",
        ) from None
    if birth > date.today() or birth.year < 1900:
        raise ValidationError(
            _("The birth date inside this resident ID number is not a real date."),
            code="id_bad_birth_date",
        )
    if id_check_digit(number[:17]) != number[17]:
        raise ValidationError(
            _("This resident ID number is not valid: its last character (check digit) does "
              "not match. Please check it against the ID card."),
            code="id_bad_check_digit",
        )
    return ResidentId(number=number, birth_date=birth, sex="M" if int(number[16]) % 2 else "F")


def validate_id_number(value: str) -> None:
    parse_id_number(value)


def mask_id_number(value: str) -> str:
    """110101********123X: region kept, birth date and sequence hidden."""
    value = value or ""
    return f"{value[:6]}********{value[-4:]}" if len(value) == 18 else "****"


class PasswordNotBlankValidator:
    """AUTH_PASSWORD_VALIDATORS: a password must hold at least `min_visible` characters that
    are not white space (Django's length rule counted eight spaces as a password)."""

    def __init__(self, min_visible: int = 6):
        self.min_visible = min_visible

    def validate(self, password: str, user=None) -> None:
        if sum(not ch.isspace() for ch in password) < self.min_visible:
            raise ValidationError(
                _("A password needs at least %(n)d characters that are not spaces."),
                code="password_blank", params={"n": self.min_visible})

    def get_help_text(self) -> str:
        return _("At least %(n)d characters that are not spaces.") % {"n": self.min_visible}
