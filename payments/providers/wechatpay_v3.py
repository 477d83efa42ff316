"""WeChat Pay API v3 adapter (直连商户): Native and JSAPI payments, refunds, trade bills.

Protocol as implemented here (and exercised against tests/payments/fake_wechatpay.py)
------------------------------------------------------------------------------------

Requests, merchant -> WeChat. Every call carries

    Authorization: WECHATPAY2-SHA256-RSA2048 mchid="<mchid>",nonce_str="<32 chars>",
                   signature="<base64>",timestamp="<unix seconds>",serial_no="<merchant cert serial>"

(one line), where signature = base64(RSA-PKCS#1 v1.5-SHA256(merchant private key, message)) and

    message = METHOD "\\n" PATH_AND_QUERY "\\n" TIMESTAMP "\\n" NONCE "\\n" BODY "\\n"

BODY is the exact JSON text sent (empty for GET). PATH_AND_QUERY is taken from the prepared
request (what goes on the request line), so the signature always covers what is sent. Plus
`Accept: application/json`, a `User-Agent` (required by WeChat), `Content-Type:
application/json` with a body, and `Wechatpay-Serial: <PUB_KEY_ID_...>` in platform-public-key
mode (it tells WeChat which key the merchant verifies with).

Responses and callbacks, WeChat -> merchant. Headers

    Wechatpay-Timestamp: <unix seconds>      Wechatpay-Nonce: <random>
    Wechatpay-Serial: <platform certificate serial, hex> | PUB_KEY_ID_<...>
    Wechatpay-Signature: <base64>            Wechatpay-Signature-Type: WECHATPAY2-SHA256-RSA2048

signature over  TIMESTAMP "\\n" NONCE "\\n" BODY "\\n"  with the platform key named by the serial.
Verified here, for every 2xx response and every callback: all four headers present; the
signature type, if sent, is WECHATPAY2-SHA256-RSA2048; the timestamp is within 5 minutes of now
(replay window, both directions); the serial names a key we trust; the RSA signature verifies
over the exact bytes received. Callbacks additionally: `resource_type` is `encrypt-resource`,
`resource.algorithm` is AEAD_AES_256_GCM and the resource decrypts (AES-256-GCM, key = the
32-byte APIv3 key, nonce = `resource.nonce` as bytes, AAD = `resource.associated_data`,
ciphertext = base64(ciphertext || 16-byte tag)); the decrypted `mchid` (and `appid` for
payments) is ours. Anything that fails raises InvalidSignature. The bill file download is the
one response WeChat does not sign; it is checked against `hash_value` (SHA1 of the
decompressed file) from the signed /v3/bill/tradebill answer instead.

Platform keys. Either the platform public key (`platform_public_key` + `platform_public_key_id`,
the mode WeChat gives new merchants), and/or pinned platform certificates, and/or certificates
downloaded from /v3/certificates: each entry's `encrypt_certificate` is decrypted with the
APIv3 key (that authenticates it), its serial and validity are checked, and the download's own
response signature must verify with one of the decrypted certificates. Downloaded certificates
are cached per (base_url, mchid) for the process; an unknown serial triggers at most one
re-download per CERT_REFRESH_MIN_INTERVAL seconds, so forged callbacks cannot make us hammer
WeChat.

Callback acknowledgement: 204 with no body on success; otherwise 500 and
{"code": "FAIL", "message": ...} so WeChat retries.

What comes from the `wechatpayv3` SDK and what does not
-------------------------------------------------------
The protocol primitives are the SDK's (`wechatpayv3.utils`): `build_authorization` (request
signature), `rsa_verify` (response/callback signature), `aes_decrypt` (callback resource and
certificate decryption), `rsa_sign` (JSAPI paySign), and the key/certificate loaders. Its
`Core`/`WeChatPay` client is not used, because (2.0.4):
- the gateway is hard-coded and the constructor downloads certificates from it before it can be
  changed, so it cannot talk to a test server or the backup domain without patching internals;
- an unknown serial in a callback clears and re-downloads the certificate list on every call
  (no rate limit, not thread-safe), a non-hex serial raises ValueError, a missing
  Wechatpay-Signature-Type raises a bare Exception, and there is no replay window;
- `download_bill` reads the whole bill into memory and does not check `hash_value`
  (reconciliation must stream a million lines with flat memory);
- errors are bare `Exception`s and transport errors escape as `requests` exceptions.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import secrets
import tempfile
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from wechatpayv3 import __version__ as sdk_version
from wechatpayv3.utils import (
    aes_decrypt,
    build_authorization,
    load_certificate,
    load_private_key,
    load_public_key,
    rsa_sign,
    rsa_verify,
)

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

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
CST = ZoneInfo("Asia/Shanghai")
REPLAY_WINDOW_SECONDS = 300
CERT_REFRESH_MIN_INTERVAL = 60.0
CURRENCY = "CNY"
_USER_AGENT = f"hospital-portal (wechatpayv3/{sdk_version})"
_DOWNLOAD_CHUNK = 16 * 1024

# trade_state -> OrderStatus.status / Notice.status
_TRADE_STATES = {"SUCCESS": "paid", "REFUND": "refunded", "NOTPAY": "created",
                 "USERPAYING": "created", "PAYERROR": "created", "CLOSED": "closed",
                 "REVOKED": "closed"}
_NOTICE_TRADE_STATES = {"SUCCESS": "paid", "CLOSED": "closed", "REVOKED": "closed"}
_REFUND_STATES = {"SUCCESS": "succeeded", "PROCESSING": "pending", "CLOSED": "failed",
                  "ABNORMAL": "failed"}


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class WechatPayConfig:
    """One merchant's credentials. Secrets stay out of repr()."""

    mchid: str
    appid: str
    cert_serial_no: str  # serial of the merchant API certificate (apiclient_cert.pem)
    private_key: str = field(repr=False)  # merchant API private key, PEM (apiclient_key.pem)
    apiv3_key: str = field(repr=False)  # 32-byte APIv3 key
    base_url: str = DEFAULT_BASE_URL
    # Platform public key mode ("微信支付公钥"): both or neither.
    platform_public_key: str = field(default="", repr=False)
    platform_public_key_id: str = ""
    # Pinned platform certificates (PEM); others are downloaded from /v3/certificates.
    platform_certificates: tuple[str, ...] = field(default=(), repr=False)
    timeout: float = 10.0

    def __post_init__(self) -> None:
        missing = [name for name in ("mchid", "appid", "cert_serial_no", "private_key", "apiv3_key")
                   if not (getattr(self, name) or "").strip()]
        if missing:
            raise _not_configured(missing=missing)
        if len(self.apiv3_key.encode()) != 32:
            raise _not_configured(invalid=["apiv3_key (must be 32 bytes)"])
        if bool(self.platform_public_key) != bool(self.platform_public_key_id):
            raise _not_configured(invalid=["platform_public_key and platform_public_key_id go together"])
        object.__setattr__(self, "base_url", (self.base_url or DEFAULT_BASE_URL).rstrip("/"))

    @classmethod
    def from_settings(cls, payment_settings: Any) -> WechatPayConfig:
        """From a `payments.models.PaymentSettings` row."""
        s = payment_settings
        return cls(mchid=(s.wechat_mchid or "").strip(), appid=(s.wechat_appid or "").strip(),
                   cert_serial_no=(s.wechat_cert_serial_no or "").strip(),
                   private_key=s.wechat_private_key or "", apiv3_key=s.wechat_apiv3_key or "",
                   base_url=(s.wechat_base_url or "").strip() or DEFAULT_BASE_URL,
                   platform_public_key=getattr(s, "wechat_platform_public_key", "") or "",
                   platform_public_key_id=(getattr(s, "wechat_platform_public_key_id", "")
                                           or "").strip())


