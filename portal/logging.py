"""Log hygiene: resident ID and mobile numbers are masked in every log record."""

from __future__ import annotations

import logging
import re

_ID_RE = re.compile(r"(?<![0-9])(\d{6})\d{8}(\d{3}[0-9Xx])(?![0-9Xx])")
_MOBILE_RE = re.compile(r"(?<![0-9])(1[3-9]\d)\d{4}(\d{4})(?![0-9])")


def redact(text: str) -> str:
    text = _ID_RE.sub(r"\1********\2", text)
    return _MOBILE_RE.sub(r"\1****\2", text)


class RedactPersonalData(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the caller's bug, not ours to hide
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
