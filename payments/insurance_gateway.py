"""Talking to the medical insurer (医保) about one bill: pre-settle, then settle or reverse.

The flow of an insured bill
---------------------------
1. ``pre_settle`` (预结算): send the bill's items; the insurer computes the split with the
   patient's year-to-date figures (which only it holds) and **reserves** it: the patient's
   deductible and cap usage move at once, so two bills of one patient in flight never pay
   past the cap. It answers a settlement id and its `Settlement` (authoritative: the insurer's
   catalogue decides the classes, and its numbers, not our estimate, decide what the patient
   pays online).
2. The patient pays ``self_pay_fen`` through the payment provider.
3. Paid → ``settle(id)`` (结算确认). Not paid (failed, abandoned, hold expired) → ``reverse(id)``
   (撤销): the reservation is released. A settled bill that is refunded in full is reversed
   too. A pending settlement the hospital never confirms is reversed by the insurer after its
   time-to-live.

Every call is idempotent, so a call whose answer was lost (timeout, `InsuranceUnavailable`) is
simply repeated: ``pre_settle`` with the same ``bill_no`` and the same items returns the same
pending settlement; ``settle`` of a settled one and ``reverse`` of a reversed one answer the
record as it is. ``query(id)`` tells where a settlement stands.

Protocol (version 1), JSON over HTTPS, UTF-8, amounts in integer fen
--------------------------------------------------------------------
Every request carries

    X-Insurance-Signature: t=<unix seconds>,nonce=<32 hex>,sig=<hex>
    sig = hex(HMAC-SHA256(api_key, "INS1-REQUEST\\n" + METHOD + "\\n" + PATH + "\\n" + t + "\\n"
                                   + nonce + "\\n" + hex(SHA-256(body)) + "\\n"))

(PATH as sent, e.g. ``/v1/settlements/S1/settle``; an empty body hashes as b""). The insurer
answers 401 ``{"code": "bad_signature" | "stale_timestamp" | "replayed_nonce"}`` when the
signature does not verify, ``t`` is more than 300 s away from its clock, or the nonce was seen.

Every response carries

    X-Insurance-Signature: t=<unix seconds>,sig=<hex>
    sig = hex(HMAC-SHA256(api_key, "INS1-RESPONSE\\n" + STATUS + "\\n" + <request nonce> + "\\n"
                                   + t + "\\n" + hex(SHA-256(body)) + "\\n"))

Binding the answer to the request's nonce means an old answer cannot be replayed to us. The
adapter trusts no amount from a response whose signature does not verify.

Endpoints
    POST /v1/pre-settlements
        {"bill_no": "<1..64 chars, the hospital's bill number, idempotency key>",
         "patient_id": "<1..64 chars, the insured person's id / e-voucher token>",
         "insurance_type": "employee" | "resident" | "none",
         "items": [{"item_class": "A" | "B" | "C", "amount_fen": 1234, "name": "..."}, ...]}
        → 201 (new) or 200 (same bill_no and same request already pending or settled)
    GET  /v1/settlements/{settlement_id}                     → 200
    POST /v1/settlements/{settlement_id}/settle   (no body)  → 200, status "settled"
    POST /v1/settlements/{settlement_id}/reverse  (no body)  → 200, status "reversed"

    A settlement record (every 200/201):
        {"settlement_id": "...", "bill_no": "...", "status": "pending" | "settled" | "reversed",
         "settlement": <payments.insurance.settlement_to_dict(...)>}

    Errors: {"code": "...", "message": "..."}: 400 bad input (``invalid_json`` or the
    `payments.insurance` codes, e.g. ``insurance_empty_bill``), 401 as above, 404 ``not_found``,
    409 ``bill_conflict`` (same bill_no, different request), ``already_reversed`` (settle after
    reverse), ``expired`` (settle after the pending time-to-live); 5xx: try again later.
"""

from __future__ import annotations

import abc
import enum
import hashlib
import hmac
import http.client
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from portal.errors import DomainError

from .insurance import (
    InconsistentSettlement,
    InsuranceType,
    ItemLike,
    Settlement,
    normalize_items,
    settlement_from_dict,
)

SIGNATURE_HEADER = "X-Insurance-Signature"
MAX_CLOCK_SKEW_SECONDS = 300


# --------------------------------------------------------------------------- errors


class InsuranceGatewayError(DomainError):
    code = "insurance_gateway_error"
    default_message = "Medical insurance settlement is not available right now."


class InsuranceUnavailable(InsuranceGatewayError):
    """No answer, a timeout or a 5xx: the outcome is unknown; repeat the call (it is idempotent)."""

    code = "insurance_unavailable"


class InsuranceAuthFailed(InsuranceGatewayError):
    """The insurer refused our signature (wrong key or clock): a configuration problem."""

    code = "insurance_auth_failed"