def _not_configured(**details: list[str]) -> ProviderError:
    return ProviderError("WeChat Pay is not fully configured for this hospital.",
                         code="payments_not_configured", details=details)


# --------------------------------------------------------------------------- platform keys


class _CertificateCache:
    """Downloaded platform certificates of one merchant, shared by every adapter instance."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.certificates: dict[int, x509.Certificate] = {}
        self.loaded = False
        self.last_forced_refresh = float("-inf")


_caches: dict[tuple[str, str], _CertificateCache] = {}
_caches_lock = threading.Lock()


def _cache_for(base_url: str, mchid: str) -> _CertificateCache:
    with _caches_lock:
        return _caches.setdefault((base_url, mchid), _CertificateCache())


def forget_platform_certificates() -> None:
    """Drop every downloaded platform certificate (tests; after a merchant changes keys)."""
    with _caches_lock:
        _caches.clear()


def _serial_number(serial: str) -> int | None:
    try:
        return int(serial, 16)
    except ValueError:
        return None


def _currently_valid(cert: x509.Certificate) -> bool:
    now = datetime.now(UTC)
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _header_map(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case, dash-separated names; also accepts Django's META (HTTP_WECHATPAY_...)."""
    out = {}
    for key, value in headers.items():
        name = key.lower()
        if name.startswith("http_"):
            name = name[5:]
        out[name.replace("_", "-")] = value
    return out


