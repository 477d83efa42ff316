"""The sandbox payment provider's protocol (version 1): what the adapter and the server share.

The adapter (`payments/providers/sandbox.py`) speaks it to the provider; the development
server that plays the provider (`portal/dev/sandbox_pay.py`, not shipped) imports it from here,
so the two cannot drift. Nothing here does I/O.

Merchant → sandbox requests carry

    Authorization: SANDBOX-HMAC-SHA256 mchid="M",timestamp="T",nonce="N",signature="S"

where S = hex(HMAC-SHA256(api_key, METHOD + "\\n" + PATH_WITH_QUERY + "\\n" + T + "\\n" + N +
"\\n" + BODY + "\\n")). A merchant's api_key is hex(HMAC-SHA256(master_secret, mchid)): the
sandbox "onboards" any merchant whose key matches. Bad signature → 401 {"code": "SIGN_ERROR"};
a timestamp more than 5 minutes off → 401 too.

Sandbox → merchant callbacks are POSTed to the order's notify_url as JSON, signed with the
sandbox's own RSA key (published at GET /v1/certificates):

    Sandbox-Timestamp: T      Sandbox-Nonce: N      Sandbox-Serial: <key id>
    Sandbox-Signature: base64(RSA-PKCS1v15-SHA256(T + "\\n" + N + "\\n" + BODY + "\\n"))

    {"id": "<notification id>", "event_type": "TRANSACTION.SUCCESS" | "REFUND.SUCCESS"
            | "REFUND.ABNORMAL", "create_time": ISO-8601,
     "resource": {"mchid", "out_trade_no", "transaction_id", "trade_state",
                  "amount": {"total", "payer_total", "currency"}, "success_time",
                  (refunds:) "out_refund_no", "refund_id", "refund_status",
                  "amount": {"refund", "total", "currency"}}}

The merchant answers 200 {"code": "SUCCESS"}; anything else (or no answer) is retried with
backoff (by default after 2, 5, 15, 30, 60, 300 s). The same notification may arrive more
than once: merchants must be idempotent on "id".

Endpoints: POST /v1/pay/transactions; GET /v1/pay/transactions/out-trade-no/{no};
POST /v1/pay/transactions/out-trade-no/{no}/close; POST /v1/refunds;
GET /v1/refunds/{out_refund_no}; GET /v1/bills?bill_date=YYYY-MM-DD (the statement CSV below);
GET /v1/certificates; the cashier page GET/POST /cashier/{prepay_id} (pay / decline /
abandon). Amounts are integer fen.

Statement (bill) CSV, UTF-8, one file per merchant per day in Asia/Shanghai time:

    trade_time,out_trade_no,transaction_id,type,state,amount_fen,currency,out_refund_no,refund_id
    2026-11-22 09:12:01,H2611220912AB12CD,SBX4200...,PAY,SUCCESS,5000,CNY,,
    2026-11-22 15:40:10,H2611220912AB12CD,SBX4200...,REFUND,SUCCESS,2000,CNY,R1a2b...,SBR77...
    # total_count=2,pay_total_fen=5000,refund_total_fen=2000
"""

from __future__ import annotations

import hashlib
import hmac
from zoneinfo import ZoneInfo

# The provider's business day (statements) and its timestamps are in Beijing time.
CST = ZoneInfo("Asia/Shanghai")

# How far a request's or a callback's timestamp may be from now, both ways.
CLOCK_SKEW_SECONDS = 300

AUTH_SCHEME = "SANDBOX-HMAC-SHA256"

STATEMENT_COLUMNS = ("trade_time", "out_trade_no", "transaction_id", "type", "state",
                     "amount_fen", "currency", "out_refund_no", "refund_id")


def merchant_key(master_secret: str, mchid: str) -> str:
    """The API key the sandbox accepts from merchant `mchid`."""
    return hmac.new(master_secret.encode(), mchid.encode(), hashlib.sha256).hexdigest()


def request_signature(api_key: str, method: str, path: str, timestamp: str, nonce: str,
                      body: bytes) -> str:
    """S of a merchant request; `path` includes the query string."""
    message = f"{method}\n{path}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"
    return hmac.new(api_key.encode(), message, hashlib.sha256).hexdigest()


def authorization_header(*, mchid: str, timestamp: str, nonce: str, signature: str) -> str:
    return (f'{AUTH_SCHEME} mchid="{mchid}",timestamp="{timestamp}",nonce="{nonce}",'
            f'signature="{signature}"')


def parse_authorization(header: str) -> dict[str, str] | None:
    """The fields of an Authorization header, or None if it is not this scheme.

    Raises ValueError when a field is not `name="value"`."""
    if not header.startswith(AUTH_SCHEME + " "):
        return None
    fields = dict(part.split("=", 1) for part in header[len(AUTH_SCHEME) + 1:].split(","))
    return {k.strip(): v.strip().strip('"') for k, v in fields.items()}


def callback_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What the sandbox's RSA key signs for a callback (Sandbox-Signature)."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