class InsuranceRejected(InsuranceGatewayError):
    """The insurer understood and said no; ``insurer_code`` says why (e.g. ``already_reversed``)."""

    code = "insurance_rejected"

    @property
    def insurer_code(self) -> str:
        return str(self.details.get("insurer_code", ""))


class InsuranceBadResponse(InsuranceGatewayError):
    """An answer we must not trust: bad signature, malformed, or amounts that do not add up."""

    code = "insurance_bad_response"


# --------------------------------------------------------------------------- signatures


def _body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def request_signature(api_key: str, method: str, path: str, timestamp: str, nonce: str,
                      body: bytes) -> str:
    message = f"INS1-REQUEST\n{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{_body_hash(body)}\n"
    return hmac.new(api_key.encode(), message.encode(), hashlib.sha256).hexdigest()


def response_signature(api_key: str, status: int, request_nonce: str, timestamp: str, body: bytes) -> str:
    message = f"INS1-RESPONSE\n{status}\n{request_nonce}\n{timestamp}\n{_body_hash(body)}\n"
    return hmac.new(api_key.encode(), message.encode(), hashlib.sha256).hexdigest()


def parse_signature_header(value: str | None) -> dict[str, str]:
    """``"t=1,nonce=ab,sig=cd"`` → ``{"t": "1", "nonce": "ab", "sig": "cd"}``; junk → ``{}``."""
    fields: dict[str, str] = {}
    for part in (value or "").split(","):
        key, sep, val = part.strip().partition("=")
        if not sep or not key or key in fields:
            return {}
        fields[key] = val
    return fields


def sign_request_headers(api_key: str, method: str, path: str, body: bytes) -> tuple[dict[str, str], str]:
    """The signature header for a request, and the nonce (to verify the answer with)."""
    ts, nonce = str(int(time.time())), secrets.token_hex(16)
    sig = request_signature(api_key, method, path, ts, nonce, body)
    return {SIGNATURE_HEADER: f"t={ts},nonce={nonce},sig={sig}"}, nonce


def verify_request(api_key: str, method: str, path: str, header: str | None, body: bytes, *,
                   now: float | None = None) -> str:
    """The insurer's side: return the request's nonce if the signature verifies.

    Otherwise raise `ValueError` whose ``args[0]`` is the 401 code, ``bad_signature`` or
    ``stale_timestamp``. Remembering nonces (``replayed_nonce``) is the server's job.
    """
    fields = parse_signature_header(header)
    ts, nonce, sig = fields.get("t", ""), fields.get("nonce", ""), fields.get("sig", "")
    if not (ts.isdigit() and nonce and sig):
        raise ValueError("bad_signature")
    expected = request_signature(api_key, method, path, ts, nonce, body)
    if not hmac.compare_digest(expected, sig):
        raise ValueError("bad_signature")
    if abs((time.time() if now is None else now) - int(ts)) > MAX_CLOCK_SKEW_SECONDS:
        raise ValueError("stale_timestamp")
    return nonce


# --------------------------------------------------------------------------- the interface


class SettlementStatus(enum.StrEnum):
    PENDING = "pending"  # pre-settled, reserved, awaiting settle or reverse
    SETTLED = "settled"
    REVERSED = "reversed"


@dataclass(frozen=True)
class InsurerSettlement:
    """A settlement as the insurer holds it."""

    settlement_id: str
    bill_no: str
    status: SettlementStatus
    settlement: Settlement


class InsuranceGateway(abc.ABC):
    """What the payment services need from an insurer. Every method is idempotent."""

    @abc.abstractmethod
    def pre_settle(self, *, bill_no: str, patient_id: str, insurance_type: InsuranceType | str,
                   items: Iterable[ItemLike]) -> InsurerSettlement:
        """Compute and reserve the split of a bill (status pending)."""

    @abc.abstractmethod
    def settle(self, settlement_id: str) -> InsurerSettlement:
        """Confirm a pending settlement once the patient's self-pay has succeeded."""

    @abc.abstractmethod
    def reverse(self, settlement_id: str) -> InsurerSettlement:
        """Cancel a pending (self-pay failed) or settled (bill refunded) settlement."""

    @abc.abstractmethod
    def query(self, settlement_id: str) -> InsurerSettlement:
        """Where a settlement stands (after a call whose answer was lost)."""


# --------------------------------------------------------------------------- the HTTP adapter