# --------------------------------------------------------------------------- adapter


class WechatPayProvider(PaymentProvider):
    name = "wechatpay_v3"

    def __init__(self, config: WechatPayConfig) -> None:
        self.config = config
        self._private_key = _load_merchant_key(config.private_key)
        self._pinned: dict[str, Any] = {}
        if config.platform_public_key:
            try:
                self._pinned[config.platform_public_key_id] = load_public_key(config.platform_public_key)
            except Exception as exc:  # the SDK raises a bare Exception
                raise _not_configured(invalid=["platform_public_key"]) from exc
        for pem in config.platform_certificates:
            cert = load_certificate(pem)
            if cert is None:
                raise _not_configured(invalid=["platform_certificates"])
            self._pinned[format(cert.serial_number, "X")] = cert.public_key()
        self._cache = _cache_for(config.base_url, config.mchid)
        self._session = requests.Session()

    @classmethod
    def from_settings(cls, payment_settings: Any) -> WechatPayProvider:
        return cls(WechatPayConfig.from_settings(payment_settings))

    # ------------------------------------------------------------- transport
    def _prepare(self, method: str, url: str, body: str = "") -> requests.PreparedRequest:
        headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        if body:
            headers["Content-Type"] = "application/json"
        if self.config.platform_public_key_id:
            headers["Wechatpay-Serial"] = self.config.platform_public_key_id
        prepared = requests.Request(method, url, headers=headers,
                                    data=body.encode() if body else None).prepare()
        # Sign what will actually be on the request line (requests may re-quote the URL).
        prepared.headers["Authorization"] = build_authorization(
            prepared.path_url, method, self.config.mchid, self.config.cert_serial_no,
            self._private_key, data=body)
        return prepared

    def _send(self, prepared: requests.PreparedRequest, *, stream: bool = False) -> requests.Response:
        try:
            return self._session.send(prepared, timeout=(5, self.config.timeout), stream=stream,
                                      allow_redirects=False)
        except requests.RequestException as exc:
            raise ProviderError(details={"reason": str(exc)}) from exc

    def _call(self, method: str, path: str, payload: dict | None = None) -> tuple[int, dict]:
        """One signed API call; 2xx answers must carry a valid platform signature."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")) if payload is not None else ""
        response = self._send(self._prepare(method, self.config.base_url + path, body))
        raw = response.content
        if 200 <= response.status_code < 300:
            try:
                self._verify(response.headers, raw)
            except InvalidSignature as exc:
                raise ProviderError(f"WeChat Pay response rejected: {exc}",
                                    details={"status": response.status_code, "path": path}) from exc
        try:
            data = json.loads(raw) if raw else {}
        except ValueError as exc:
            raise ProviderError(details={"status": response.status_code,
                                         "reason": "response is not JSON"}) from exc
        return response.status_code, data if isinstance(data, dict) else {}

    @staticmethod
    def _error(status: int, data: dict) -> ProviderError:
        code, message = data.get("code", status), data.get("message", "")
        return ProviderError(f"WeChat Pay {code}: {message}",
                             details={"status": status, "provider_code": data.get("code"),
                                      "provider_message": message})

    def _ok(self, method: str, path: str, payload: dict | None = None) -> dict:
        status, data = self._call(method, path, payload)
        if status != 200:
            raise self._error(status, data)
        return data

    # ------------------------------------------------------------- verification
    def _verify(self, headers: Mapping[str, str], body: bytes) -> None:
        h = _header_map(headers)
        timestamp = h.get("wechatpay-timestamp", "")
        nonce = h.get("wechatpay-nonce", "")
        signature = h.get("wechatpay-signature", "")
        serial = h.get("wechatpay-serial", "")
        if not (timestamp and nonce and signature and serial):
            raise InvalidSignature("missing Wechatpay-Timestamp/-Nonce/-Signature/-Serial header")
        signature_type = h.get("wechatpay-signature-type", SIGNATURE_TYPE)
        if signature_type != SIGNATURE_TYPE:
            raise InvalidSignature(f"unsupported signature type {signature_type!r}")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > REPLAY_WINDOW_SECONDS:
            raise InvalidSignature("timestamp outside the 5-minute window")
        key = self._platform_key(serial)
        if key is None:
            raise InvalidSignature(f"unknown platform key serial {serial[:64]!r}")
        if not _verifies(key, timestamp, nonce, body, signature):
            raise InvalidSignature("signature does not verify")

    def _platform_key(self, serial: str) -> Any | None:
        if serial in self._pinned:
            return self._pinned[serial]
        number = _serial_number(serial)
        if number is None:  # e.g. a PUB_KEY_ID we were not given: downloading cannot help
            return None
        for pinned_serial, key in self._pinned.items():
            if _serial_number(pinned_serial) == number:
                return key
        cache = self._cache
        with cache.lock:
            cert = cache.certificates.get(number)
            if cert is not None and _currently_valid(cert):
                return cert.public_key()
            # Unknown serial: WeChat rotated its certificate, or someone is forging callbacks.
            # Re-download, but rarely, and under the lock so concurrent callbacks wait for one
            # download instead of each starting their own.
            now = time.monotonic()
            if cache.loaded and now - cache.last_forced_refresh < CERT_REFRESH_MIN_INTERVAL:
                return None
            if cache.loaded:
                cache.last_forced_refresh = now
            try:
                cache.certificates = self._download_certificates()
            except ProviderError:
                log.warning("could not download WeChat Pay platform certificates for %s",
                            self.config.mchid, exc_info=True)
                return None
            cache.loaded = True
            cert = cache.certificates.get(number)
            return cert.public_key() if cert is not None else None

    def _download_certificates(self) -> dict[int, x509.Certificate]:
        response = self._send(self._prepare("GET", self.config.base_url + "/v3/certificates"))
        raw = response.content
        try:
            data = json.loads(raw) if raw else {}
        except ValueError as exc:
            raise ProviderError(details={"reason": "certificate list is not JSON"}) from exc
        if response.status_code != 200:
            raise self._error(response.status_code, data)
        found: dict[int, x509.Certificate] = {}
        for entry in data.get("data") or []:
            enc = entry.get("encrypt_certificate") or {}
            if enc.get("algorithm") != "AEAD_AES_256_GCM":
                continue
            try:
                pem = aes_decrypt(nonce=enc["nonce"], ciphertext=enc["ciphertext"],
                                  associated_data=enc.get("associated_data") or "",
                                  apiv3_key=self.config.apiv3_key)
            except (KeyError, ValueError):
                pem = None
            if pem is None:  # does not decrypt with our APIv3 key: not for us
                continue
            cert = load_certificate(pem)
            if cert is None or _serial_number(entry.get("serial_no", "")) != cert.serial_number:
                continue
            if _currently_valid(cert):
                found[cert.serial_number] = cert
        # The list itself is signed by one of the certificates it carries (or a pinned key).
        h = _header_map(response.headers)
        serial = h.get("wechatpay-serial", "")
        number = _serial_number(serial)
        key = self._pinned.get(serial) or (found[number].public_key() if number in found else None)
        try:
            if key is None:
                raise InvalidSignature("certificate list signed by an unknown key")
            timestamp = h.get("wechatpay-timestamp", "")
            if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > REPLAY_WINDOW_SECONDS:
                raise InvalidSignature("timestamp outside the 5-minute window")
            if not _verifies(key, timestamp, h.get("wechatpay-nonce", ""), raw,
                             h.get("wechatpay-signature", "")):
                raise InvalidSignature("signature does not verify")
        except InvalidSignature as exc:
            raise ProviderError(f"WeChat Pay certificate list rejected: {exc}") from exc
        return found

    # ------------------------------------------------------------- payments
    def create_payment(self, request: PaymentRequest) -> PaymentStart:
        if isinstance(request.amount_fen, bool) or not isinstance(request.amount_fen, int) \
                or request.amount_fen <= 0:
            raise ValueError("amount_fen must be a positive int")
        payload: dict[str, Any] = {
            "appid": self.config.appid, "mchid": self.config.mchid,
            # Backticks would break the bill's field separator; WeChat allows 127 (bytes, to be safe).
            "description": _clip_bytes(request.description.replace("`", "'"), 127),
            "out_trade_no": request.out_trade_no,
            "time_expire": request.expires_at.astimezone(CST).isoformat(timespec="seconds"),
            "notify_url": request.notify_url,
            "amount": {"total": request.amount_fen, "currency": CURRENCY},
        }
        if request.payer_ref:
            payload["payer"] = {"openid": request.payer_ref}
            data = self._ok("POST", "/v3/pay/transactions/jsapi", payload)
            return PaymentStart(cashier_url=None, prepay=self.jsapi_package(data["prepay_id"]))
        data = self._ok("POST", "/v3/pay/transactions/native", payload)
        return PaymentStart(cashier_url=None, prepay={"code_url": data["code_url"]})

    def jsapi_package(self, prepay_id: str) -> dict[str, str]:
        """The arguments of WeixinJSBridge getBrandWCPayRequest / wx.requestPayment."""
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        pay_sign = rsa_sign(self._private_key, f"{self.config.appid}\n{timestamp}\n{nonce}\n{package}\n")
        return {"appId": self.config.appid, "timeStamp": timestamp, "nonceStr": nonce,
                "package": package, "signType": "RSA", "paySign": pay_sign}

    def query_order(self, out_trade_no: str) -> OrderStatus:
        status, data = self._call(
            "GET", f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}"
                   f"?mchid={quote(self.config.mchid, safe='')}")
        if status == 404:
            return OrderStatus(out_trade_no=out_trade_no, status="not_found")
        if status != 200:
            raise self._error(status, data)
        state = data.get("trade_state", "")
        paid = state in ("SUCCESS", "REFUND")
        return OrderStatus(
            out_trade_no=out_trade_no, status=_TRADE_STATES.get(state, "created"),
            amount_fen=int((data.get("amount") or {}).get("total") or 0) if paid else 0,
            provider_txn_id=data.get("transaction_id", "") if paid else "",
            paid_at=_parse_time(data.get("success_time")) if paid else None)

    def close_order(self, out_trade_no: str) -> None:
        status, data = self._call(
            "POST", f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}/close",
            {"mchid": self.config.mchid})
        if status == 204 or status == 404 or data.get("code") == "ORDER_CLOSED":
            return  # closed now, already closed, or never created at WeChat
        raise self._error(status, data)

    # ------------------------------------------------------------- refunds
    def refund(self, *, out_trade_no: str, out_refund_no: str, amount_fen: int, total_fen: int,
               reason: str, notify_url: str) -> RefundResult:
        payload: dict[str, Any] = {
            "out_trade_no": out_trade_no, "out_refund_no": out_refund_no,
            "amount": {"refund": amount_fen, "total": total_fen, "currency": CURRENCY}}
        if reason:
            payload["reason"] = reason[:80]
        if notify_url:
            payload["notify_url"] = notify_url
        status, data = self._call("POST", "/v3/refund/domestic/refunds", payload)
        if status == 200:
            state = data.get("status", "")
            mapped = _REFUND_STATES.get(state, "failed")
            return RefundResult(
                out_refund_no=out_refund_no, status=mapped,
                provider_refund_id=data.get("refund_id", ""),
                failure_reason="" if mapped != "failed" else f"refund {state} at WeChat Pay")
        if status in (401, 429) or status >= 500:
            # Signature/config trouble, rate limit, WeChat down: stays pending and is re-sent
            # with the same out_refund_no, which WeChat treats as the same refund.
            raise self._error(status, data)
        return RefundResult(out_refund_no=out_refund_no, status="failed",
                            failure_reason=f"{data.get('code', status)}: {data.get('message', '')}")

    # ------------------------------------------------------------- callbacks
    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Notice:
        self._verify(headers, body)
        try:
            envelope = json.loads(body)
            resource = envelope["resource"]
            event = envelope["event_type"]
            notification_id = str(envelope["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidSignature("signed body is not a notification") from exc
        if envelope.get("resource_type") != "encrypt-resource" \
                or resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise InvalidSignature("resource is not AEAD_AES_256_GCM encrypted")
        try:
            plain = aes_decrypt(nonce=resource["nonce"], ciphertext=resource["ciphertext"],
                                associated_data=resource.get("associated_data") or "",
                                apiv3_key=self.config.apiv3_key)
            data = json.loads(plain) if plain is not None else None
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidSignature("resource does not decrypt") from exc
        if not isinstance(data, dict):
            raise InvalidSignature("resource does not decrypt with our APIv3 key")
        if data.get("mchid") != self.config.mchid:
            raise InvalidSignature("notification for another merchant")
        raw = {**envelope, "resource": data}
        try:
            if event.startswith("TRANSACTION."):
                if data.get("appid") != self.config.appid:
                    raise InvalidSignature("notification for another app")
                amount = data["amount"]
                return Notice(
                    notification_id=notification_id, kind="payment",
                    out_trade_no=data["out_trade_no"],
                    status=_NOTICE_TRADE_STATES.get(data["trade_state"], "failed"),
                    amount_fen=int(amount["total"]), currency=amount.get("currency", CURRENCY),
                    provider_txn_id=data.get("transaction_id", ""),
                    occurred_at=_parse_time(data.get("success_time")), raw=raw)
            if event.startswith("REFUND."):
                return Notice(
                    notification_id=notification_id, kind="refund",
                    out_trade_no=data["out_trade_no"],
                    status="succeeded" if data["refund_status"] == "SUCCESS" else "failed",
                    # Refund notifications carry no currency field.
                    amount_fen=int(data["amount"]["refund"]), currency=CURRENCY,
                    provider_txn_id=data.get("transaction_id", ""),
                    occurred_at=_parse_time(data.get("success_time")),
                    out_refund_no=data["out_refund_no"],
                    provider_refund_id=data.get("refund_id", ""), raw=raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidSignature("decrypted resource is not a transaction or refund") from exc
        raise InvalidSignature(f"unsupported event type {event!r}")

    def ack(self, ok: bool, message: str = "") -> CallbackAck:
        if ok:
            return CallbackAck(status=204, body=b"")
        return CallbackAck(status=500, body=json.dumps(
            {"code": "FAIL", "message": message or "失败"}, ensure_ascii=False).encode())

    # ------------------------------------------------------------- statements
    def fetch_statement(self, day: date) -> Iterator[StatementLine]:
        status, data = self._call(
            "GET", f"/v3/bill/tradebill?bill_date={day.isoformat()}&bill_type=ALL&tar_type=GZIP")
        if status == 400 and data.get("code") == "NO_STATEMENT_EXIST":
            return  # no trade that day
        if status != 200:
            raise self._error(status, data)
        yield from self._download_bill(data["download_url"], data.get("hash_type", ""),
                                       data.get("hash_value", ""))

    def _download_bill(self, url: str, hash_type: str, hash_value: str) -> Iterator[StatementLine]:
        ours, theirs = urlsplit(self.config.base_url), urlsplit(url)
        same_origin = (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)
        wechat_host = theirs.scheme == "https" and (theirs.hostname or "").endswith(".mch.weixin.qq.com")
        if not (same_origin or wechat_host):
            raise ProviderError("WeChat Pay bill URL points elsewhere", details={"url": url})
        if hash_type.upper() != "SHA1":
            raise ProviderError("unsupported bill hash type", details={"hash_type": hash_type})
        digest = hashlib.sha1(usedforsecurity=False)
        with tempfile.TemporaryFile() as spool:
            # The download answer is not signed (WeChat documents this): spool the decompressed
            # file to disk while hashing it, and only parse once the hash matches.
            response = self._send(self._prepare("GET", url), stream=True)
            with response:
                if response.status_code != 200:
                    body = response.raw.read(4096, decode_content=True) or b""
                    try:
                        data = json.loads(body)
                    except ValueError:
                        data = {}
                    raise self._error(response.status_code, data if isinstance(data, dict) else {})
                try:
                    for block in _maybe_gunzip(response.iter_content(_DOWNLOAD_CHUNK)):
                        digest.update(block)
                        spool.write(block)
                except (zlib.error, requests.RequestException) as exc:
                    raise ProviderError("WeChat Pay bill download failed",
                                        details={"reason": str(exc)}) from exc
            if digest.hexdigest() != hash_value.strip().lower():
                raise StatementMalformed("WeChat Pay bill does not match its hash",
                                         details={"expected": hash_value, "got": digest.hexdigest()})
            spool.seek(0)
            text = io.TextIOWrapper(spool, encoding="utf-8-sig", newline="")
            try:
                yield from parse_trade_bill(text)
            finally:
                text.detach()


# --------------------------------------------------------------------------- helpers


def _load_merchant_key(pem: str) -> Any:
    try:
        return load_private_key(pem)
    except Exception:  # the SDK only wraps PKCS#8; accept "BEGIN RSA PRIVATE KEY" too
        try:
            return load_pem_private_key(pem.strip().encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise _not_configured(invalid=["private_key"]) from exc


def _verifies(key: Any, timestamp: str, nonce: str, body: bytes, signature: str) -> bool:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    try:
        return bool(rsa_verify(timestamp, nonce, text, signature, key))
    except (TypeError, ValueError):  # not an RSA key, malformed signature
        return False


def _clip_bytes(text: str, limit: int) -> str:
    raw = text.encode()
    return text if len(raw) <= limit else raw[:limit].decode("utf-8", errors="ignore")


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _maybe_gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Pass plain data through; decompress (possibly multi-member) gzip, chunk by chunk."""
    it = iter(chunks)
    head = b""
    for chunk in it:
        head += chunk
        if len(head) >= 2:
            break
    if not head.startswith(b"\x1f\x8b"):
        if head:
            yield head
        yield from it
        return
    decompressor = zlib.decompressobj(31)
    for chunk in _chain(head, it):
        data = chunk
        while data:
            out = decompressor.decompress(data)
            if out:
                yield out
            if decompressor.eof:
                data = decompressor.unused_data
                decompressor = zlib.decompressobj(31)
            else:
                data = b""
    tail = decompressor.flush()
    if tail:
        yield tail


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


