"""The API's one error shape: {"error": {"code", "message", "details"}}.

Every error of the partner API goes through `api_exception_handler`: validation, auth, 404,
405, throttling, domain errors (their stable `code`, e.g. `slot_sold_out`) and the unexpected.
"""

from __future__ import annotations

import logging
import math

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response

from portal.errors import DomainError

log = logging.getLogger(__name__)

# Domain errors answer 409 (the request is fine, the state of things refuses it) unless listed.
DOMAIN_STATUS = {
    "patient_mismatch": 422,
    "invalid_report": 422,
    "unknown_patient": 422,
    "identity_required": 422,
    "not_your_patient": 403,
    "unknown_scope": 400,
    "invalid_amount": 400,
    "idempotency_key_invalid": 400,
    "payments_not_configured": 503,
}

#: Codes a partner can meet, for the docs (docs/partner-api.md and the OpenAPI description).
ERROR_CODES = {
    "validation_error": "400: the body or query is invalid; details has field errors",
    "parse_error": "400: the body is not valid JSON",
    "not_authenticated": "401: no API key was sent",
    "invalid_api_key": "401: the key is unknown or wrong",
    "api_key_revoked": "401: the key was revoked",
    "partner_inactive": "401: the partner is deactivated",
    "missing_scope": "403: the key lacks the scope the operation needs",
    "not_found": "404: no such resource, or the hospital is not granted to the key",
    "method_not_allowed": "405",
    "unsupported_media_type": "415: a POST body must be sent as Content-Type: application/json",
    "rate_limited": "429: too many requests; wait Retry-After seconds",
    "idempotency_key_reused": "409: the Idempotency-Key was used with a different request",
    "idempotency_request_in_progress": "409: a request with this Idempotency-Key is running",
    "slot_sold_out": "409", "not_yet_released": "409", "slot_in_the_past": "409",
    "schedule_stopped": "409", "booking_limit_reached": "409", "duplicate_booking": "409",
    "patient_banned": "409", "cancel_cutoff_passed": "409", "not_cancellable": "409",
    "patient_mismatch": "422: the resident ID is registered under another name",
    "identity_required": "422",
    "bill_not_editable": "409",
    "invalid_report": "422: the report is not acceptable (kind, items, title)",
    "unknown_patient": "422: no patient card has that medical record number",
    "server_error": "500",
}


def error_body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _validation_details(exc: DjangoValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        return {field: [{"message": m, "code": e.code or "invalid"}
                        for e in errors for m in e.messages]
                for field, errors in exc.error_dict.items()}
    return {"non_field_errors": [{"message": m, "code": exc.code or "invalid"}
                                 for m in exc.messages]}


def api_exception_handler(exc, context):
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, DjangoValidationError):
        from .services import PatientInvalid

        details = _validation_details(exc)
        if isinstance(exc, PatientInvalid):  # the request's fields are patient.name etc.
            details = {"patient": details}
        return Response(error_body("validation_error", _("The request is not valid."), details),
                        status=400)
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.details),
                        status=DOMAIN_STATUS.get(exc.code, status.HTTP_409_CONFLICT))
    if isinstance(exc, exceptions.APIException):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if isinstance(exc, exceptions.Throttled):
            headers["Retry-After"] = str(max(1, math.ceil(exc.wait or 1)))
            body = error_body("rate_limited", _("Too many requests. Try again in %(s)s seconds.")
                              % {"s": headers["Retry-After"]},
                              {"retry_after": int(headers["Retry-After"])})
        elif isinstance(exc, exceptions.ValidationError):
            body = error_body("validation_error", _("The request is not valid."),
                              _full_details(exc.get_full_details()))
        else:
            code = exc.detail.code if hasattr(exc.detail, "code") else exc.default_code
            body = error_body(str(code), str(exc.detail))
        return Response(body, status=exc.status_code, headers=headers)
    log.exception("unexpected error in the partner API")
    return Response(error_body("server_error", _("Something went wrong on our side.")),
                    status=500)


def _full_details(details):
    if isinstance(details, list):
        return {"non_field_errors": details}
    return details
