"""The consult app's domain errors. Each has a stable `code` (the API's error body and the
pages' messages use it); import them by name: `from consult.errors import RecordNotFound`."""

from __future__ import annotations

from portal.errors import DomainError


class ConsultError(DomainError):
    code = "consult_error"


class TriageIncomplete(ConsultError):
    code = "triage_incomplete"


class TriageNotOnline(ConsultError):
    code = "triage_not_online"


class NotYourPatient(ConsultError):
    code = "not_your_patient"


class DoctorNotAvailable(ConsultError):
    code = "doctor_not_available"


class ConsultationNotOpen(ConsultError):
    code = "consultation_not_open"


class NotYourConsultation(ConsultError):
    code = "not_your_consultation"


class AttachmentRejected(ConsultError):
    code = "attachment_rejected"


class RatingNotAllowed(ConsultError):
    code = "rating_not_allowed"


class RecordNotFound(ConsultError):
    code = "record_not_found"


class InvalidReport(ConsultError):
    code = "invalid_report"


class InvalidRule(ConsultError):
    code = "invalid_rule"
