"""Adapter for the built-in sandbox provider (protocol in `sandbox_protocol.py`).

Hospitals use the sandbox mode for training; in development `make run` starts a server that
plays the provider (`portal/dev/sandbox_pay.py`, not shipped)."""

from __future__ import annotations

import base64
import csv
import io
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from datetime import date, datetime

from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from .base import (
    CallbackAck,
    InvalidSignature,
    Notice,
    OrderStatus,
    PaymentProvider,
    PaymentRequest,
    PaymentStart,
    ProviderError,
    RefundResult,
    StatementLine,
    StatementMalformed,
)
from .sandbox_protocol import (
    CLOCK_SKEW_SECONDS,
    CST,
    STATEMENT_COLUMNS,
    authorization_header,
    callback_message,
    request_signature,
)

_public_keys: dict[str, tuple[str, object]] = {}
_keys_lock = threading.Lock()

_TRADE_STATES = {"NOTPAY": "created", "SUCCESS": "paid", "CLOSED": "closed", "REFUND": "refunded",
                 "PAYERROR": "created"}


class SandboxProvider(PaymentProvider):
    name = "sandbox"

    def __init__(self, *, base_url: str, mchid: str, api_key: str, timeout: float = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self.mchid = mchid
        self.api_key = api_key
        self.timeout = timeout

    # ----------------------------------------------------------------- transport
    def _call(self, method: str, path: str, payload: dict | None = None) -> tuple[int, bytes]:
        body = json.dumps(payload, ensure_ascii=False).encode() if payload is not None else b""
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        sig = request_signature(self.api_key, method, path, ts, nonce, body)
        headers = {"Authorization": authorization_header(mchid=self.mchid, timestamp=ts,
                                                         nonce=nonce, signature=sig),
                   "Content-Type": "application/json", "Accept": "application/json"}
        request = urllib.request.Request(self.base_url + path, data=body or None, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise ProviderError(details={"reason": str(exc)}) from exc

    def _json(self, method: str, path: str, payload: dict | None = None,
              ok: tuple[int, ...] = (200,)) -> dict:
        status, body = self._call(method, path, payload)
        data = json.loads(body) if body else {}
        if status not in ok:
            raise ProviderError(f"{data.get('code', status)}: {data.get('message', '')}",
                                details={"status": status, "provider_code": data.get("code")})
        return data

    def _public_key(self):
        with _keys_lock:
            cached = _public_keys.get(self.base_url)
        if cached is None:
            status, body = self._call("GET", "/v1/certificates")
            if status != 200:
                raise ProviderError(details={"status": status})
            data = json.loads(body)
            cached = (data["serial_no"], serialization.load_pem_public_key(data["public_key"].encode()))
            with _keys_lock:
                _public_keys[self.base_url] = cached
        return cached

    # ----------------------------------------------------------------- interface
    def create_payment(self, request: PaymentRequest) -> PaymentStart:
        data = self._json("POST", "/v1/pay/transactions", {
            "mchid": self.mchid, "out_trade_no": request.out_trade_no,
            "description": request.description[:127],
            "amount": {"total": request.amount_fen, "currency": "CNY"},
            "notify_url": request.notify_url, "return_url": request.return_url,
            "time_expire": request.expires_at.isoformat(timespec="seconds"),
        })
        return PaymentStart(cashier_url=data["cashier_url"], prepay={"prepay_id": data["prepay_id"]})

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Notice:
        h = {k.lower(): v for k, v in headers.items()}
        try:
            ts, nonce = h["sandbox-timestamp"], h["sandbox-nonce"]
            signature = base64.b64decode(h["sandbox-signature"], validate=True)
            serial = h["sandbox-serial"]
        except (KeyError, ValueError) as exc:
            raise InvalidSignature("missing or malformed signature headers") from exc
        if not ts.isdigit() or abs(time.time() - int(ts)) > CLOCK_SKEW_SECONDS:
            raise InvalidSignature("timestamp outside the replay window")
        known_serial, key = self._public_key()
        if serial != known_serial:
            raise InvalidSignature("unknown provider key")
        try:
            key.verify(signature, callback_message(ts, nonce, body), padding.PKCS1v15(),
                       hashes.SHA256())
        except CryptoInvalidSignature as exc:
            raise InvalidSignature("signature does not verify") from exc
        try:
            data = json.loads(body)
            resource = data["resource"]
            event = data["event_type"]
            when = resource.get("success_time")
            occurred = datetime.fromisoformat(when) if when else None
            if event.startswith("REFUND."):
                return Notice(
                    notification_id=data["id"], kind="refund",
                    out_trade_no=resource["out_trade_no"],
                    status="succeeded" if resource.get("refund_status") == "SUCCESS" else "failed",
                    amount_fen=int(resource["amount"]["refund"]),
                    currency=resource["amount"].get("currency", "CNY"),
                    provider_txn_id=resource.get("transaction_id", ""), occurred_at=occurred,
                    out_refund_no=resource["out_refund_no"],
                    provider_refund_id=resource.get("refund_id", ""), raw=data)
            return Notice(
                notification_id=data["id"], kind="payment", out_trade_no=resource["out_trade_no"],
                status=_TRADE_STATES.get(resource["trade_state"], "failed"),
                amount_fen=int(resource["amount"]["payer_total"]),
                currency=resource["amount"].get("currency", "CNY"),
                provider_txn_id=resource.get("transaction_id", ""), occurred_at=occurred, raw=data)
        except (KeyError, TypeError, ValueError) as exc:
            # Signed but unreadable: treat as forged rather than guess.
            raise InvalidSignature("signed body is not a valid notification") from exc

    def ack(self, ok: bool, message: str = "") -> CallbackAck:
        if ok:
            return CallbackAck(200, b'{"code": "SUCCESS"}')
        return CallbackAck(500, json.dumps({"code": "FAIL", "message": message}).encode())

    def query_order(self, out_trade_no: str) -> OrderStatus:
        status, body = self._call("GET", f"/v1/pay/transactions/out-trade-no/{out_trade_no}")
        if status == 404:
            return OrderStatus(out_trade_no=out_trade_no, status="not_found")
        if status != 200:
            raise ProviderError(details={"status": status})
        data = json.loads(body)
        when = data.get("success_time")
        return OrderStatus(out_trade_no=out_trade_no,
                           status=_TRADE_STATES.get(data["trade_state"], "created"),
                           amount_fen=int(data["amount"]["payer_total"] or 0),
                           provider_txn_id=data.get("transaction_id", ""),
                           paid_at=datetime.fromisoformat(when) if when else None)

    def close_order(self, out_trade_no: str) -> None:
        status, body = self._call("POST", f"/v1/pay/transactions/out-trade-no/{out_trade_no}/close")
        if status not in (204, 404):
            data = json.loads(body or b"{}")
            raise ProviderError(f"{data.get('code')}: {data.get('message')}",
                                details={"provider_code": data.get("code")})

    def refund(self, *, out_trade_no: str, out_refund_no: str, amount_fen: int, total_fen: int,
               reason: str, notify_url: str) -> RefundResult:
        status, body = self._call("POST", "/v1/refunds", {
            "out_trade_no": out_trade_no, "out_refund_no": out_refund_no, "reason": reason[:80],
            "notify_url": notify_url,
            "amount": {"refund": amount_fen, "total": total_fen, "currency": "CNY"}})
        data = json.loads(body or b"{}")
        if status != 200:
            return RefundResult(out_refund_no=out_refund_no, status="failed",
                                failure_reason=f"{data.get('code')}: {data.get('message')}")
        mapped = {"SUCCESS": "succeeded", "PROCESSING": "pending"}.get(data["status"], "failed")
        return RefundResult(out_refund_no=out_refund_no, status=mapped,
                            provider_refund_id=data.get("refund_id", ""))

    def fetch_statement(self, day: date) -> Iterator[StatementLine]:
        status, body = self._call("GET", f"/v1/bills?bill_date={day.isoformat()}")
        if status != 200:
            raise ProviderError(details={"status": status})
        yield from parse_statement(io.StringIO(body.decode("utf-8")))


def parse_statement(stream) -> Iterator[StatementLine]:
    """Parse the sandbox's statement CSV (format in sandbox_protocol.py), streaming."""
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None or not header or header[0] != STATEMENT_COLUMNS[0]:
        raise StatementMalformed("statement has no header line")
    for row in reader:
        if not row or row[0].startswith("#"):
            continue
        if len(row) != len(STATEMENT_COLUMNS):
            raise StatementMalformed(f"statement line {reader.line_num} has {len(row)} fields, "
                                     "not 9")
        trade_time, out_trade_no, txn, kind, _state, amount, _cur, out_refund_no, _rid = row
        if len(trade_time) != 19 or trade_time[10] != " " or not amount.isdigit():
            raise StatementMalformed(f"statement line {reader.line_num} is malformed: "
                                     f"time {trade_time!r}, amount {amount!r}")
        yield StatementLine(
            # fromisoformat is several times faster than strptime (a million lines a night)
            occurred_at=datetime.fromisoformat(trade_time).replace(tzinfo=CST),
            out_trade_no=out_trade_no, provider_txn_id=txn,
            kind="refund" if kind == "REFUND" else "payment",
            status="refunded" if kind == "REFUND" else "paid",
            amount_fen=int(amount), out_refund_no=out_refund_no)
