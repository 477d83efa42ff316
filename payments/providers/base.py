"""The one interface every payment provider adapter implements.

Adapters speak their provider's protocol (signing, verification, encryption) and hand the
rest of the app plain values in fen. Services never see provider-specific shapes.

Canonical statement lines (what `fetch_statement` yields, whatever the provider's own bill
format) are `StatementLine`s; reconciliation loads them with COPY.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from portal.errors import DomainError


class InvalidSignature(Exception):
    """A callback whose signature, timestamp or encryption does not verify: reject it (401)."""


class ProviderError(DomainError):
    code = "provider_error"
    default_message = "The payment provider could not be reached. Please try again."


class StatementMalformed(ProviderError):
    """The provider answered, but its statement (bill) file cannot be read as one."""

    code = "statement_malformed"
    default_message = "The provider's statement could not be read."


@dataclass(frozen=True)
class PaymentRequest:
    out_trade_no: str
    amount_fen: int
    description: str
    notify_url: str
    return_url: str
    expires_at: datetime
    payer_ref: str = ""  # e.g. a WeChat openid for JSAPI payments


@dataclass(frozen=True)
class PaymentStart:
    """Where to send the patient: a cashier page, and/or data for an in-app payment sheet."""

    cashier_url: str | None
    prepay: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Notice:
    """A verified, decoded callback."""

    notification_id: str
    kind: str  # "payment" or "refund"
    out_trade_no: str
    status: str  # payment: "paid" / "failed" / "closed"; refund: "succeeded" / "failed"
    # payment: the order amount the provider confirms as paid (coupons paid by the provider
    # count as paid); refund: the amount refunded
    amount_fen: int
    currency: str
    provider_txn_id: str = ""
    occurred_at: datetime | None = None
    out_refund_no: str = ""
    provider_refund_id: str = ""
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OrderStatus:
    out_trade_no: str
    # "created" / "paid" / "closed" / "refunded" (any refund, partial too) / "not_found"
    status: str
    amount_fen: int = 0
    provider_txn_id: str = ""
    paid_at: datetime | None = None


@dataclass(frozen=True)
class RefundResult:
    out_refund_no: str
    status: str  # "succeeded" / "pending" / "failed"
    provider_refund_id: str = ""
    failure_reason: str = ""


@dataclass(frozen=True)
class StatementLine:
    occurred_at: datetime
    out_trade_no: str
    provider_txn_id: str
    kind: str  # "payment" / "refund"
    status: str  # "paid" / "refunded"
    amount_fen: int
    out_refund_no: str = ""


@dataclass(frozen=True)
class CallbackAck:
    """What the provider expects back from a notify URL."""

    status: int
    body: bytes
    content_type: str = "application/json"


class PaymentProvider(abc.ABC):
    name: str

    @abc.abstractmethod
    def create_payment(self, request: PaymentRequest) -> PaymentStart: ...

    @abc.abstractmethod
    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Notice:
        """Verify and decode a callback; raise InvalidSignature if it does not verify."""

    @abc.abstractmethod
    def ack(self, ok: bool, message: str = "") -> CallbackAck: ...

    @abc.abstractmethod
    def query_order(self, out_trade_no: str) -> OrderStatus: ...

    @abc.abstractmethod
    def close_order(self, out_trade_no: str) -> None: ...

    @abc.abstractmethod
    def refund(self, *, out_trade_no: str, out_refund_no: str, amount_fen: int, total_fen: int,
               reason: str, notify_url: str) -> RefundResult: ...

    @abc.abstractmethod
    def fetch_statement(self, day: date) -> Iterator[StatementLine]:
        """Stream the provider's statement for `day` (provider's time zone), line by line."""