class HttpInsuranceGateway(InsuranceGateway):
    """Protocol version 1 (module docstring) over HTTP(S)."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 10) -> None:
        if not api_key:
            raise InsuranceAuthFailed(_("No medical insurance API key is configured."))
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def pre_settle(self, *, bill_no: str, patient_id: str, insurance_type: InsuranceType | str,
                   items: Iterable[ItemLike]) -> InsurerSettlement:
        # Bad input is ours to catch: it raises the `payments.insurance` ValueErrors, unsent.
        checked = normalize_items(items)
        kind = InsuranceType.parse(insurance_type)
        payload = {"bill_no": bill_no, "patient_id": patient_id, "insurance_type": str(kind),
                   "items": [{"item_class": str(i.item_class), "amount_fen": i.amount_fen, "name": i.name}
                             for i in checked]}
        record = self._record(self._call("POST", "/v1/pre-settlements", payload, ok=(200, 201)))
        if record.bill_no != bill_no:
            raise InsuranceBadResponse(details={"reason": "bill_no differs", "bill_no": record.bill_no})
        # The insurer may classify items differently (its catalogue wins), but it must have
        # settled exactly the amounts we sent.
        if [line.amount_fen for line in record.settlement.lines] != [i.amount_fen for i in checked]:
            raise InsuranceBadResponse(details={"reason": "settled amounts differ from the bill"})
        return record

    def settle(self, settlement_id: str) -> InsurerSettlement:
        return self._expect_id(self._record(self._call("POST", self._path(settlement_id, "settle"))),
                               settlement_id)

    def reverse(self, settlement_id: str) -> InsurerSettlement:
        return self._expect_id(self._record(self._call("POST", self._path(settlement_id, "reverse"))),
                               settlement_id)

    def query(self, settlement_id: str) -> InsurerSettlement:
        return self._expect_id(self._record(self._call("GET", self._path(settlement_id))), settlement_id)

    # ----------------------------------------------------------------- transport
    @staticmethod
    def _path(settlement_id: str, action: str = "") -> str:
        path = "/v1/settlements/" + urllib.parse.quote(settlement_id, safe="")
        return f"{path}/{action}" if action else path

    def _call(self, method: str, path: str, payload: Mapping[str, Any] | None = None,
              ok: tuple[int, ...] = (200,)) -> dict[str, Any]:
        body = json.dumps(payload, ensure_ascii=False).encode() if payload is not None else b""
        headers, nonce = sign_request_headers(self.api_key, method, path, body)
        headers.update({"Content-Type": "application/json", "Accept": "application/json"})
        request = urllib.request.Request(self.base_url + path, data=body if method != "GET" else None,
                                         method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
                signature = response.headers.get(SIGNATURE_HEADER)
        except urllib.error.HTTPError as exc:
            status, raw, signature = exc.code, exc.read(), exc.headers.get(SIGNATURE_HEADER)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            # Includes timeouts: the insurer may or may not have acted; the caller repeats.
            raise InsuranceUnavailable(details={"reason": str(exc), "path": path}) from exc

        if status == 401:
            # Unverifiable by design when our key is wrong; nothing in it is trusted anyway.
            raise InsuranceAuthFailed(_("The medical insurer refused our signature."),
                                      details={"path": path})
        fields = parse_signature_header(signature)
        expected = response_signature(self.api_key, status, nonce, fields.get("t", ""), raw)
        if not hmac.compare_digest(expected, fields.get("sig", "")):
            raise InsuranceBadResponse(_("The medical insurer's answer could not be verified."),
                                       details={"reason": "bad response signature", "status": status,
                                                "path": path})
        try:
            data = json.loads(raw) if raw else {}
        except ValueError as exc:
            raise InsuranceBadResponse(details={"reason": "not JSON", "status": status}) from exc
        if not isinstance(data, dict):
            raise InsuranceBadResponse(details={"reason": "not a JSON object", "status": status})
        details = {"status": status, "insurer_code": str(data.get("code", "")),
                   "insurer_message": str(data.get("message", "")), "path": path}
        if status >= 500:
            raise InsuranceUnavailable(details=details)
        if status not in ok:
            raise InsuranceRejected(_("The medical insurer declined the settlement."), details=details)
        return data

    @staticmethod
    def _record(data: Mapping[str, Any]) -> InsurerSettlement:
        try:
            return InsurerSettlement(settlement_id=_text(data["settlement_id"]),
                                     bill_no=_text(data["bill_no"]),
                                     status=SettlementStatus(data["status"]),
                                     settlement=settlement_from_dict(data["settlement"]))
        except InconsistentSettlement as exc:
            raise InsuranceBadResponse(_("The medical insurer's settlement does not add up."),
                                       details={"reason": exc.code, **exc.details}) from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise InsuranceBadResponse(details={"reason": f"malformed record: {exc!r}"}) from exc

    @staticmethod
    def _expect_id(record: InsurerSettlement, settlement_id: str) -> InsurerSettlement:
        if record.settlement_id != settlement_id:
            raise InsuranceBadResponse(details={"reason": "settlement_id differs"})
        return record


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("expected a non-empty string")
    return value
