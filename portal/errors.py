"""Domain errors carry a stable code; pages show the message, the API returns both."""

from __future__ import annotations


class DomainError(Exception):
    code = "error"
    default_message = "The request could not be completed."

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 details: dict | None = None) -> None:
        self.message = str(message or self.default_message)
        if code:
            self.code = code
        self.details = details or {}
        super().__init__(self.message)
