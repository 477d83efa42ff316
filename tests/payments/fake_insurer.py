"""A local medical insurer for tests: protocol version 1 of `payments.insurance_gateway`.

A stdlib HTTP server in a thread on a free port. It computes splits with
`payments.insurance.settle` under its own policy, keeps each patient's year-to-date figures
(reserved at pre-settle, released at reverse or expiry), verifies request signatures (401 on a
bad or stale signature or a replayed nonce) and signs its answers. Tests steer it:

    insurer = FakeInsurer(api_key="k").start()
    insurer.set_year_to_date("P1", YearToDate(180_000, 0))
    insurer.fail("settle", status=503)              # the next settle answers 503
    insurer.fail("settle", after=True)              # ... acts, then answers 503 (answer lost)
    insurer.fail("settle", delay=1.0)               # ... answers late (client times out)
    insurer.corrupt_next("signature" | "amounts")   # the next answer cannot be trusted
    insurer.advance(3600)                           # move its clock (pending settlements expire)
    insurer.stop()
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from payments.insurance import (
    BillItem,
    InsuranceInputError,
    InsurancePolicy,
    Settlement,
    YearToDate,
    normalize_items,
    settle,
    settlement_to_dict,
)
from payments.insurance_gateway import (
    MAX_CLOCK_SKEW_SECONDS,
    SIGNATURE_HEADER,
    response_signature,
    verify_request,
)
from portal.dev.http import DevService, Request, Response

_SETTLEMENT_PATH = re.compile(r"^/v1/settlements/([A-Za-z0-9_-]{1,64})(?:/(settle|reverse))?$")
OPERATIONS = ("pre_settle", "settle", "reverse", "query")


@dataclass
class _Failure:
    status: int
    code: str
    times: int
    delay: float
    after: bool


@dataclass
class _Record:
    settlement_id: str
    bill_no: str
    patient_id: str
    fingerprint: tuple
    settlement: Settlement
    created_at: float
    status: str = "pending"
    reason: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"settlement_id": self.settlement_id, "bill_no": self.bill_no, "status": self.status,
                "settlement": settlement_to_dict(self.settlement)}


class _Problem(Exception):
    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(code)
        self.status, self.code, self.message = status, code, message or code


@dataclass
class FakeInsurer(DevService):
    poll_interval = 0.02
    api_key: str = "fake-insurer-key-dev-only"
    policy: InsurancePolicy = field(default_factory=InsurancePolicy)
    pending_ttl_seconds: float = 1800
    base_url: str = ""
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ytd: dict[str, YearToDate] = {}
        self._records: dict[str, _Record] = {}
        self._active_by_bill: dict[str, str] = {}
        self._nonces: dict[str, float] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._corrupt: list[str] = []
        self._offset = 0.0
        DevService.__init__(self)

    # ----------------------------------------------------------------- lifecycle (DevService)
    def started(self) -> None:
        self.base_url = self.url

    # ----------------------------------------------------------------- steering
    def set_year_to_date(self, patient_id: str, ytd: YearToDate) -> None:
        with self._lock:
            self._ytd[patient_id] = ytd

    def year_to_date(self, patient_id: str) -> YearToDate:
        with self._lock:
            return self._ytd.get(patient_id, YearToDate())

    def record(self, settlement_id: str) -> dict[str, Any]:
        with self._lock:
            r = self._records[settlement_id]
            return {**r.as_json(), "reason": r.reason, "patient_id": r.patient_id}

    def fail(self, operation: str, *, status: int = 503, code: str = "system_busy", times: int = 1,
             delay: float = 0.0, after: bool = False) -> None:
        """Make the next `times` calls of `operation` answer `status` (after acting, if `after`)."""
        assert operation in OPERATIONS, operation
        with self._lock:
            self._failures.setdefault(operation, []).append(_Failure(status, code, times, delay, after))

    def corrupt_next(self, kind: str) -> None:
        """``signature``: sign the next answer with another key; ``amounts``: make it not add up."""
        assert kind in ("signature", "amounts"), kind
        with self._lock:
            self._corrupt.append(kind)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    def now(self) -> float:
        return time.time() + self._offset

    # ----------------------------------------------------------------- HTTP
    def handle(self, request: Request) -> Response:
        if request.method not in ("GET", "POST"):
            return Response(501)
        body, method, path = request.body, request.method, request.target
        nonce = ""
        try:
            nonce = self._authenticate(method, path, request.headers.get(SIGNATURE_HEADER), body)
            operation, settlement_id = self._route(method, path)
            failure = self._take_failure(operation)
            if failure is not None and failure.delay:
                time.sleep(failure.delay)
            if failure is not None and not failure.after:
                raise _Problem(failure.status, failure.code)
            status, payload = self._handle(operation, settlement_id, body)
            if failure is not None:
                raise _Problem(failure.status, failure.code)
        except _Problem as problem:
            status, payload = problem.status, {"code": problem.code, "message": problem.message}
        return self._respond(method, path, status, payload, nonce)

    def _respond(self, method: str, path: str, status: int, payload: dict[str, Any],
                 nonce: str) -> Response:
        with self._lock:
            corrupt = self._corrupt.pop(0) if self._corrupt and status < 400 else None
        if corrupt == "amounts" and "settlement" in payload:
            payload = json.loads(json.dumps(payload))
            payload["settlement"]["insurance_fen"] += 1
            payload["settlement"]["self_pay_fen"] -= 1
        raw = json.dumps(payload, ensure_ascii=False).encode()
        ts = str(int(time.time()))
        key = self.api_key + "-wrong" if corrupt == "signature" else self.api_key
        with self._lock:  # logged before answering, so a test sees it as soon as it has the answer
            self.requests.append((method, path, status))
        # A client that gave up waiting (timeout tests) loses the answer, as in real life.
        return Response(status, raw, [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Content-Length", str(len(raw))),
            (SIGNATURE_HEADER, f"t={ts},sig={response_signature(key, status, nonce, ts, raw)}")])

    def _authenticate(self, method: str, path: str, header: str | None, body: bytes) -> str:
        try:
            nonce = verify_request(self.api_key, method, path, header, body)
        except ValueError as exc:
            raise _Problem(401, str(exc.args[0])) from exc
        with self._lock:
            horizon = time.time() - 2 * MAX_CLOCK_SKEW_SECONDS
            self._nonces = {n: t for n, t in self._nonces.items() if t > horizon}
            if nonce in self._nonces:
                raise _Problem(401, "replayed_nonce")
            self._nonces[nonce] = time.time()
        return nonce

    @staticmethod
    def _route(method: str, path: str) -> tuple[str, str]:
        if path == "/v1/pre-settlements":
            if method != "POST":
                raise _Problem(405, "method_not_allowed")
            return "pre_settle", ""
        match = _SETTLEMENT_PATH.match(path)
        if not match:
            raise _Problem(404, "not_found")
        settlement_id, action = match.groups()
        if (method == "GET") != (action is None):
            raise _Problem(405, "method_not_allowed")
        return action or "query", settlement_id

    def _take_failure(self, operation: str) -> _Failure | None:
        with self._lock:
            queue = self._failures.get(operation) or []
            if not queue:
                return None
            failure = queue[0]
            failure.times -= 1
            if failure.times <= 0:
                queue.pop(0)
            return failure

    # ----------------------------------------------------------------- the insurer
    def _handle(self, operation: str, settlement_id: str, body: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._expire()
            if operation == "pre_settle":
                return self._pre_settle(body)
            record = self._records.get(settlement_id)
            if record is None:
                raise _Problem(404, "not_found", "no such settlement")
            if operation == "settle":
                if record.status == "reversed":
                    code = "expired" if record.reason == "expired" else "already_reversed"
                    raise _Problem(409, code, "the settlement was reversed")
                record.status = "settled"
            elif operation == "reverse" and record.status != "reversed":
                self._release(record, reason="reversed")
            return 200, record.as_json()

    def _pre_settle(self, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise _Problem(400, "invalid_json") from exc
        if not isinstance(data, dict):
            raise _Problem(400, "invalid_json")
        bill_no, patient_id = data.get("bill_no"), data.get("patient_id")
        items = data.get("items")
        for value in (bill_no, patient_id):
            if not isinstance(value, str) or not 1 <= len(value) <= 64:
                raise _Problem(400, "invalid_request", "bill_no and patient_id are 1 to 64 characters")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise _Problem(400, "invalid_request", "items must be a list of objects")
        try:
            checked = normalize_items(
                BillItem(i.get("item_class"), i.get("amount_fen"), str(i.get("name", ""))) for i in items)
            fingerprint = (patient_id, data.get("insurance_type"), checked)
            active = self._records.get(self._active_by_bill.get(bill_no, ""))
            if active is not None:
                if active.fingerprint != fingerprint:
                    raise _Problem(409, "bill_conflict", "this bill was pre-settled with other items")
                return 200, active.as_json()
            ytd = self._ytd.get(patient_id, YearToDate())
            result = settle(checked, insurance_type=data.get("insurance_type"), policy=self.policy,
                            year_to_date=ytd)
        except InsuranceInputError as exc:
            raise _Problem(400, exc.code, exc.message) from exc
        record = _Record(settlement_id="INS" + secrets.token_hex(12), bill_no=bill_no, patient_id=patient_id,
                         fingerprint=fingerprint, settlement=result, created_at=self.now())
        self._records[record.settlement_id] = record
        self._active_by_bill[bill_no] = record.settlement_id
        self._ytd[patient_id] = result.year_to_date_after  # reserved until settled or reversed
        return 201, record.as_json()

    def _release(self, record: _Record, *, reason: str) -> None:
        ytd = self._ytd.get(record.patient_id, YearToDate())
        s = record.settlement
        self._ytd[record.patient_id] = YearToDate(
            deductible_met_fen=max(0, ytd.deductible_met_fen - s.deductible_fen),
            insurance_paid_fen=max(0, ytd.insurance_paid_fen - s.insurance_fen))
        record.status, record.reason = "reversed", reason
        if self._active_by_bill.get(record.bill_no) == record.settlement_id:
            del self._active_by_bill[record.bill_no]

    def _expire(self) -> None:
        deadline = self.now() - self.pending_ttl_seconds
        for record in self._records.values():
            if record.status == "pending" and record.created_at < deadline:
                self._release(record, reason="expired")
