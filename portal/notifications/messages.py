"""What each event says, per language. Placeholders come from the event's context."""

from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext_lazy as _

MESSAGES = {
    "schedule_stopped": (
        _("Clinic stopped: %(doctor)s, %(day)s"),
        _("%(doctor)s will not see patients on %(day)s (%(reason)s). The booking of %(name)s "
          "(queue number %(number)s) is cancelled. We apologise.")),
    "schedule_stopped_refund": (
        _("Clinic stopped: %(doctor)s, %(day)s"),
        _("%(doctor)s will not see patients on %(day)s (%(reason)s). The booking of %(name)s "
          "(queue number %(number)s) is cancelled and the fee is refunded. We apologise.")),
    "waitlist_closed": (
        _("Clinic stopped: %(doctor)s, %(day)s"),
        _("%(doctor)s will not see patients on %(day)s (%(reason)s); the waitlist is closed.")),
    "waitlist_offer": (
        _("A place is yours: %(doctor)s, %(day)s"),
        _("A place came free for %(name)s. Queue number %(number)s. Please pay before "
          "%(until)s or it goes to the next patient.")),
    "booking_confirmed": (
        _("Booking confirmed: %(doctor)s, %(day)s"),
        _("%(name)s: queue number %(number)s, please arrive between %(arrive)s.")),
    "announcement": ("%(title)s", "%(body)s"),
}


def render(kind: str, context: dict, language: str | None) -> tuple[str, str]:
    title, body = MESSAGES[kind]
    with translation.override(language or "zh-hans"):
        return str(title) % context, str(body) % context
