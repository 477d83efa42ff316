"""The sandbox payment provider's server: a separate HTTP service that behaves like a real one.

Development only (`portal.dev`): `make run` starts it with
`python -m portal.dev.sandbox_pay --port 8001 --data-dir .run/sandbox`, and tests start their
own. It uses no Django and keeps its own state (SQLite), so the platform talks to it exactly as
it would to a real provider: over HTTP, with signatures both ways. The protocol (signatures,
callbacks, endpoints, the statement CSV) is written down, and its shared parts implemented, in
`payments/providers/sandbox_protocol.py`, next to the adapter that hospitals use.

Test hooks (only with --test-hooks): POST /_test/pay {"mchid", "out_trade_no", optional
"amount", "currency", "deliver"}: pays without a browser (amount/currency overrides simulate a
provider-side mismatch); POST /_test/replay {"notification_id"}: sends a delivered
notification again; POST /_test/config {"retry_delays": [...]}; GET /_test/deliveries.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import json
import os
import secrets
import sqlite3
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from payments.providers.sandbox_protocol import (
    CLOCK_SKEW_SECONDS,
    CST,
    STATEMENT_COLUMNS,
    callback_message,
    merchant_key,
    parse_authorization,
    request_signature,
)
from portal.dev.http import DevService, Request, Response, serve_cli

DEFAULT_RETRY_DELAYS = [2, 5, 15, 30, 60, 300]


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(dt: datetime) -> str:
    return dt.astimezone(CST).isoformat(timespec="seconds")


SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    mchid TEXT, out_trade_no TEXT, prepay_id TEXT UNIQUE, transaction_id TEXT,
    description TEXT, amount INTEGER, currency TEXT, notify_url TEXT, return_url TEXT,
    time_expire TEXT, state TEXT, paid_amount INTEGER, paid_currency TEXT, success_time TEXT,
    refunded INTEGER DEFAULT 0, created_at TEXT, PRIMARY KEY (mchid, out_trade_no));
CREATE TABLE IF NOT EXISTS refunds (
    mchid TEXT, out_refund_no TEXT, out_trade_no TEXT, refund_id TEXT, amount INTEGER,
    total INTEGER, reason TEXT, notify_url TEXT, status TEXT, success_time TEXT,
    PRIMARY KEY (mchid, out_refund_no));
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY, url TEXT, body TEXT, attempts INTEGER DEFAULT 0, next_at REAL,
    delivered_at REAL, last_status TEXT);
"""