_BILL = {
    "time": "交易时间", "txn": "微信订单号", "out_trade_no": "商户订单号", "state": "交易状态",
    "settle_amount": "应结订单金额", "out_refund_no": "商户退款单号", "refund": "退款金额",
    "refund_status": "退款状态", "order_amount": "订单金额", "refund_requested": "申请退款金额",
}


def parse_trade_bill(lines: Iterable[str]) -> Iterator[StatementLine]:
    """Parse a WeChat Pay v3 trade bill (bill_type=ALL), streaming.

    Layout: a header line (plain, comma-separated), detail lines whose every field is prefixed
    with a backtick (so they split on ",`", which also survives commas in product names), then
    a summary header ("总交易单数,...") and a summary line, which are not returned. Amounts are
    yuan with two decimals and come back as fen. Payments (交易状态 SUCCESS) use 订单金额 (the
    order total, as sent) when the column exists, else 应结订单金额; refunds (交易状态 REFUND,
    退款状态 SUCCESS) use 申请退款金额, else 退款金额. Other rows (REVOKED, refunds still
    processing) are skipped. Times are Beijing time.
    """
    it = iter(lines)
    first = next(it, None)
    if first is None:
        raise StatementMalformed("WeChat Pay bill is empty")
    header = first.lstrip("\ufeff").rstrip("\r\n").split(",")
    col = {name: i for i, name in enumerate(header)}
    for key in ("time", "txn", "out_trade_no", "state", "settle_amount", "out_refund_no", "refund"):
        if _BILL[key] not in col:
            raise StatementMalformed("WeChat Pay bill header lacks a column",
                                     details={"column": _BILL[key]})

    def get(fields: list[str], key: str) -> str:
        index = col.get(_BILL[key])
        return fields[index].strip() if index is not None else ""

    for lineno, raw in enumerate(it, start=2):
        line = raw.rstrip("\r\n")
        if not line:
            continue
        if not line.startswith("`"):
            break  # the summary section
        fields = line[1:].split(",`")
        if len(fields) != len(header):
            raise StatementMalformed("malformed WeChat Pay bill line",
                                     details={"line": lineno, "fields": len(fields), "header": len(header)})
        state = get(fields, "state")
        if state == "SUCCESS":
            kind, status = "payment", "paid"
            amount = get(fields, "order_amount") or get(fields, "settle_amount")
        elif state == "REFUND":
            refund_status = get(fields, "refund_status")
            if refund_status and refund_status != "SUCCESS":
                continue
            kind, status = "refund", "refunded"
            amount = get(fields, "refund_requested") or get(fields, "refund")
        else:
            continue
        try:
            occurred = datetime.strptime(get(fields, "time"), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)
        except ValueError as exc:
            raise StatementMalformed("bad time in WeChat Pay bill",
                                     details={"line": lineno}) from exc
        yield StatementLine(
            occurred_at=occurred, out_trade_no=get(fields, "out_trade_no"),
            provider_txn_id=get(fields, "txn"), kind=kind, status=status,
            amount_fen=abs(yuan_to_fen(amount, lineno)),
            out_refund_no=get(fields, "out_refund_no") if kind == "refund" else "")


def yuan_to_fen(text: str, lineno: int = 0) -> int:
    try:
        value = Decimal(text) * 100
    except InvalidOperation as exc:
        raise StatementMalformed("bad amount in WeChat Pay bill",
                                 details={"line": lineno, "amount": text}) from exc
    if value != value.to_integral_value():
        raise StatementMalformed("amount in WeChat Pay bill has fractions of a fen",
                                 details={"line": lineno, "amount": text})
    return int(value)
