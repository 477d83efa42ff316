"""What each event says, per language. Placeholders come from the event's context."""

from __future__ import annotations

import re

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
    "visit_reminder": (
        _("Visit tomorrow: %(doctor)s, %(time)s"),
        _("%(name)s: tomorrow %(day)s at %(time)s, queue number %(number)s, %(hospital)s, "
          "%(place)s. Please bring the patient's ID card and medical insurance card.")),
    "booking_held": (
        _("Please pay for your booking: %(doctor)s, %(day)s"),
        _("A place is held for %(name)s (queue number %(number)s). Please pay before "
          "%(until)s or it is released.")),
    "booking_cancelled": (
        _("Booking cancelled: %(doctor)s, %(day)s"),
        _("The booking of %(name)s (queue number %(number)s) is cancelled. Any fee paid is "
          "refunded to the original payment method.")),
    "booking_expired": (
        _("Booking released: %(doctor)s, %(day)s"),
        _("The booking of %(name)s was not paid in time and has been released.")),
    "payment_succeeded": (
        _("Payment received: %(amount)s"),
        _("%(description)s: %(amount)s paid (order %(order)s).")),
    "payment_refunded": (
        _("Refund: %(amount)s"),
        _("%(amount)s for %(description)s is being returned to your original payment method "
          "(order %(order)s).")),
    "clinic_bill_issued": (
        _("New clinic bill: %(amount)s"),
        _("A clinic bill of %(amount)s for %(name)s is waiting. You can pay it on the "
          "hospital site under Clinic bills.")),
    "consult_reply": (
        _("%(doctor)s replied to your consultation"),
        _("%(doctor)s replied to the online consultation for %(name)s. Open it to read the "
          "answer.")),
    "consult_closed": (
        _("Consultation closed: %(doctor)s"),
        _("%(doctor)s closed the online consultation for %(name)s. The summary is in your "
          "records; you can rate the consultation.")),
    "consult_timed_out": (
        _("No answer in time: your consultation is refunded"),
        _("%(doctor)s did not answer the consultation for %(name)s within %(hours)s hours. "
          "The fee is being returned to your original payment method.")),
    "report_ready": (
        _("New report: %(title)s"),
        _("A new report or record for %(name)s is ready: %(title)s. Open it under Records.")),
    "announcement": ("%(title)s", "%(body)s"),
}

# A waitlist place in a free session is confirmed at once (nothing to pay, no deadline): its
# offer carries an empty "until", and must not ask the patient to pay before a blank time.
WAITLIST_OFFER_FREE = (
    MESSAGES["waitlist_offer"][0],
    _("A place came free for %(name)s. Queue number %(number)s. This session is free of "
      "charge, so the booking is confirmed: there is nothing to pay."))


def _builtin(kind: str, context: dict) -> tuple:
    if kind == "waitlist_offer" and not context.get("until"):
        return WAITLIST_OFFER_FREE
    return MESSAGES[kind]

# An 18-character resident ID number (17 digits and a digit or X) anywhere in a message.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_PLACEHOLDER = re.compile(r"%\((\w+)\)")


def placeholders_in(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def placeholders(kind: str) -> set[str]:
    """The %(name)s placeholders an event's built-in text uses (its source, untranslated)."""
    title, body = MESSAGES[kind]
    with translation.override(None):  # the source text, untranslated
        return placeholders_in(str(title)) | placeholders_in(str(body))


def render(kind: str, context: dict, language: str | None,
           overrides: dict | None = None) -> tuple[str, str]:
    """Title and body of an event for one recipient. `overrides` maps a language to a
    hospital's own (title, body) for this event (see `overrides_for`)."""
    language = language or "zh-hans"
    if overrides and language in overrides:
        title, body = overrides[language]
        return _scrub(title % context), _scrub(body % context)
    title, body = _builtin(kind, context)
    with translation.override(language):
        return _scrub(str(title) % context), _scrub(str(body) % context)


def _scrub(text: str) -> str:
    """Messages never carry a full ID number, whatever a context or template put in."""
    from portal.accounts.validators import mask_id_number

    return _ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)


def overrides_for(*, hospital_id, kind: str) -> dict[str, tuple[str, str]]:
    """A hospital's templates for one event, by language: one query, for a whole chunk."""
    if hospital_id is None:
        return {}
    from .models import NotificationTemplate

    return {language: (title, body) for language, title, body in
            NotificationTemplate.objects.filter(hospital_id=hospital_id, kind=kind)
            .values_list("language", "title", "body")}
