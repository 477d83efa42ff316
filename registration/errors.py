"""The registration app's domain errors, each with a stable `code` (the API's error body and
the pages' form messages are built from it by the one handler in `portal.errors`)."""

from __future__ import annotations

from portal.errors import DomainError


class BookingError(DomainError):
    code = "booking_error"


class SlotSoldOut(BookingError):
    code = "slot_sold_out"


class NotYetReleased(BookingError):
    code = "not_yet_released"


class SlotInThePast(BookingError):
    code = "slot_in_the_past"


class ScheduleStopped(BookingError):
    code = "schedule_stopped"


class BookingLimitReached(BookingError):
    code = "booking_limit_reached"


class DuplicateBooking(BookingError):
    code = "duplicate_booking"


class PatientBanned(BookingError):
    code = "patient_banned"


class NotYourPatient(BookingError):
    code = "not_your_patient"


class CancelTooLate(BookingError):
    code = "cancel_cutoff_passed"


class NotCancellable(BookingError):
    code = "not_cancellable"


class WaitlistNotAvailable(BookingError):
    code = "waitlist_not_available"
