"""Fen ⇄ yuan at the edges (forms and templates). Inside, money is always integer fen."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

_YUAN_RE = re.compile(r"^\s*(\d{1,9})(?:\.(\d{1,2}))?\s*$")


def yuan_to_fen(text: str) -> int:
    """'12' -> 1200, '12.5' -> 1250, '0.05' -> 5; anything else is a ValidationError."""
    m = _YUAN_RE.match(str(text).replace("¥", "").replace(",", ""))
    if not m:
        raise ValidationError(_("Enter an amount in yuan with at most two decimals, e.g. 12.50."),
                              code="invalid_amount")
    return int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))


def fen_to_yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"
