"""A local WeChat Pay API v3 server for tests (stdlib http.server in a thread).

It implements the parts of the protocol the adapter uses, the way the real API behaves:

- Every request must carry `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",
  signature="..",timestamp="..",serial_no=".."`; the signature (RSA-SHA256 over
  METHOD\\nREQUEST-TARGET\\nTIMESTAMP\\nNONCE\\nBODY\\n, request target as on the request line) is
  checked with the merchant's registered public key, the serial against the merchant's
  certificate serial, the timestamp against a 5-minute window. Failures: 401 SIGN_ERROR.
- Every answer except the bill file is signed with the platform key: Wechatpay-Timestamp,
  -Nonce, -Serial, -Signature, -Signature-Type (and Request-ID). The serial is the platform
  certificate's, or the platform public key id when the request sent `Wechatpay-Serial:
  PUB_KEY_ID_...` (public-key mode).
- /v3/certificates returns the platform certificate(s) AES-256-GCM-encrypted with the
  merchant's APIv3 key (associated_data "certificate").
- Native/JSAPI orders, query by out_trade_no, close, refunds (idempotent on out_refund_no),
  refund query, /v3/bill/tradebill (download_url + SHA1 of the uncompressed file) and the bill
  file itself (27-column ALL format, backtick-prefixed fields, summary lines, gzip on request).

Test hooks are plain methods: `pay()`, `complete_refund()`, `transaction_notification()`,
`refund_notification()` (signed + encrypted callbacks as (headers, body)), `deliver()`,
`rotate_platform_certificate()`, `verify_jsapi_pay_sign()`, and switches to corrupt response
signatures or bill hashes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import secrets
import string
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from portal.dev.http import DevService, Request, Response

CST = ZoneInfo("Asia/Shanghai")
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
WINDOW = 300

BILL_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
               "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
               "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
BILL_SUMMARY_HEADER = ("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,"
                       "订单总金额,申请退款总金额")


# --------------------------------------------------------------------------- key material


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def self_signed_certificate(key: rsa.RSAPrivateKey, common_name: str = "Tenpay.com Root CA",
                            days: int = 365 * 5) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days))
            .sign(key, hashes.SHA256()))


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def certificate_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def serial_hex(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "X")


def rsa_sign_b64(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def aes_gcm_encrypt(apiv3_key: str, plaintext: str, associated_data: str) -> dict[str, str]:
    nonce = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
    ct = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), plaintext.encode(), associated_data.encode())
    return {"algorithm": "AEAD_AES_256_GCM", "nonce": nonce, "associated_data": associated_data,
            "ciphertext": base64.b64encode(ct).decode()}


def _iso(dt: datetime) -> str:
    return dt.astimezone(CST).isoformat(timespec="seconds")


def _yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


# --------------------------------------------------------------------------- state


@dataclass
class Merchant:
    mchid: str
    appid: str
    serial_no: str  # merchant API certificate serial
    public_key: rsa.RSAPublicKey
    apiv3_key: str


@dataclass
class Order:
    mchid: str
    appid: str
    out_trade_no: str
    description: str
    total: int
    currency: str
    notify_url: str
    time_expire: str
    trade_type: str  # NATIVE / JSAPI
    attach: str = ""
    openid: str = ""
    trade_state: str = "NOTPAY"
    transaction_id: str = ""
    success_time: datetime | None = None
    code_url: str = ""
    prepay_id: str = ""


@dataclass
class Refund:
    mchid: str
    out_trade_no: str
    out_refund_no: str
    refund_id: str
    transaction_id: str
    refund: int
    total: int
    reason: str
    notify_url: str
    created: datetime
    status: str = "PROCESSING"
    success_time: datetime | None = None


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    status: int = 0


@dataclass
class ApiError(Exception):
    status: int
    code: str
    message: str


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    signed: bool = True


@dataclass
class _Bill:
    mchid: str
    content: bytes  # the uncompressed file
    gzip: bool
    expires: float


@dataclass
class _PlatformCert:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate


# --------------------------------------------------------------------------- server


@dataclass
class FakeWeChatPay(DevService):
    poll_interval = 0.05
    platform_key: rsa.RSAPrivateKey
    platform_certificate: x509.Certificate
    public_key: rsa.RSAPrivateKey | None = None  # platform public-key mode ("微信支付公钥")
    public_key_id: str = "PUB_KEY_ID_0114232134912410000000000000000001"
    callbacks_use_public_key: bool = False
    corrupt_response_signatures: bool = False
    corrupt_bill_hash: bool = False
    bill_gzip: bool | None = None  # None: as the request's tar_type says

    merchants: dict[str, Merchant] = field(default_factory=dict)
    orders: dict[tuple[str, str], Order] = field(default_factory=dict)
    refunds: dict[tuple[str, str], Refund] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    base_url: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._certs = [_PlatformCert(self.platform_key, self.platform_certificate)]
        self._bills: dict[str, _Bill] = {}
        DevService.__init__(self)

    # ------------------------------------------------------------- lifecycle (DevService)
    def started(self) -> None:
        self.base_url = self.url

    def add_merchant(self, *, mchid: str, appid: str, serial_no: str,
                     public_key: rsa.RSAPublicKey, apiv3_key: str) -> Merchant:
        merchant = Merchant(mchid, appid, serial_no, public_key, apiv3_key)
        self.merchants[mchid] = merchant
        return merchant

    @property
    def platform_serial(self) -> str:
        return serial_hex(self._certs[-1].cert)

    def rotate_platform_certificate(self) -> str:
        """WeChat issues a new platform certificate and signs with it from now on."""
        key = new_rsa_key()
        with self._lock:
            self._certs.append(_PlatformCert(key, self_signed_certificate(key)))
        return self.platform_serial

    def calls(self, method: str, path_prefix: str) -> list[Seen]:
        return [s for s in self.requests if s.method == method and s.target.startswith(path_prefix)]

    # ------------------------------------------------------------- signing
    def sign(self, body: bytes, *, use_public_key: bool = False, timestamp: int | None = None,
             nonce: str | None = None, key: rsa.RSAPrivateKey | None = None,
             serial: str | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nonce = nonce or secrets.token_hex(16).upper()
        if use_public_key:
            assert self.public_key is not None, "no platform public key configured"
            default_key, default_serial = self.public_key, self.public_key_id
        else:
            default_key, default_serial = self._certs[-1].key, self.platform_serial
        signature = rsa_sign_b64(key or default_key, f"{ts}\n{nonce}\n".encode() + body + b"\n")
        return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce,
                "Wechatpay-Signature": signature, "Wechatpay-Serial": serial or default_serial,
                "Wechatpay-Signature-Type": SIGNATURE_TYPE}

    # ------------------------------------------------------------- HTTP
    def handle(self, request: Request) -> Response:
        if request.method not in ("GET", "POST"):
            return Response(501)
        reply, headers = self.answer(request.method, request.target, dict(request.headers.items()),
                                     request.body)
        if reply.status == 204:
            return Response(204, headers=list(headers.items()))
        return Response(reply.status, reply.body,
                        [*headers.items(), ("Content-Type", reply.content_type)])

    def answer(self, method: str, target: str, headers: dict[str, str],
               body: bytes) -> tuple[_Reply, dict[str, str]]:
        seen = Seen(method, target, headers, body)
        with self._lock:
            self.requests.append(seen)
        path, _, query = target.partition("?")
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        try:
            merchant = self._authenticate(method, target, headers, body)
            reply = self._route(method, path, params, body, merchant)
        except ApiError as exc:
            reply = _json(exc.status, {"code": exc.code, "message": exc.message})
        seen.status = reply.status
        out = {"Request-ID": uuid.uuid4().hex}
        if reply.signed:
            lower = {k.lower(): v for k, v in headers.items()}
            use_pk = (self.public_key is not None
                      and lower.get("wechatpay-serial", "") == self.public_key_id)
            signed = self.sign(reply.body, use_public_key=use_pk)
            if self.corrupt_response_signatures:
                signed["Wechatpay-Signature"] = rsa_sign_b64(new_rsa_key(), b"forged\n")
            out.update(signed)
        return reply, out

    def _authenticate(self, method: str, target: str, headers: dict[str, str],
                      body: bytes) -> Merchant:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        schema, _, rest = auth.partition(" ")
        if schema != SIGNATURE_TYPE:
            raise ApiError(401, "SIGN_ERROR", "错误的签名方式，请使用WECHATPAY2-SHA256-RSA2048")
        fields = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        try:
            mchid, nonce = fields["mchid"], fields["nonce_str"]
            signature, ts, serial = fields["signature"], fields["timestamp"], fields["serial_no"]
        except KeyError as exc:
            raise ApiError(401, "SIGN_ERROR", f"Authorization缺少{exc.args[0]}") from exc
        merchant = self.merchants.get(mchid)
        if merchant is None:
            raise ApiError(401, "SIGN_ERROR", "商户号不存在")
        if serial.upper() != merchant.serial_no.upper():
            raise ApiError(401, "SIGN_ERROR", "商户证书序列号有误。请使用签名私钥匹配的证书序列号")
        if not ts.isdigit() or abs(time.time() - int(ts)) > WINDOW:
            raise ApiError(401, "SIGN_ERROR", "请求的时间戳与当前时间相差超过5分钟")
        message = f"{method}\n{target}\n{ts}\n{nonce}\n".encode() + body + b"\n"
        try:
            merchant.public_key.verify(base64.b64decode(signature, validate=True), message,
                                       padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError) as exc:
            raise ApiError(401, "SIGN_ERROR", "签名错误，验签失败") from exc
        return merchant

    def _route(self, method: str, path: str, params: dict[str, str], body: bytes,
               merchant: Merchant) -> _Reply:
        m = re.fullmatch
        if method == "GET" and path == "/v3/certificates":
            return self._certificates(merchant)
        if method == "POST" and (hit := m(r"/v3/pay/transactions/(native|jsapi)", path)):
            return self._create(merchant, hit.group(1).upper(), _body(body))
        if method == "GET" and (hit := m(r"/v3/pay/transactions/out-trade-no/([^/]+)", path)):
            if params.get("mchid") != merchant.mchid:
                raise ApiError(400, "PARAM_ERROR", "mchid与签名商户号不一致")
            return _json(200, self._order_json(self._order(merchant, unquote(hit.group(1)))))
        if method == "POST" and (hit := m(r"/v3/pay/transactions/out-trade-no/([^/]+)/close", path)):
            return self._close(merchant, unquote(hit.group(1)), _body(body))
        if method == "POST" and path == "/v3/refund/domestic/refunds":
            return self._refund(merchant, _body(body))
        if method == "GET" and (hit := m(r"/v3/refund/domestic/refunds/([^/]+)", path)):
            refund = self.refunds.get((merchant.mchid, unquote(hit.group(1))))
            if refund is None:
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
            return _json(200, self._refund_json(refund))
        if method == "GET" and path == "/v3/bill/tradebill":
            return self._tradebill(merchant, params)
        if method == "GET" and path == "/v3/billdownload/file":
            return self._bill_file(merchant, params)
        raise ApiError(404, "NOT_FOUND", "请求的资源不存在")

    # ------------------------------------------------------------- endpoints
    def _certificates(self, merchant: Merchant) -> _Reply:
        data = []
        for pc in self._certs:
            data.append({
                "serial_no": serial_hex(pc.cert),
                "effective_time": _iso(pc.cert.not_valid_before_utc),
                "expire_time": _iso(pc.cert.not_valid_after_utc),
                "encrypt_certificate": aes_gcm_encrypt(merchant.apiv3_key, certificate_pem(pc.cert),
                                                       "certificate"),
            })
        return _json(200, {"data": data})

    def _create(self, merchant: Merchant, trade_type: str, req: dict) -> _Reply:
        for name in ("appid", "mchid", "description", "out_trade_no", "notify_url", "amount"):
            if not req.get(name):
                raise ApiError(400, "PARAM_ERROR",
                               f"输入源“/body/{name}”映射到字段“{name}”必填性规则校验失败")
        if req["mchid"] != merchant.mchid:
            raise ApiError(400, "PARAM_ERROR", "请求的mchid与签名的mchid不一致")
        if req["appid"] != merchant.appid:
            raise ApiError(400, "APPID_MCHID_NOT_MATCH", "AppID和mch_id不匹配")
        no = req["out_trade_no"]
        if not re.fullmatch(r"[0-9A-Za-z_\-|*]{6,32}", no):
            raise ApiError(400, "PARAM_ERROR", "out_trade_no格式错误")
        if len(req["description"].encode()) > 127:
            raise ApiError(400, "PARAM_ERROR", "description超过长度限制")
        if not req["notify_url"].startswith("https://") or "?" in req["notify_url"]:
            raise ApiError(400, "PARAM_ERROR", "notify_url必须为https地址且不能携带参数")
        amount = req["amount"]
        total = amount.get("total")
        if not isinstance(total, int) or isinstance(total, bool) or total < 1:
            raise ApiError(400, "PARAM_ERROR", "amount.total必须为正整数")
        if amount.get("currency", "CNY") != "CNY":
            raise ApiError(400, "PARAM_ERROR", "不支持的币种")
        if req.get("time_expire"):
            try:
                expire = datetime.fromisoformat(req["time_expire"])
            except ValueError as exc:
                raise ApiError(400, "PARAM_ERROR", "time_expire格式错误") from exc
            if expire.tzinfo is None:
                raise ApiError(400, "PARAM_ERROR", "time_expire需为RFC3339格式")
        openid = (req.get("payer") or {}).get("openid", "")
        if trade_type == "JSAPI" and not openid:
            raise ApiError(400, "PARAM_ERROR", "JSAPI下单需要payer.openid")
        with self._lock:
            existing = self.orders.get((merchant.mchid, no))
            if existing is not None:
                same = (existing.total, existing.description, existing.trade_type, existing.openid) \
                    == (total, req["description"], trade_type, openid)
                if existing.trade_state == "SUCCESS":
                    raise ApiError(400, "ORDERPAID", "该订单已支付")
                if not same:
                    raise ApiError(403, "OUT_TRADE_NO_USED", "商户订单号重复")
                order = existing
            else:
                order = Order(merchant.mchid, merchant.appid, no, req["description"], total, "CNY",
                              req["notify_url"], req.get("time_expire", ""), trade_type,
                              attach=req.get("attach", ""), openid=openid)
                order.code_url = "weixin://wxpay/bizpayurl?pr=" + secrets.token_urlsafe(6)
                order.prepay_id = "wx" + datetime.now(CST).strftime("%d%H%M%S") + secrets.token_hex(12)
                self.orders[(merchant.mchid, no)] = order
        if trade_type == "NATIVE":
            return _json(200, {"code_url": order.code_url})
        return _json(200, {"prepay_id": order.prepay_id})

    def _order(self, merchant: Merchant, out_trade_no: str) -> Order:
        order = self.orders.get((merchant.mchid, out_trade_no))
        if order is None:
            raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
        return order

    @staticmethod
    def _order_json(o: Order) -> dict:
        data: dict[str, Any] = {
            "appid": o.appid, "mchid": o.mchid, "out_trade_no": o.out_trade_no,
            "trade_type": o.trade_type, "trade_state": o.trade_state,
            "trade_state_desc": {"SUCCESS": "支付成功", "NOTPAY": "未支付", "CLOSED": "订单已关闭",
                                 "REFUND": "转入退款"}.get(o.trade_state, ""),
            "attach": o.attach, "amount": {"total": o.total, "currency": "CNY"},
        }
        if o.transaction_id:
            data.update(transaction_id=o.transaction_id, bank_type="OTHERS",
                         success_time=_iso(o.success_time) if o.success_time else "",
                         payer={"openid": o.openid})
            data["amount"].update(payer_total=o.total, payer_currency="CNY")
        return data

    def _close(self, merchant: Merchant, out_trade_no: str, req: dict) -> _Reply:
        if req.get("mchid") != merchant.mchid:
            raise ApiError(400, "PARAM_ERROR", "请求的mchid与签名的mchid不一致")
        with self._lock:
            order = self._order(merchant, out_trade_no)
            if order.trade_state in ("SUCCESS", "REFUND"):
                raise ApiError(400, "ORDERPAID", "该订单已支付")
            if order.trade_state == "CLOSED":
                raise ApiError(400, "ORDER_CLOSED", "订单已关闭")
            order.trade_state = "CLOSED"
        return _Reply(204)

    def _refund(self, merchant: Merchant, req: dict) -> _Reply:
        no = req.get("out_refund_no")
        amount = req.get("amount") or {}
        if not no or not req.get("out_trade_no") and not req.get("transaction_id"):
            raise ApiError(400, "PARAM_ERROR", "缺少out_refund_no或订单号")
        if req.get("notify_url") and not req["notify_url"].startswith("https://"):
            raise ApiError(400, "PARAM_ERROR", "notify_url必须为https地址")
        with self._lock:
            existing = self.refunds.get((merchant.mchid, no))
            if existing is not None:  # "同一退款单号多次请求只退一笔"
                return _json(200, self._refund_json(existing))
            order = next((o for o in self.orders.values() if o.mchid == merchant.mchid and (
                o.out_trade_no == req.get("out_trade_no")
                or (o.transaction_id and o.transaction_id == req.get("transaction_id")))), None)
            if order is None:
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
            if order.trade_state not in ("SUCCESS", "REFUND"):
                raise ApiError(400, "INVALID_REQUEST", "订单未支付，不能退款")
            refund_fen, total = amount.get("refund"), amount.get("total")
            if not isinstance(refund_fen, int) or refund_fen < 1:
                raise ApiError(400, "PARAM_ERROR", "amount.refund必须为正整数")
            if total != order.total:
                raise ApiError(400, "INVALID_REQUEST", "订单金额与原订单金额不一致")
            refunded = sum(r.refund for r in self.refunds.values()
                           if r.mchid == merchant.mchid and r.out_trade_no == order.out_trade_no
                           and r.status in ("SUCCESS", "PROCESSING"))
            if refunded + refund_fen > order.total:
                raise ApiError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
            refund_id = "50" + datetime.now(CST).strftime("%Y%m%d") + f"{secrets.randbelow(10**18):018d}"
            refund = Refund(merchant.mchid, order.out_trade_no, no, refund_id,
                            order.transaction_id, refund_fen, total, req.get("reason", ""),
                            req.get("notify_url", ""), datetime.now(UTC))
            self.refunds[(merchant.mchid, no)] = refund
        return _json(200, self._refund_json(refund))

    @staticmethod
    def _refund_json(r: Refund) -> dict:
        data = {"refund_id": r.refund_id, "out_refund_no": r.out_refund_no,
                "transaction_id": r.transaction_id, "out_trade_no": r.out_trade_no,
                "channel": "ORIGINAL", "user_received_account": "支付用户零钱",
                "create_time": _iso(r.created), "status": r.status, "funds_account": "AVAILABLE",
                "amount": {"total": r.total, "refund": r.refund, "payer_total": r.total,
                           "payer_refund": r.refund, "settlement_refund": r.refund,
                           "settlement_total": r.total, "discount_refund": 0, "currency": "CNY"},
                "promotion_detail": []}
        if r.success_time:
            data["success_time"] = _iso(r.success_time)
        return data

    def _tradebill(self, merchant: Merchant, params: dict[str, str]) -> _Reply:
        try:
            day = date.fromisoformat(params.get("bill_date", ""))
        except ValueError as exc:
            raise ApiError(400, "PARAM_ERROR", "bill_date格式错误，应为yyyy-MM-dd") from exc
        bill_type = params.get("bill_type", "ALL")
        if bill_type not in ("ALL", "SUCCESS", "REFUND"):
            raise ApiError(400, "PARAM_ERROR", "bill_type取值错误")
        content = self.bill_file(merchant.mchid, day, bill_type)
        if content is None:
            raise ApiError(400, "NO_STATEMENT_EXIST", "账单文件不存在")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._bills[token] = _Bill(merchant.mchid, content, params.get("tar_type") == "GZIP",
                                       time.time() + 300)
        digest = hashlib.sha1(content, usedforsecurity=False).hexdigest()
        if self.corrupt_bill_hash:
            digest = hashlib.sha1(b"something else", usedforsecurity=False).hexdigest()
        return _json(200, {"hash_type": "SHA1", "hash_value": digest,
                           "download_url": f"{self.base_url}/v3/billdownload/file?token={token}"})

    def _bill_file(self, merchant: Merchant, params: dict[str, str]) -> _Reply:
        bill = self._bills.get(params.get("token", ""))
        if bill is None or bill.expires < time.time():
            raise ApiError(400, "INVALID_REQUEST", "下载地址已失效，请重新申请账单")
        if bill.mchid != merchant.mchid:
            raise ApiError(403, "NO_AUTH", "权限异常")
        gzipped = bill.gzip if self.bill_gzip is None else self.bill_gzip
        body = gzip.compress(bill.content) if gzipped else bill.content
        # WeChat does not sign the file download.
        return _Reply(200, body, "application/octet-stream", signed=False)

    def bill_file(self, mchid: str, day: date, bill_type: str = "ALL") -> bytes | None:
        """The uncompressed trade bill of `day` (Beijing time), or None if there was no trade."""
        rows: list[tuple[datetime, list[str]]] = []
        count = settle = refunds_total = fees = order_total = refund_requested = Decimal(0)
        for o in self.orders.values():
            if o.mchid != mchid or not o.success_time or o.success_time.astimezone(CST).date() != day:
                continue
            if bill_type == "REFUND":
                continue
            fee = (Decimal(o.total) / 100 * Decimal("0.006")).quantize(Decimal("0.00001"))
            rows.append((o.success_time, [
                o.success_time.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S"), o.appid, o.mchid, "0",
                "", o.transaction_id, o.out_trade_no, o.openid, o.trade_type, "SUCCESS", "OTHERS",
                "CNY", _yuan(o.total), "0.00", "0", "0", "0.00", "0.00", "", "", o.description,
                o.attach, f"{fee:.5f}", "0.60%", _yuan(o.total), "0.00", ""]))
            count += 1
            settle += Decimal(o.total) / 100
            order_total += Decimal(o.total) / 100
            fees += fee
        for r in self.refunds.values():
            if r.mchid != mchid or r.status != "SUCCESS" or not r.success_time \
                    or r.success_time.astimezone(CST).date() != day or bill_type == "SUCCESS":
                continue
            o = self.orders[(mchid, r.out_trade_no)]
            rows.append((r.success_time, [
                r.success_time.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S"), o.appid, o.mchid, "0",
                "", o.transaction_id, o.out_trade_no, o.openid, o.trade_type, "REFUND", "OTHERS",
                "CNY", "0.00", "0.00", r.refund_id, r.out_refund_no, _yuan(r.refund), "0.00",
                "ORIGINAL", "SUCCESS", o.description, o.attach, "0.00000", "0.60%", "0.00",
                _yuan(r.refund), ""]))
            count += 1
            refunds_total += Decimal(r.refund) / 100
            refund_requested += Decimal(r.refund) / 100
        if not rows:
            return None
        rows.sort(key=lambda row: row[0])
        lines = [BILL_HEADER]
        lines += [",".join("`" + value for value in fields) for _, fields in rows]
        lines.append(BILL_SUMMARY_HEADER)
        lines.append(",".join("`" + v for v in (
            str(int(count)), f"{settle:.2f}", f"{refunds_total:.2f}", "0.00", f"{fees:.5f}",
            f"{order_total:.2f}", f"{refund_requested:.2f}")))
        return ("\r\n".join(lines) + "\r\n").encode()

    # ------------------------------------------------------------- test hooks
    def pay(self, out_trade_no: str, *, mchid: str | None = None,
            openid: str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", at: datetime | None = None) -> Order:
        """The patient pays (scans the code / confirms in WeChat)."""
        with self._lock:
            order = self.orders[(mchid or next(iter(self.merchants)), out_trade_no)]
            assert order.trade_state == "NOTPAY", order.trade_state
            order.trade_state = "SUCCESS"
            order.openid = order.openid or openid
            order.transaction_id = "42000" + f"{secrets.randbelow(10**23):023d}"
            order.success_time = (at or datetime.now(UTC)).replace(microsecond=0)
            return order

    def complete_refund(self, out_refund_no: str, *, mchid: str | None = None, status: str = "SUCCESS",
                        at: datetime | None = None) -> Refund:
        with self._lock:
            refund = self.refunds[(mchid or next(iter(self.merchants)), out_refund_no)]
            refund.status = status
            if status == "SUCCESS":
                refund.success_time = (at or datetime.now(UTC)).replace(microsecond=0)
                self.orders[(refund.mchid, refund.out_trade_no)].trade_state = "REFUND"
            return refund

    def notification(self, *, mchid: str, event_type: str, original_type: str, summary: str,
                     resource: dict, apiv3_key: str | None = None, use_public_key: bool | None = None,
                     **sign_overrides: Any) -> tuple[dict[str, str], bytes]:
        """A signed, encrypted notification as WeChat would POST it: (headers, body)."""
        key = apiv3_key or self.merchants[mchid].apiv3_key
        envelope = {
            "id": str(uuid.uuid4()), "create_time": _iso(datetime.now(UTC)),
            "resource_type": "encrypt-resource", "event_type": event_type, "summary": summary,
            "resource": {"original_type": original_type,
                         **aes_gcm_encrypt(key, json.dumps(resource, ensure_ascii=False), original_type)},
        }
        body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
        if use_public_key is None:
            use_public_key = self.callbacks_use_public_key
        headers = self.sign(body, use_public_key=use_public_key, **sign_overrides)
        headers["Content-Type"] = "application/json"
        return headers, body

    def transaction_notification(self, out_trade_no: str, *, mchid: str | None = None,
                                 **overrides: Any) -> tuple[dict[str, str], bytes]:
        o = self.orders[(mchid or next(iter(self.merchants)), out_trade_no)]
        assert o.trade_state in ("SUCCESS", "REFUND"), "pay() the order first"
        resource = {"mchid": o.mchid, "appid": o.appid, "out_trade_no": o.out_trade_no,
                    "transaction_id": o.transaction_id, "trade_type": o.trade_type,
                    "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "OTHERS",
                    "attach": o.attach, "success_time": _iso(o.success_time),
                    "payer": {"openid": o.openid},
                    "amount": {"total": o.total, "payer_total": o.total, "currency": "CNY",
                               "payer_currency": "CNY"}}
        return self.notification(mchid=o.mchid, event_type="TRANSACTION.SUCCESS",
                                 original_type="transaction", summary="支付成功",
                                 resource=resource, **overrides)

    def refund_notification(self, out_refund_no: str, *, mchid: str | None = None,
                            **overrides: Any) -> tuple[dict[str, str], bytes]:
        r = self.refunds[(mchid or next(iter(self.merchants)), out_refund_no)]
        assert r.status in ("SUCCESS", "CLOSED", "ABNORMAL"), "complete_refund() first"
        resource = {"mchid": r.mchid, "out_trade_no": r.out_trade_no,
                    "transaction_id": r.transaction_id, "out_refund_no": r.out_refund_no,
                    "refund_id": r.refund_id, "refund_status": r.status,
                    "user_received_account": "支付用户零钱",
                    "amount": {"total": r.total, "refund": r.refund, "payer_total": r.total,
                               "payer_refund": r.refund}}
        if r.success_time:
            resource["success_time"] = _iso(r.success_time)
        event = {"SUCCESS": "REFUND.SUCCESS", "CLOSED": "REFUND.CLOSED"}.get(r.status, "REFUND.ABNORMAL")
        summary = {"SUCCESS": "退款成功", "CLOSED": "退款关闭"}.get(r.status, "退款异常")
        return self.notification(mchid=r.mchid, event_type=event, original_type="refund",
                                 summary=summary, resource=resource, **overrides)

    @staticmethod
    def deliver(url: str, headers: dict[str, str], body: bytes, timeout: float = 10) -> tuple[int, bytes]:
        """POST a notification to a notify URL, as WeChat does."""
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def verify_jsapi_pay_sign(self, package: dict[str, str], mchid: str | None = None) -> bool:
        """What the WeChat client checks before showing the payment sheet."""
        merchant = self.merchants[mchid or next(iter(self.merchants))]
        message = (f"{package['appId']}\n{package['timeStamp']}\n{package['nonceStr']}\n"
                   f"{package['package']}\n").encode()
        try:
            merchant.public_key.verify(base64.b64decode(package["paySign"]), message,
                                       padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return package["appId"] == merchant.appid and package["signType"] == "RSA"


def _json(status: int, payload: dict) -> _Reply:
    return _Reply(status, json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())


def _body(raw: bytes) -> dict:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "PARAM_ERROR", "请求体不是合法的JSON") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "PARAM_ERROR", "请求体不是合法的JSON对象")
    return data