class Sandbox(DevService):
    poll_interval = 0.05

    def __init__(self, data_dir: Path, master_secret: str, test_hooks: bool = False,
                 public_url: str = "") -> None:
        super().__init__()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.master_secret = master_secret
        self.test_hooks = test_hooks
        self.retry_delays = list(DEFAULT_RETRY_DELAYS)
        self.lock = threading.RLock()
        self.db = sqlite3.connect(data_dir / "sandbox.sqlite3", check_same_thread=False,
                                  isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)
        key_path = data_dir / "provider_key.pem"
        if not key_path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key_path.write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
        self.key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        public_pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public_pem = public_pem.decode()
        self.serial = hashlib.sha256(public_pem).hexdigest()[:16].upper()
        self.public_url = public_url
        self.base_url = ""  # what browsers use for the cashier; known once the port is bound
        self._stop = threading.Event()
        threading.Thread(target=self._deliver_loop, name="sandbox-callbacks", daemon=True).start()

    def started(self) -> None:
        self.base_url = self.public_url or f"http://localhost:{self.port}"

    def stop(self) -> None:
        self._stop.set()
        super().stop()

    # ------------------------------------------------------------------ helpers
    def q(self, sql: str, *params):
        with self.lock:
            return self.db.execute(sql, params).fetchall()

    def sign_callback(self, body: bytes) -> dict[str, str]:
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        signature = self.key.sign(callback_message(ts, nonce, body), padding.PKCS1v15(),
                                  hashes.SHA256())
        return {"Sandbox-Timestamp": ts, "Sandbox-Nonce": nonce, "Sandbox-Serial": self.serial,
                "Sandbox-Signature": base64.b64encode(signature).decode()}

    def enqueue(self, url: str, event_type: str, resource: dict) -> str:
        nid = str(uuid.uuid4())
        body = json.dumps({"id": nid, "event_type": event_type, "create_time": _iso(_now()),
                           "resource": resource}, ensure_ascii=False)
        self.q("INSERT INTO deliveries (id, url, body, next_at) VALUES (?, ?, ?, ?)",
               nid, url, body, time.time())
        return nid

    def _deliver_loop(self) -> None:
        while not self._stop.wait(0.2):
            due = self.q("SELECT * FROM deliveries WHERE delivered_at IS NULL AND next_at <= ? "
                         "ORDER BY next_at LIMIT 20", time.time())
            for row in due:
                self._deliver(row)

    def _deliver(self, row) -> None:
        body = row["body"].encode()
        url, extra = _loopback_for_localhost(row["url"])
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", **self.sign_callback(body), **extra})
        status = "error"
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = str(response.status)
                ok = 200 <= response.status < 300
        except urllib.error.HTTPError as exc:
            status, ok = str(exc.code), False
        except Exception as exc:  # connection refused, timeout: retried later
            status, ok = exc.__class__.__name__, False
        attempts = row["attempts"] + 1
        if ok:
            self.q("UPDATE deliveries SET attempts=?, delivered_at=?, last_status=? WHERE id=?",
                   attempts, time.time(), status, row["id"])
        else:
            delays = self.retry_delays
            if attempts > len(delays):
                self.q("UPDATE deliveries SET attempts=?, next_at=?, last_status=? WHERE id=?",
                       attempts, float("inf"), f"gave up: {status}", row["id"])
            else:
                self.q("UPDATE deliveries SET attempts=?, next_at=?, last_status=? WHERE id=?",
                       attempts, time.time() + delays[attempts - 1], status, row["id"])

    def pay(self, order, amount: int | None = None, currency: str | None = None) -> None:
        """Mark an order paid and queue its TRANSACTION.SUCCESS notification."""
        if order["state"] != "NOTPAY":
            return
        txn = "SBX" + _now().strftime("%Y%m%d") + secrets.token_hex(10).upper()
        paid = order["amount"] if amount is None else amount
        cur = currency or order["currency"]
        when = _iso(_now())
        self.q("UPDATE orders SET state='SUCCESS', transaction_id=?, paid_amount=?, "
               "paid_currency=?, success_time=? WHERE mchid=? AND out_trade_no=?",
               txn, paid, cur, when, order["mchid"], order["out_trade_no"])
        self.enqueue(order["notify_url"], "TRANSACTION.SUCCESS", {
            "mchid": order["mchid"], "out_trade_no": order["out_trade_no"],
            "transaction_id": txn, "trade_state": "SUCCESS", "success_time": when,
            "amount": {"total": order["amount"], "payer_total": paid, "currency": cur}})

    def order(self, mchid: str, out_trade_no: str):
        rows = self.q("SELECT * FROM orders WHERE mchid=? AND out_trade_no=?", mchid, out_trade_no)
        return rows[0] if rows else None

    def order_json(self, row) -> dict:
        return {"mchid": row["mchid"], "out_trade_no": row["out_trade_no"],
                "transaction_id": row["transaction_id"] or "", "trade_state": row["state"],
                "success_time": row["success_time"] or "",
                "amount": {"total": row["amount"], "payer_total": row["paid_amount"] or 0,
                           "currency": row["paid_currency"] or row["currency"]}}

    def statement(self, mchid: str, day: str) -> str:
        start = datetime.fromisoformat(day).replace(tzinfo=CST)
        end = start + timedelta(days=1)
        lines = [",".join(STATEMENT_COLUMNS)]
        pay_total = refund_total = 0
        rows = self.q("SELECT * FROM orders WHERE mchid=? AND success_time IS NOT NULL "
                      "ORDER BY success_time", mchid)
        for r in rows:
            t = datetime.fromisoformat(r["success_time"])
            if start <= t < end:
                pay_total += r["paid_amount"]
                lines.append(f"{t:%Y-%m-%d %H:%M:%S},{r['out_trade_no']},{r['transaction_id']},"
                             f"PAY,SUCCESS,{r['paid_amount']},{r['paid_currency']},,")
        for r in self.q("SELECT f.*, o.transaction_id AS txn, o.currency AS cur FROM refunds f "
                        "JOIN orders o ON o.mchid=f.mchid AND o.out_trade_no=f.out_trade_no "
                        "WHERE f.mchid=? AND f.status='SUCCESS' ORDER BY f.success_time", mchid):
            t = datetime.fromisoformat(r["success_time"])
            if start <= t < end:
                refund_total += r["amount"]
                lines.append(f"{t:%Y-%m-%d %H:%M:%S},{r['out_trade_no']},{r['txn']},REFUND,"
                             f"SUCCESS,{r['amount']},{r['cur']},{r['out_refund_no']},{r['refund_id']}")
        lines.append(f"# total_count={len(lines) - 1},pay_total_fen={pay_total},"
                     f"refund_total_fen={refund_total}")
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ HTTP
    def handle(self, request: Request) -> Response:
        path, query = request.path, request.query_string
        try:
            status, headers, payload = self.route(request.method, path, query, request.body,
                                                  request.headers)
        except ApiError as exc:
            status, headers, payload = exc.status, [], {"code": exc.code, "message": exc.message}
        if isinstance(payload, (dict, list)):
            data = json.dumps(payload, ensure_ascii=False).encode()
            headers = [("Content-Type", "application/json; charset=utf-8"), *headers]
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            data = payload
        # Statuses are written "404 Not Found" here; the reason phrase is the standard one.
        return Response(int(status.split()[0]), data,
                        [*headers, ("Content-Length", str(len(data)))])

    def authenticate(self, method: str, path: str, query: str, body: bytes, headers) -> str:
        try:
            fields = parse_authorization(headers.get("Authorization", ""))
        except ValueError:
            raise ApiError("401 Unauthorized", "SIGN_ERROR", "malformed Authorization") from None
        if fields is None:
            raise ApiError("401 Unauthorized", "SIGN_ERROR", "missing Authorization")
        try:
            mchid, ts, nonce, sig = (fields["mchid"], fields["timestamp"], fields["nonce"],
                                     fields["signature"])
        except KeyError:
            raise ApiError("401 Unauthorized", "SIGN_ERROR", "malformed Authorization") from None
        if not ts.isdigit() or abs(time.time() - int(ts)) > CLOCK_SKEW_SECONDS:
            raise ApiError("401 Unauthorized", "SIGN_ERROR", "timestamp out of range")
        full_path = path + (f"?{query}" if query else "")
        expected = request_signature(merchant_key(self.master_secret, mchid), method, full_path,
                                     ts, nonce, body)
        if not hmac.compare_digest(expected, sig):
            raise ApiError("401 Unauthorized", "SIGN_ERROR", "signature does not verify")
        return mchid

    def route(self, method, path, query, body, headers):
        params = {k: v[0] for k, v in parse_qs(query).items()}
        if path == "/v1/certificates" and method == "GET":
            return "200 OK", [], {"serial_no": self.serial, "public_key": self.public_pem}
        if path.startswith("/cashier/"):
            return self.cashier(method, path[len("/cashier/"):], body)
        if path.startswith("/_test/"):
            if not self.test_hooks:
                raise ApiError("404 Not Found", "NOT_FOUND", "no such endpoint")
            return self.test_hook(method, path, json.loads(body or b"{}"))
        if not path.startswith("/v1/"):
            raise ApiError("404 Not Found", "NOT_FOUND", "no such endpoint")
        mchid = self.authenticate(method, path, query, body, headers)
        data = json.loads(body) if body else {}
        if path == "/v1/pay/transactions" and method == "POST":
            return self.create(mchid, data)
        if path.startswith("/v1/pay/transactions/out-trade-no/"):
            rest = path[len("/v1/pay/transactions/out-trade-no/"):]
            if rest.endswith("/close") and method == "POST":
                row = self.order(mchid, rest[:-len("/close")])
                if row is None:
                    raise ApiError("404 Not Found", "ORDER_NOT_EXIST", "no such order")
                if row["state"] == "SUCCESS":
                    raise ApiError("400 Bad Request", "ORDERPAID", "order already paid")
                self.q("UPDATE orders SET state='CLOSED' WHERE mchid=? AND out_trade_no=? "
                       "AND state='NOTPAY'", mchid, row["out_trade_no"])
                return "204 No Content", [], b""
            row = self.order(mchid, rest)
            if row is None:
                raise ApiError("404 Not Found", "ORDER_NOT_EXIST", "no such order")
            return "200 OK", [], self.order_json(row)
        if path == "/v1/refunds" and method == "POST":
            return self.refund(mchid, data)
        if path.startswith("/v1/refunds/") and method == "GET":
            rows = self.q("SELECT * FROM refunds WHERE mchid=? AND out_refund_no=?", mchid,
                          path[len("/v1/refunds/"):])
            if not rows:
                raise ApiError("404 Not Found", "RESOURCE_NOT_EXISTS", "no such refund")
            return "200 OK", [], self.refund_json(rows[0])
        if path == "/v1/bills" and method == "GET":
            day = params.get("bill_date", "")
            try:
                datetime.fromisoformat(day)
            except ValueError:
                raise ApiError("400 Bad Request", "PARAM_ERROR", "bill_date=YYYY-MM-DD") from None
            return "200 OK", [("Content-Type", "text/csv; charset=utf-8")], self.statement(mchid, day)
        raise ApiError("404 Not Found", "NOT_FOUND", "no such endpoint")

    def create(self, mchid: str, data: dict):
        try:
            out_trade_no = str(data["out_trade_no"])
            amount = data["amount"]["total"]
            currency = data["amount"].get("currency", "CNY")
            notify_url, return_url = data["notify_url"], data.get("return_url", "")
            description, time_expire = data["description"], data.get("time_expire", "")
        except (KeyError, TypeError):
            raise ApiError("400 Bad Request", "PARAM_ERROR", "missing fields") from None
        if not isinstance(amount, int) or amount <= 0 or not (6 <= len(out_trade_no) <= 32):
            raise ApiError("400 Bad Request", "PARAM_ERROR", "bad amount or out_trade_no")
        existing = self.order(mchid, out_trade_no)
        if existing is not None:
            if existing["amount"] != amount or existing["state"] == "CLOSED":
                raise ApiError("400 Bad Request", "OUT_TRADE_NO_USED", "out_trade_no reused")
            prepay_id = existing["prepay_id"]
        else:
            prepay_id = "sbxprepay_" + secrets.token_hex(12)
            self.q("INSERT INTO orders (mchid, out_trade_no, prepay_id, description, amount, "
                   "currency, notify_url, return_url, time_expire, state, created_at) VALUES "
                   "(?, ?, ?, ?, ?, ?, ?, ?, ?, 'NOTPAY', ?)", mchid, out_trade_no, prepay_id,
                   description, amount, currency, notify_url, return_url, time_expire,
                   _iso(_now()))
        return "200 OK", [], {"prepay_id": prepay_id,
                              "cashier_url": f"{self.base_url}/cashier/{prepay_id}"}

    def refund_json(self, row) -> dict:
        return {"out_refund_no": row["out_refund_no"], "refund_id": row["refund_id"],
                "out_trade_no": row["out_trade_no"], "status": row["status"],
                "success_time": row["success_time"] or "",
                "amount": {"refund": row["amount"], "total": row["total"], "currency": "CNY"}}

    def refund(self, mchid: str, data: dict):
        try:
            out_trade_no, out_refund_no = str(data["out_trade_no"]), str(data["out_refund_no"])
            amount, total = int(data["amount"]["refund"]), int(data["amount"]["total"])
        except (KeyError, TypeError, ValueError):
            raise ApiError("400 Bad Request", "PARAM_ERROR", "missing fields") from None
        with self.lock:
            existing = self.q("SELECT * FROM refunds WHERE mchid=? AND out_refund_no=?", mchid,
                              out_refund_no)
            if existing:  # idempotent on out_refund_no
                return "200 OK", [], self.refund_json(existing[0])
            order = self.order(mchid, out_trade_no)
            if order is None or order["state"] not in ("SUCCESS", "REFUND"):
                raise ApiError("400 Bad Request", "INVALID_REQUEST", "order is not paid")
            if amount <= 0 or total != order["amount"] or \
                    order["refunded"] + amount > order["paid_amount"]:
                raise ApiError("400 Bad Request", "INVALID_REQUEST", "refund exceeds payment")
            refund_id = "SBR" + secrets.token_hex(10).upper()
            when = _iso(_now())
            self.q("INSERT INTO refunds VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'SUCCESS', ?)", mchid,
                   out_refund_no, out_trade_no, refund_id, amount, total,
                   data.get("reason", ""), data.get("notify_url", ""), when)
            self.q("UPDATE orders SET refunded = refunded + ?, state='REFUND' WHERE mchid=? AND "
                   "out_trade_no=?", amount, mchid, out_trade_no)
            row = self.q("SELECT * FROM refunds WHERE mchid=? AND out_refund_no=?", mchid,
                         out_refund_no)[0]
        if data.get("notify_url"):
            self.enqueue(data["notify_url"], "REFUND.SUCCESS", {
                "mchid": mchid, "out_trade_no": out_trade_no, "out_refund_no": out_refund_no,
                "transaction_id": order["transaction_id"], "refund_id": refund_id,
                "refund_status": "SUCCESS", "success_time": when,
                "amount": {"refund": amount, "total": total, "currency": "CNY"}})
        # Like real providers, the synchronous answer says "processing"; the callback confirms.
        return "200 OK", [], {**self.refund_json(row), "status": "PROCESSING"}

    def cashier(self, method: str, prepay_id: str, body: bytes):
        rows = self.q("SELECT * FROM orders WHERE prepay_id=?", prepay_id)
        if not rows:
            raise ApiError("404 Not Found", "NOT_FOUND", "no such payment")
        order = rows[0]
        expired = bool(order["time_expire"]) and \
            datetime.fromisoformat(order["time_expire"]) < _now()
        if method == "POST":
            action = parse_qs(body.decode()).get("action", [""])[0]
            if action == "pay" and order["state"] == "NOTPAY" and not expired:
                self.pay(order)
                result = "paid"
            elif action == "decline":
                result = "declined"
            else:
                result = "abandoned" if order["state"] == "NOTPAY" else order["state"].lower()
            back = order["return_url"]
            if back:
                sep = "&" if "?" in back else "?"
                return "303 See Other", [("Location", f"{back}{sep}result={result}")], b""
            return "200 OK", [("Content-Type", "text/html; charset=utf-8")], \
                f"<p>{html.escape(result)}</p>"
        yuan = f"{order['amount'] // 100}.{order['amount'] % 100:02d}"
        state = order["state"]
        can_pay = state == "NOTPAY" and not expired
        page = f"""<!doctype html><html lang="zh-hans"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>沙箱收银台 Sandbox cashier</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;
color:#1a2b33}}.amount{{font-size:2.2rem;font-weight:700}}button{{display:block;width:100%;
min-height:48px;margin:.6rem 0;font-size:1.05rem;border-radius:8px;border:1px solid #0b6e74}}
.pay{{background:#0b6e74;color:#fff}}.note{{color:#4a5a63;font-size:.9rem}}</style></head>
<body><p class="note">沙箱支付 · Sandbox payment provider (no real money)</p>
<h1>{html.escape(order['description'])}</h1>
<p class="amount" id="amount">¥{yuan}</p>
<p class="note">订单号 Order {html.escape(order['out_trade_no'])} · 状态 {html.escape(state)}
{' · 已过期 expired' if expired else ''}</p>
<form method="post">
{'<button class="pay" name="action" value="pay">确认支付 Pay</button>' if can_pay else ''}
<button name="action" value="decline">拒绝支付 Decline</button>
<button name="action" value="abandon">放弃 Abandon</button>
</form></body></html>"""
        return "200 OK", [("Content-Type", "text/html; charset=utf-8")], page

    def test_hook(self, method: str, path: str, data: dict):
        if path == "/_test/pay":
            order = self.order(data["mchid"], data["out_trade_no"])
            if order is None:
                raise ApiError("404 Not Found", "ORDER_NOT_EXIST", "no such order")
            self.pay(order, amount=data.get("amount"), currency=data.get("currency"))
            return "200 OK", [], self.order_json(self.order(data["mchid"], data["out_trade_no"]))
        if path == "/_test/replay":
            self.q("UPDATE deliveries SET delivered_at=NULL, next_at=? WHERE id=?", time.time(),
                   data["notification_id"])
            return "200 OK", [], {"ok": True}
        if path == "/_test/config":
            if "retry_delays" in data:
                self.retry_delays = [float(x) for x in data["retry_delays"]]
            return "200 OK", [], {"retry_delays": self.retry_delays}
        if path == "/_test/deliveries":
            rows = self.q("SELECT id, url, body, attempts, delivered_at, last_status FROM "
                          "deliveries ORDER BY rowid")
            return "200 OK", [], [dict(r) | {"body": json.loads(r["body"])} for r in rows]
        raise ApiError("404 Not Found", "NOT_FOUND", "no such hook")


def _loopback_for_localhost(url: str) -> tuple[str, dict[str, str]]:
    """*.localhost names are this machine (RFC 6761), but Python's resolver does not know
    that: connect to 127.0.0.1 and send the original host in the Host header."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host == "localhost" or not host.endswith(".localhost"):
        return url, {}
    netloc = "127.0.0.1" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl(), {"Host": parts.netloc}


class ApiError(Exception):
    def __init__(self, status: str, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message


def main(argv: list[str] | None = None) -> int:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--data-dir", default=".run/sandbox")
        parser.add_argument("--public-url", default="",
                            help="base URL browsers use for the cashier")
        parser.add_argument("--test-hooks", action="store_true")

    secret = os.environ.get("SANDBOX_PAY_MASTER_SECRET", "sandbox-master-secret-dev-only")
    return serve_cli(
        lambda args: Sandbox(Path(args.data_dir), secret, test_hooks=args.test_hooks,
                             public_url=args.public_url),
        description="Sandbox payment provider", default_port=8001,
        banner="sandbox payment provider on {url}/", add_arguments=add_arguments, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
