"""The WeChat Pay v3 adapter against a local fake of the API, over real HTTP.

No database: the adapter is plain code around HTTP. Keys are generated per session with
`cryptography`: the merchant's API key pair, the platform's key with a self-signed certificate,
and a second platform key for public-key mode.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from payments.models import PaymentSettings
from payments.providers import wechatpay_v3
from payments.providers.base import (
    CallbackAck,
    InvalidSignature,
    PaymentRequest,
    ProviderError,
    StatementLine,
)
from payments.providers.wechatpay_v3 import (
    CST,
    WechatPayConfig,
    WechatPayProvider,
    parse_trade_bill,
)
from tests.payments.fake_wechatpay import (
    BILL_HEADER,
    BILL_SUMMARY_HEADER,
    FakeWeChatPay,
    certificate_pem,
    new_rsa_key,
    private_pem,
    public_pem,
    self_signed_certificate,
)

MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
APIV3_KEY = "a12d3924fd499edac8a5efc3e9a7c1b2"
MERCHANT_SERIAL = "444F4864EA9B34415A2B6D3F0C7E11C2AB64B2C9"
NOTIFY = "https://alpha.example.cn/payments/notify/wechatpay_v3/"


@dataclass(frozen=True)
class Keys:
    merchant: rsa.RSAPrivateKey
    platform: rsa.RSAPrivateKey
    platform_cert: x509.Certificate
    platform_public_key: rsa.RSAPrivateKey
    attacker: rsa.RSAPrivateKey


@pytest.fixture(scope="session")
def keys() -> Keys:
    platform = new_rsa_key()
    return Keys(merchant=new_rsa_key(), platform=platform,
                platform_cert=self_signed_certificate(platform), platform_public_key=new_rsa_key(),
                attacker=new_rsa_key())


@pytest.fixture
def fake(keys):
    server = FakeWeChatPay(platform_key=keys.platform, platform_certificate=keys.platform_cert,
                           public_key=keys.platform_public_key).start()
    server.add_merchant(mchid=MCHID, appid=APPID, serial_no=MERCHANT_SERIAL,
                        public_key=keys.merchant.public_key(), apiv3_key=APIV3_KEY)
    yield server
    server.stop()
    wechatpay_v3.forget_platform_certificates()


@pytest.fixture
def config(fake, keys) -> WechatPayConfig:
    return WechatPayConfig(mchid=MCHID, appid=APPID, cert_serial_no=MERCHANT_SERIAL,
                           private_key=private_pem(keys.merchant), apiv3_key=APIV3_KEY,
                           base_url=fake.base_url)


@pytest.fixture
def wx(config) -> WechatPayProvider:
    return WechatPayProvider(config)


_numbers = iter(range(10**6))


def _out_trade_no() -> str:
    return f"P{time.strftime('%y%m%d%H%M%S')}{next(_numbers):06d}"


def _request(amount_fen=12345, description="挂号费 内科 张医生", payer_ref="", no=None) -> PaymentRequest:
    return PaymentRequest(out_trade_no=no or _out_trade_no(), amount_fen=amount_fen,
                          description=description, notify_url=NOTIFY,
                          return_url="https://alpha.example.cn/back/",
                          expires_at=datetime.now(UTC) + timedelta(minutes=15), payer_ref=payer_ref)


def _paid_order(wx, fake, amount_fen=12345, at=None, description="挂号费 内科 张医生"):
    request = _request(amount_fen, description=description)
    wx.create_payment(request)
    fake.pay(request.out_trade_no, at=at)
    return request.out_trade_no


# --------------------------------------------------------------------------- request signing


def test_wechatpay_request_signature_accepted_by_fake(wx, fake):
    assert wx.query_order("P-does-not-exist").status == "not_found"

    seen = fake.calls("GET", "/v3/pay/transactions/out-trade-no/")[-1]
    assert seen.status == 404  # authenticated, then "order does not exist" (not 401)
    assert seen.target == f"/v3/pay/transactions/out-trade-no/P-does-not-exist?mchid={MCHID}"
    auth = seen.headers["Authorization"]
    assert re.fullmatch(r'WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str="[0-9A-F]{32}",'
                        r'signature="[A-Za-z0-9+/=]+",timestamp="\d{10}",'
                        rf'serial_no="{MERCHANT_SERIAL}"', auth)
    assert seen.headers["Accept"] == "application/json" and seen.headers["User-Agent"]


def test_wechatpay_tampered_request_signature_refused(wx, fake):
    prepared = wx._prepare("GET", f"{fake.base_url}/v3/pay/transactions/out-trade-no/P123456?mchid={MCHID}")
    auth = prepared.headers["Authorization"]
    good = re.search(r'signature="([^"]+)"', auth).group(1)
    raw = bytearray(base64.b64decode(good))
    raw[10] ^= 0x01
    tampered = auth.replace(good, base64.b64encode(bytes(raw)).decode())

    def send(authorization: str, url: str = prepared.url):
        req = urllib.request.Request(url, headers={"Authorization": authorization,
                                                   "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    assert send(auth)[0] == 404  # the untouched header is accepted
    assert send(tampered) == (401, {"code": "SIGN_ERROR", "message": "签名错误，验签失败"})
    # A valid signature replayed against another path does not verify either.
    assert send(auth, prepared.url.replace("P123456", "P654321"))[0] == 401


def test_wechatpay_wrong_merchant_key_raises_provider_error(config, fake, keys):
    impostor = WechatPayProvider(replace(config, private_key=private_pem(keys.attacker)))
    with pytest.raises(ProviderError) as caught:
        impostor.create_payment(_request())
    assert caught.value.details["status"] == 401
    assert caught.value.details["provider_code"] == "SIGN_ERROR"


def test_wechatpay_response_with_bad_signature_refused(wx, fake):
    wx.query_order("P-warm-up")  # certificates downloaded and trusted
    fake.corrupt_response_signatures = True
    with pytest.raises(ProviderError, match="response rejected"):
        wx.create_payment(_request())


# --------------------------------------------------------------------------- payments


def test_wechatpay_native_payment_returns_code_url(wx, fake):
    request = _request(amount_fen=12345)
    start = wx.create_payment(request)

    assert start.cashier_url is None
    assert start.prepay["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    order = fake.orders[(MCHID, request.out_trade_no)]
    assert (order.trade_type, order.total, order.currency) == ("NATIVE", 12345, "CNY")
    assert order.notify_url == NOTIFY and order.appid == APPID
    assert order.time_expire.endswith("+08:00")
    assert datetime.fromisoformat(order.time_expire) == request.expires_at.replace(microsecond=0)
    # The platform certificate came from /v3/certificates, decrypted with the APIv3 key.
    assert len(fake.calls("GET", "/v3/certificates")) == 1
    # Asking again with the same parameters is idempotent at WeChat.
    assert wx.create_payment(request).prepay == start.prepay


def test_wechatpay_jsapi_payment_returns_signed_package(wx, fake):
    request = _request(amount_fen=800, payer_ref="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    start = wx.create_payment(request)

    order = fake.orders[(MCHID, request.out_trade_no)]
    assert order.trade_type == "JSAPI" and order.openid == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    package = start.prepay
    assert start.cashier_url is None
    assert set(package) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert package["package"] == f"prepay_id={order.prepay_id}"
    assert fake.verify_jsapi_pay_sign(package)
    assert not fake.verify_jsapi_pay_sign({**package, "package": "prepay_id=wx-other"})


def test_wechatpay_create_payment_error_is_provider_error(wx, fake):
    request = _request()
    wx.create_payment(request)
    with pytest.raises(ProviderError) as caught:
        wx.create_payment(replace(request, amount_fen=1))  # same number, different order
    assert caught.value.details["provider_code"] == "OUT_TRADE_NO_USED"


def test_wechatpay_query_reports_created_paid_and_not_found(wx, fake):
    request = _request(amount_fen=990)
    wx.create_payment(request)
    created = wx.query_order(request.out_trade_no)
    assert (created.status, created.amount_fen, created.provider_txn_id) == ("created", 0, "")

    paid_at = datetime(2026, 3, 2, 1, 30, 5, tzinfo=UTC)
    order = fake.pay(request.out_trade_no, at=paid_at)
    paid = wx.query_order(request.out_trade_no)
    assert paid.status == "paid" and paid.amount_fen == 990
    assert paid.provider_txn_id == order.transaction_id and paid.paid_at == paid_at

    assert wx.query_order("P-never-created").status == "not_found"


def test_wechatpay_close_order_closes_and_is_idempotent(wx, fake):
    request = _request()
    wx.create_payment(request)
    wx.close_order(request.out_trade_no)
    assert fake.orders[(MCHID, request.out_trade_no)].trade_state == "CLOSED"
    assert wx.query_order(request.out_trade_no).status == "closed"
    close_path = f"/v3/pay/transactions/out-trade-no/{request.out_trade_no}/close"
    assert fake.calls("POST", close_path)[0].status == 204

    wx.close_order(request.out_trade_no)  # ORDER_CLOSED: fine
    wx.close_order("P-never-created")  # ORDER_NOT_EXIST: fine

    paid = _paid_order(wx, fake)
    with pytest.raises(ProviderError) as caught:
        wx.close_order(paid)
    assert caught.value.details["provider_code"] == "ORDERPAID"


# --------------------------------------------------------------------------- refunds


def test_wechatpay_refund_then_refund_callback(wx, fake):
    out_trade_no = _paid_order(wx, fake, amount_fen=12345)

    result = wx.refund(out_trade_no=out_trade_no, out_refund_no="R20260302000001", amount_fen=3000,
                       total_fen=12345, reason="患者取消挂号", notify_url=NOTIFY)
    assert result.status == "pending" and result.provider_refund_id.startswith("50")
    sent = json.loads(fake.calls("POST", "/v3/refund/domestic/refunds")[-1].body)
    assert sent["amount"] == {"refund": 3000, "total": 12345, "currency": "CNY"}
    assert sent["out_trade_no"] == out_trade_no and sent["notify_url"] == NOTIFY

    # Re-sending the same refund number is the same refund (the sweeper relies on this).
    again = wx.refund(out_trade_no=out_trade_no, out_refund_no="R20260302000001", amount_fen=3000,
                      total_fen=12345, reason="患者取消挂号", notify_url=NOTIFY)
    assert again.provider_refund_id == result.provider_refund_id

    fake.complete_refund("R20260302000001")
    headers, body = fake.refund_notification("R20260302000001")
    notice = wx.parse_callback(headers, body)
    assert notice.kind == "refund" and notice.status == "succeeded"
    assert notice.amount_fen == 3000 and notice.currency == "CNY"
    assert notice.out_trade_no == out_trade_no and notice.out_refund_no == "R20260302000001"
    assert notice.provider_refund_id == result.provider_refund_id
    assert notice.occurred_at is not None and notice.occurred_at.tzinfo is not None
    assert notice.raw["event_type"] == "REFUND.SUCCESS"
    assert wx.query_order(out_trade_no).status == "refunded"


def test_wechatpay_refund_rejections_are_failed_results(wx, fake):
    out_trade_no = _paid_order(wx, fake, amount_fen=1000)
    too_much = wx.refund(out_trade_no=out_trade_no, out_refund_no="R-too-much-000001", amount_fen=1001,
                         total_fen=1000, reason="", notify_url=NOTIFY)
    assert too_much.status == "failed" and too_much.failure_reason.startswith("INVALID_REQUEST")

    unknown = wx.refund(out_trade_no="P-never-created", out_refund_no="R-unknown-0000001",
                        amount_fen=1, total_fen=1, reason="x", notify_url=NOTIFY)
    assert unknown.status == "failed" and unknown.failure_reason.startswith("RESOURCE_NOT_EXISTS")


def test_wechatpay_refund_closed_callback_is_failed_notice(wx, fake):
    out_trade_no = _paid_order(wx, fake, amount_fen=500)
    wx.refund(out_trade_no=out_trade_no, out_refund_no="R-closed-00000001", amount_fen=500,
              total_fen=500, reason="x", notify_url=NOTIFY)
    fake.complete_refund("R-closed-00000001", status="CLOSED")
    notice = wx.parse_callback(*fake.refund_notification("R-closed-00000001"))
    assert (notice.kind, notice.status, notice.raw["event_type"]) == ("refund", "failed", "REFUND.CLOSED")


# --------------------------------------------------------------------------- callbacks


def test_wechatpay_payment_callback_decrypts_to_notice(wx, fake):
    paid_at = datetime(2026, 3, 2, 9, 15, 0, tzinfo=CST)
    out_trade_no = _paid_order(wx, fake, amount_fen=12345, at=paid_at)
    order = fake.orders[(MCHID, out_trade_no)]

    headers, body = fake.transaction_notification(out_trade_no)
    notice = wx.parse_callback(headers, body)

    assert notice.kind == "payment" and notice.status == "paid"
    assert notice.amount_fen == 12345 and notice.currency == "CNY"
    assert notice.out_trade_no == out_trade_no
    assert notice.provider_txn_id == order.transaction_id
    assert notice.occurred_at == paid_at
    assert notice.notification_id == json.loads(body)["id"]
    assert notice.raw["resource"]["payer"]["openid"] == order.openid  # decrypted in raw


def test_wechatpay_callback_posted_over_http_verifies(wx, fake):
    """Deliver the callback to a real HTTP endpoint, then verify what arrived there."""
    received: list[tuple[dict[str, str], bytes]] = []

    class Notify(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - stdlib name
            received.append((dict(self.headers.items()),
                             self.rfile.read(int(self.headers["Content-Length"]))))
            ack = wx.ack(True)
            self.send_response(ack.status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Notify)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        out_trade_no = _paid_order(wx, fake, amount_fen=2000)
        headers, body = fake.transaction_notification(out_trade_no)
        status, _ = fake.deliver(f"http://127.0.0.1:{server.server_port}/notify", headers, body)
    finally:
        server.shutdown()
        server.server_close()
    assert status == 204
    got_headers, got_body = received[0]
    assert got_body == body
    notice = wx.parse_callback(got_headers, got_body)
    assert (notice.out_trade_no, notice.amount_fen) == (out_trade_no, 2000)
    # Django's request.META spelling works too.
    meta = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in got_headers.items()}
    assert wx.parse_callback(meta, got_body).notification_id == notice.notification_id


def test_wechatpay_callback_forged_signature_rejected(wx, fake, keys):
    out_trade_no = _paid_order(wx, fake)
    headers, body = fake.transaction_notification(out_trade_no, key=keys.attacker)
    with pytest.raises(InvalidSignature, match="does not verify"):
        wx.parse_callback(headers, body)


def test_wechatpay_callback_tampered_body_rejected(wx, fake):
    out_trade_no = _paid_order(wx, fake)
    headers, body = fake.transaction_notification(out_trade_no)
    # A replayed notification under a new id (to slip past idempotency) is otherwise valid.
    tampered = body.replace(json.loads(body)["id"].encode(), b"00000000-0000-4000-8000-000000000000")
    assert tampered != body
    with pytest.raises(InvalidSignature, match="does not verify"):
        wx.parse_callback(headers, tampered)


def test_wechatpay_callback_wrong_apiv3_key_rejected(wx, fake):
    out_trade_no = _paid_order(wx, fake)
    headers, body = fake.transaction_notification(out_trade_no, apiv3_key="0" * 32)
    with pytest.raises(InvalidSignature, match="decrypt"):
        wx.parse_callback(headers, body)


def test_wechatpay_callback_stale_timestamp_rejected(wx, fake):
    out_trade_no = _paid_order(wx, fake)
    fresh = fake.transaction_notification(out_trade_no, timestamp=int(time.time()) - 290)
    assert wx.parse_callback(*fresh).out_trade_no == out_trade_no  # inside the window
    for skew in (-301, -3600, +301):
        headers, body = fake.transaction_notification(out_trade_no, timestamp=int(time.time()) + skew)
        with pytest.raises(InvalidSignature, match="5-minute window"):
            wx.parse_callback(headers, body)


def test_wechatpay_callback_missing_headers_rejected(wx, fake):
    out_trade_no = _paid_order(wx, fake)
    headers, body = fake.transaction_notification(out_trade_no)
    for name in ("Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial"):
        partial = {k: v for k, v in headers.items() if k != name}
        with pytest.raises(InvalidSignature, match="missing"):
            wx.parse_callback(partial, body)
    with pytest.raises(InvalidSignature, match="signature type"):
        wx.parse_callback({**headers, "Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}, body)


def test_wechatpay_callback_for_another_merchant_rejected(wx, fake, keys):
    """Same platform key and APIv3 key, different mchid: still not ours."""
    fake.add_merchant(mchid="1900000999", appid=APPID, serial_no=MERCHANT_SERIAL,
                      public_key=keys.merchant.public_key(), apiv3_key=APIV3_KEY)
    out_trade_no = _paid_order(wx, fake)
    fake.orders[(MCHID, out_trade_no)].mchid = "1900000999"
    headers, body = fake.transaction_notification(out_trade_no, mchid=MCHID)
    with pytest.raises(InvalidSignature, match="another merchant"):
        wx.parse_callback(headers, body)


def test_wechatpay_unknown_serial_rejected_without_download_storm(wx, fake, keys):
    out_trade_no = _paid_order(wx, fake)
    downloads = len(fake.calls("GET", "/v3/certificates"))
    for _ in range(5):
        headers, body = fake.transaction_notification(out_trade_no, key=keys.attacker,
                                                      serial="7A1F00000000000000000000000000000000BEEF")
        with pytest.raises(InvalidSignature, match="unknown platform key"):
            wx.parse_callback(headers, body)
    headers, body = fake.transaction_notification(out_trade_no, serial="PUB_KEY_ID_not_ours")
    with pytest.raises(InvalidSignature, match="unknown platform key"):
        wx.parse_callback(headers, body)
    assert len(fake.calls("GET", "/v3/certificates")) <= downloads + 1


def test_wechatpay_platform_certificate_rotation_is_picked_up(wx, fake):
    out_trade_no = _paid_order(wx, fake)  # old certificate cached
    old_serial = fake.platform_serial
    new_serial = fake.rotate_platform_certificate()
    assert new_serial != old_serial

    headers, body = fake.transaction_notification(out_trade_no)
    assert headers["Wechatpay-Serial"] == new_serial
    assert wx.parse_callback(headers, body).out_trade_no == out_trade_no
    assert len(fake.calls("GET", "/v3/certificates")) == 2
    # Another adapter instance of the same merchant shares the downloaded certificates.
    assert WechatPayProvider(wx.config).parse_callback(headers, body).out_trade_no == out_trade_no
    assert len(fake.calls("GET", "/v3/certificates")) == 2


def test_wechatpay_public_key_mode_needs_no_certificate_download(config, fake, keys):
    wx = WechatPayProvider(replace(config, platform_public_key=public_pem(keys.platform_public_key),
                                   platform_public_key_id=fake.public_key_id))
    request = _request(amount_fen=4200)
    assert wx.create_payment(request).prepay["code_url"]
    seen = fake.calls("POST", "/v3/pay/transactions/native")[-1]
    assert seen.headers["Wechatpay-Serial"] == fake.public_key_id

    fake.pay(request.out_trade_no)
    headers, body = fake.transaction_notification(request.out_trade_no, use_public_key=True)
    assert headers["Wechatpay-Serial"] == fake.public_key_id
    assert wx.parse_callback(headers, body).amount_fen == 4200
    assert fake.calls("GET", "/v3/certificates") == []


def test_wechatpay_pinned_platform_certificate_needs_no_download(config, fake, keys):
    wx = WechatPayProvider(replace(config, platform_certificates=(certificate_pem(keys.platform_cert),)))
    out_trade_no = _paid_order(wx, fake, amount_fen=77)
    assert wx.parse_callback(*fake.transaction_notification(out_trade_no)).amount_fen == 77
    assert fake.calls("GET", "/v3/certificates") == []


# --------------------------------------------------------------------------- statements


@pytest.mark.parametrize("gzipped", [True, False], ids=["gzip", "plain"])
def test_wechatpay_bill_download_parses_statement_lines(wx, fake, gzipped):
    fake.bill_gzip = gzipped
    day = date.today() - timedelta(days=1)
    at = datetime(day.year, day.month, day.day, 9, 30, 0, tzinfo=CST)
    first = _paid_order(wx, fake, amount_fen=12345, at=at, description="门诊缴费, 血常规 (含,逗号)")
    second = _paid_order(wx, fake, amount_fen=990, at=at + timedelta(hours=2))
    other_day = _paid_order(wx, fake, amount_fen=5, at=at - timedelta(days=1))
    refund = wx.refund(out_trade_no=first, out_refund_no="R-bill-000000001", amount_fen=3000,
                       total_fen=12345, reason="部分退款", notify_url=NOTIFY)
    fake.complete_refund("R-bill-000000001", at=at + timedelta(hours=5))
    pending = wx.refund(out_trade_no=second, out_refund_no="R-bill-000000002", amount_fen=990,
                        total_fen=990, reason="未完成", notify_url=NOTIFY)
    assert pending.status == "pending"

    lines = list(wx.fetch_statement(day))

    txn = {no: fake.orders[(MCHID, no)].transaction_id for no in (first, second)}
    assert lines == [
        StatementLine(occurred_at=at, out_trade_no=first, provider_txn_id=txn[first],
                      kind="payment", status="paid", amount_fen=12345),
        StatementLine(occurred_at=at + timedelta(hours=2), out_trade_no=second,
                      provider_txn_id=txn[second], kind="payment", status="paid", amount_fen=990),
        StatementLine(occurred_at=at + timedelta(hours=5), out_trade_no=first,
                      provider_txn_id=txn[first], kind="refund", status="refunded",
                      amount_fen=3000, out_refund_no="R-bill-000000001"),
    ]
    assert other_day not in {line.out_trade_no for line in lines}
    assert refund.provider_refund_id
    # Both the bill request and the file download were signed requests the fake accepted.
    bill_call = fake.calls("GET", "/v3/bill/tradebill")[-1]
    assert bill_call.target == f"/v3/bill/tradebill?bill_date={day.isoformat()}&bill_type=ALL&tar_type=GZIP"
    download = fake.calls("GET", "/v3/billdownload/file")[-1]
    assert download.status == 200 and download.headers["Authorization"].startswith("WECHATPAY2-")


def test_wechatpay_bill_hash_mismatch_raises(wx, fake):
    day = date.today() - timedelta(days=1)
    _paid_order(wx, fake, at=datetime(day.year, day.month, day.day, 12, tzinfo=CST))
    fake.corrupt_bill_hash = True
    with pytest.raises(ProviderError, match="hash"):
        list(wx.fetch_statement(day))


def test_wechatpay_bill_for_day_without_trades_is_empty(wx, fake):
    assert list(wx.fetch_statement(date(2026, 1, 1))) == []
    assert fake.calls("GET", "/v3/bill/tradebill")[-1].status == 400  # NO_STATEMENT_EXIST


def test_wechatpay_parse_trade_bill_skips_revoked_and_unfinished_refunds():
    def row(*, state, amount="0.00", order_amount="0.00", out_refund_no="0", refund="0.00",
            refund_status="", requested="0.00", no="P1"):
        fields = ["2026-03-01 23:59:59", APPID, MCHID, "0", "", "4200000001", no, "openid",
                  "NATIVE", state, "OTHERS", "CNY", amount, "0.00", "0", out_refund_no, refund,
                  "0.00", "ORIGINAL" if refund_status else "", refund_status, "商品", "", "0.00000",
                  "0.60%", order_amount, requested, ""]
        return ",".join("`" + f for f in fields) + "\r\n"

    text = ["\ufeff" + BILL_HEADER + "\r\n",
            row(state="SUCCESS", amount="1000.01", order_amount="1000.01"),
            row(state="REVOKED", amount="5.00", order_amount="5.00", no="P2"),
            row(state="REFUND", out_refund_no="R1", refund="0.50", refund_status="PROCESSING",
                requested="0.50"),
            row(state="REFUND", out_refund_no="R2", refund="0.01", refund_status="SUCCESS",
                requested="0.01"),
            BILL_SUMMARY_HEADER + "\r\n", "`4,`1005.01,`0.51,`0.00,`0.00000,`1005.01,`0.51\r\n"]
    lines = list(parse_trade_bill(text))
    assert [(x.kind, x.amount_fen, x.out_refund_no) for x in lines] == [
        ("payment", 100001, ""), ("refund", 1, "R2")]
    assert lines[0].occurred_at == datetime(2026, 3, 1, 23, 59, 59, tzinfo=CST)

    with pytest.raises(ProviderError):
        list(parse_trade_bill([BILL_HEADER + "\n", row(state="SUCCESS", amount="0.001",
                                                       order_amount="0.001")]))


# --------------------------------------------------------------------------- ack, configuration


def test_wechatpay_ack_shapes(wx):
    assert wx.ack(True) == CallbackAck(status=204, body=b"")
    failed = wx.ack(False, "signature verification failed")
    assert failed.status >= 400 and failed.content_type == "application/json"
    assert json.loads(failed.body) == {"code": "FAIL", "message": "signature verification failed"}
    assert json.loads(wx.ack(False).body)["code"] == "FAIL"


def test_wechatpay_config_from_settings(keys):
    row = PaymentSettings(provider=PaymentSettings.Provider.WECHATPAY_V3, wechat_mchid=MCHID,
                          wechat_appid=APPID, wechat_cert_serial_no=MERCHANT_SERIAL,
                          wechat_private_key=private_pem(keys.merchant), wechat_apiv3_key=APIV3_KEY,
                          wechat_base_url="")
    provider = WechatPayProvider.from_settings(row)
    assert provider.config.base_url == "https://api.mch.weixin.qq.com"
    assert (provider.config.mchid, provider.config.appid) == (MCHID, APPID)
    assert APIV3_KEY not in repr(provider.config) and "PRIVATE" not in repr(provider.config)

    row.wechat_base_url = "https://api2.mch.weixin.qq.com/"
    assert WechatPayConfig.from_settings(row).base_url == "https://api2.mch.weixin.qq.com"

    row.wechat_apiv3_key = ""
    with pytest.raises(ProviderError) as caught:
        WechatPayProvider.from_settings(row)
    assert caught.value.code == "payments_not_configured"
    assert caught.value.details == {"missing": ["apiv3_key"]}

    row.wechat_apiv3_key, row.wechat_private_key = APIV3_KEY, "not a key"
    with pytest.raises(ProviderError) as caught:
        WechatPayProvider.from_settings(row)
    assert caught.value.details == {"invalid": ["private_key"]}
