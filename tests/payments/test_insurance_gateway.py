"""The insurer adapter (`payments.insurance_gateway`) against a local fake insurer. No database."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from payments.insurance import (
    BillItem,
    EmptyBill,
    InsurancePolicy,
    InsuranceType,
    InvalidAmount,
    SchemeTerms,
    UnknownInsuranceType,
    YearToDate,
    settle,
    settlement_to_dict,
)
from payments.insurance_gateway import (
    SIGNATURE_HEADER,
    HttpInsuranceGateway,
    InsuranceAuthFailed,
    InsuranceBadResponse,
    InsuranceGateway,
    InsuranceRejected,
    InsuranceUnavailable,
    SettlementStatus,
    parse_signature_header,
    request_signature,
    response_signature,
    sign_request_headers,
)

from .fake_insurer import FakeInsurer

KEY = "test-insurer-key"
POLICY = InsurancePolicy(
    employee=SchemeTerms(deductible_fen=10_000, ratio_bp=8_000, annual_cap_fen=100_000),
    resident=SchemeTerms(deductible_fen=5_000, ratio_bp=6_000, annual_cap_fen=50_000),
    class_b_pre_self_pay_bp=1_000,
)
BILL = [BillItem("A", 20_000, "西药"), BillItem("B", 10_001, "CT"), BillItem("C", 3_000, "营养品")]


@pytest.fixture
def insurer():
    with FakeInsurer(api_key=KEY, policy=POLICY) as fake:
        yield fake


@pytest.fixture
def gateway(insurer):
    return HttpInsuranceGateway(insurer.base_url, KEY, timeout=5)


def pre_settle(gateway, bill_no="B1", patient_id="P1", insurance_type="employee", items=BILL):
    return gateway.pre_settle(bill_no=bill_no, patient_id=patient_id, insurance_type=insurance_type,
                              items=items)


def raw_call(insurer, method, path, payload=None, *, key=KEY, header=None, body=None):
    """A hand-made request, to test the protocol itself rather than the adapter."""
    if body is None:
        body = json.dumps(payload).encode() if payload is not None else b""
    headers = {"Content-Type": "application/json"}
    nonce = ""
    if header is None:
        signed, nonce = sign_request_headers(key, method, path, body)
        headers.update(signed)
    elif header:
        headers[SIGNATURE_HEADER] = header
    request = urllib.request.Request(insurer.base_url + path, data=body if method == "POST" else None,
                                     method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, json.loads(r.read()), r.headers.get(SIGNATURE_HEADER), nonce
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers.get(SIGNATURE_HEADER), nonce


# --------------------------------------------------------------------------- the flow


def test_insurance_gateway_pre_settle_is_the_insurers_split_and_reserves_it(insurer, gateway):
    insurer.set_year_to_date("P1", YearToDate(4_000, 0))

    result = pre_settle(gateway)

    expected = settle(BILL, insurance_type="employee", policy=POLICY, year_to_date=YearToDate(4_000, 0))
    assert result.status is SettlementStatus.PENDING
    assert result.settlement_id and result.bill_no == "B1"
    assert result.settlement == expected
    assert result.settlement.total_fen == result.settlement.insurance_fen + result.settlement.self_pay_fen
    assert [line.name for line in result.settlement.lines] == ["西药", "CT", "营养品"]
    # reserved at once: the next bill sees the deductible met and the insurance used
    assert insurer.year_to_date("P1") == expected.year_to_date_after
    assert isinstance(gateway, InsuranceGateway)


def test_insurance_gateway_settle_confirms_and_is_idempotent(insurer, gateway):
    pending = pre_settle(gateway)

    settled = gateway.settle(pending.settlement_id)
    again = gateway.settle(pending.settlement_id)

    assert settled.status is again.status is SettlementStatus.SETTLED
    assert settled.settlement == again.settlement == pending.settlement
    assert gateway.query(pending.settlement_id).status is SettlementStatus.SETTLED
    assert insurer.year_to_date("P1") == pending.settlement.year_to_date_after


def test_insurance_gateway_reverse_after_failed_self_pay_releases_the_reservation(insurer, gateway):
    insurer.set_year_to_date("P1", YearToDate(2_000, 500))
    pending = pre_settle(gateway)
    assert insurer.year_to_date("P1") != YearToDate(2_000, 500)

    reversed_ = gateway.reverse(pending.settlement_id)
    again = gateway.reverse(pending.settlement_id)

    assert reversed_.status is again.status is SettlementStatus.REVERSED
    assert insurer.year_to_date("P1") == YearToDate(2_000, 500)
    with pytest.raises(InsuranceRejected) as caught:
        gateway.settle(pending.settlement_id)
    assert caught.value.insurer_code == "already_reversed"
    assert caught.value.code == "insurance_rejected"


def test_insurance_gateway_reverse_of_a_settled_bill_refunds_the_year(insurer, gateway):
    pending = pre_settle(gateway)
    gateway.settle(pending.settlement_id)

    assert gateway.reverse(pending.settlement_id).status is SettlementStatus.REVERSED
    assert insurer.year_to_date("P1") == YearToDate(0, 0)


def test_insurance_gateway_year_to_date_is_per_patient(insurer, gateway):
    first = pre_settle(gateway, bill_no="B1", patient_id="P1", items=[BillItem("A", 25_000)])
    second = pre_settle(gateway, bill_no="B2", patient_id="P1", items=[BillItem("A", 25_000)])
    other = pre_settle(gateway, bill_no="B3", patient_id="P2", items=[BillItem("A", 25_000)])

    assert (first.settlement.deductible_fen, first.settlement.insurance_fen) == (10_000, 12_000)
    assert (second.settlement.deductible_fen, second.settlement.insurance_fen) == (0, 20_000)
    assert other.settlement == first.settlement
    assert insurer.year_to_date("P1") == YearToDate(10_000, 32_000)


def test_insurance_gateway_bills_in_flight_never_pass_the_cap(insurer, gateway):
    insurer.set_year_to_date("P1", YearToDate(10_000, 90_000))

    one = pre_settle(gateway, bill_no="B1", items=[BillItem("A", 10_000)])
    two = pre_settle(gateway, bill_no="B2", items=[BillItem("A", 10_000)])
    three = pre_settle(gateway, bill_no="B3", items=[BillItem("A", 10_000)])

    assert [x.settlement.insurance_fen for x in (one, two, three)] == [8_000, 2_000, 0]
    assert [x.settlement.over_cap_fen for x in (one, two, three)] == [0, 6_000, 8_000]
    assert insurer.year_to_date("P1").insurance_paid_fen == 100_000


def test_insurance_gateway_resident_and_none(insurer, gateway):
    resident = pre_settle(gateway, bill_no="B1", insurance_type=InsuranceType.RESIDENT,
                          items=[BillItem("A", 30_000)])
    uninsured = pre_settle(gateway, bill_no="B2", patient_id="P2", insurance_type="none")

    assert (resident.settlement.ratio_bp, resident.settlement.insurance_fen) == (6_000, 15_000)
    assert (uninsured.settlement.insurance_fen, uninsured.settlement.self_pay_fen) == (0, 33_001)
    assert insurer.year_to_date("P2") == YearToDate(0, 0)


def test_insurance_gateway_pre_settle_is_idempotent_on_the_bill_number(insurer, gateway):
    first = pre_settle(gateway)
    again = pre_settle(gateway)

    assert again.settlement_id == first.settlement_id
    assert again.settlement == first.settlement
    with pytest.raises(InsuranceRejected) as caught:
        pre_settle(gateway, items=[BillItem("A", 1)])
    assert caught.value.insurer_code == "bill_conflict"

    gateway.reverse(first.settlement_id)
    retry = pre_settle(gateway)  # the patient tries to pay again: a new reservation
    assert retry.settlement_id != first.settlement_id
    assert retry.settlement == first.settlement
    assert retry.status is SettlementStatus.PENDING


def test_insurance_gateway_unconfirmed_settlement_expires(insurer, gateway):
    pending = pre_settle(gateway)
    insurer.advance(insurer.pending_ttl_seconds + 1)

    assert gateway.query(pending.settlement_id).status is SettlementStatus.REVERSED
    assert insurer.year_to_date("P1") == YearToDate(0, 0)
    with pytest.raises(InsuranceRejected) as caught:
        gateway.settle(pending.settlement_id)
    assert caught.value.insurer_code == "expired"


def test_insurance_gateway_unknown_settlement(gateway):
    with pytest.raises(InsuranceRejected) as caught:
        gateway.settle("INSnope")

    assert caught.value.insurer_code == "not_found"
    assert caught.value.details["status"] == 404


# --------------------------------------------------------------------------- failures


def test_insurance_gateway_failed_settle_then_reverse(insurer, gateway):
    """The insurer is down when we confirm: the caller gives up and reverses."""
    pending = pre_settle(gateway)
    insurer.fail("settle", status=503)

    with pytest.raises(InsuranceUnavailable) as caught:
        gateway.settle(pending.settlement_id)
    assert caught.value.details["insurer_code"] == "system_busy"
    assert gateway.query(pending.settlement_id).status is SettlementStatus.PENDING

    assert gateway.reverse(pending.settlement_id).status is SettlementStatus.REVERSED
    assert insurer.year_to_date("P1") == YearToDate(0, 0)


def test_insurance_gateway_lost_answer_is_repeated_safely(insurer, gateway):
    """The insurer settled but its answer was lost: repeating settle gives the same result."""
    pending = pre_settle(gateway)
    insurer.fail("settle", status=502, after=True)

    with pytest.raises(InsuranceUnavailable):
        gateway.settle(pending.settlement_id)

    assert insurer.record(pending.settlement_id)["status"] == "settled"
    assert gateway.settle(pending.settlement_id).status is SettlementStatus.SETTLED
    assert insurer.year_to_date("P1") == pending.settlement.year_to_date_after


def test_insurance_gateway_lost_pre_settle_answer_is_repeated_safely(insurer, gateway):
    insurer.fail("pre_settle", after=True)

    with pytest.raises(InsuranceUnavailable):
        pre_settle(gateway)
    reserved = insurer.year_to_date("P1")
    retry = pre_settle(gateway)

    assert insurer.year_to_date("P1") == reserved == retry.settlement.year_to_date_after  # reserved once


def test_insurance_gateway_failed_pre_settle_reserves_nothing(insurer, gateway):
    insurer.fail("pre_settle", status=500, code="internal")

    with pytest.raises(InsuranceUnavailable):
        pre_settle(gateway)

    assert insurer.year_to_date("P1") == YearToDate(0, 0)
    assert pre_settle(gateway).status is SettlementStatus.PENDING


def test_insurance_gateway_timeout_is_unavailable(insurer):
    gateway = HttpInsuranceGateway(insurer.base_url, KEY, timeout=0.2)
    pending = pre_settle(gateway)
    insurer.fail("settle", delay=1.0, after=True)

    with pytest.raises(InsuranceUnavailable):
        gateway.settle(pending.settlement_id)


def test_insurance_gateway_insurer_not_reachable():
    gateway = HttpInsuranceGateway("http://127.0.0.1:9", KEY, timeout=1)

    with pytest.raises(InsuranceUnavailable):
        pre_settle(gateway)


def test_insurance_gateway_wrong_key_is_refused_and_changes_nothing(insurer):
    gateway = HttpInsuranceGateway(insurer.base_url, "not-the-key")

    with pytest.raises(InsuranceAuthFailed):
        pre_settle(gateway)

    assert insurer.year_to_date("P1") == YearToDate(0, 0)
    assert insurer.requests[-1] == ("POST", "/v1/pre-settlements", 401)


def test_insurance_gateway_no_key_is_a_configuration_error():
    with pytest.raises(InsuranceAuthFailed):
        HttpInsuranceGateway("http://127.0.0.1:9", "")


def test_insurance_gateway_unverifiable_answer_is_not_trusted(insurer, gateway):
    insurer.corrupt_next("signature")

    with pytest.raises(InsuranceBadResponse) as caught:
        pre_settle(gateway)
    assert caught.value.code == "insurance_bad_response"


def test_insurance_gateway_answer_that_does_not_add_up_is_not_trusted(insurer, gateway):
    pending = pre_settle(gateway)
    insurer.corrupt_next("amounts")

    with pytest.raises(InsuranceBadResponse) as caught:
        gateway.query(pending.settlement_id)
    assert caught.value.details["reason"] == "insurance_inconsistent_settlement"


@pytest.mark.parametrize(("items", "error"), [
    pytest.param([], EmptyBill, id="empty"),
    pytest.param([BillItem("A", -1)], InvalidAmount, id="negative"),
    pytest.param([BillItem("A", 1.5)], InvalidAmount, id="float"),
])
def test_insurance_gateway_bad_bill_is_refused_before_sending(insurer, gateway, items, error):
    with pytest.raises(error) as caught:
        pre_settle(gateway, items=items)

    assert isinstance(caught.value, ValueError)
    assert insurer.requests == []


def test_insurance_gateway_unknown_insurance_type_is_refused_before_sending(insurer, gateway):
    with pytest.raises(UnknownInsuranceType):
        pre_settle(gateway, insurance_type="commercial")

    assert insurer.requests == []


# --------------------------------------------------------------------------- the protocol itself


PAYLOAD = {"bill_no": "R1", "patient_id": "P9", "insurance_type": "employee",
           "items": [{"item_class": "A", "amount_fen": 20_000, "name": "x"}]}


def test_insurance_gateway_protocol_answer_shape_and_signature(insurer):
    status, body, signature, nonce = raw_call(insurer, "POST", "/v1/pre-settlements", PAYLOAD)

    assert status == 201
    assert set(body) == {"settlement_id", "bill_no", "status", "settlement"}
    assert (body["bill_no"], body["status"]) == ("R1", "pending")
    expected = settle([BillItem("A", 20_000, "x")], insurance_type="employee", policy=POLICY,
                      year_to_date=YearToDate())
    assert body["settlement"] == settlement_to_dict(expected)
    fields = parse_signature_header(signature)
    raw = json.dumps(body, ensure_ascii=False).encode()
    assert fields["sig"] == response_signature(KEY, 201, nonce, fields["t"], raw)


@pytest.mark.parametrize(("make_header", "code"), [
    pytest.param(lambda body: "", "bad_signature", id="missing"),
    pytest.param(lambda body: "t=1,nonce", "bad_signature", id="malformed"),
    pytest.param(lambda body: sign_request_headers("other-key", "POST", "/v1/pre-settlements", body)[0][
        SIGNATURE_HEADER], "bad_signature", id="other_key"),
    pytest.param(lambda body: sign_request_headers(KEY, "POST", "/v1/pre-settlements", body + b" ")[0][
        SIGNATURE_HEADER], "bad_signature", id="body_tampered"),
    pytest.param(lambda body: sign_request_headers(KEY, "POST", "/v1/settlements/X/settle", body)[0][
        SIGNATURE_HEADER], "bad_signature", id="other_path"),
    pytest.param(lambda body: "t=1000,nonce=abc,sig=" + request_signature(
        KEY, "POST", "/v1/pre-settlements", "1000", "abc", body), "stale_timestamp", id="stale"),
])
def test_insurance_gateway_protocol_rejects_bad_signatures(insurer, make_header, code):
    body = json.dumps(PAYLOAD).encode()

    status, answer, _, _ = raw_call(insurer, "POST", "/v1/pre-settlements", header=make_header(body),
                                    body=body)

    assert (status, answer["code"]) == (401, code)
    assert insurer.year_to_date("P9") == YearToDate(0, 0)


def test_insurance_gateway_protocol_rejects_a_replayed_request(insurer):
    body = json.dumps(PAYLOAD).encode()
    header = sign_request_headers(KEY, "POST", "/v1/pre-settlements", body)[0][SIGNATURE_HEADER]

    first = raw_call(insurer, "POST", "/v1/pre-settlements", header=header, body=body)
    replay = raw_call(insurer, "POST", "/v1/pre-settlements", header=header, body=body)

    assert first[0] == 201
    assert (replay[0], replay[1]["code"]) == (401, "replayed_nonce")


@pytest.mark.parametrize(("payload", "code"), [
    pytest.param(dict(PAYLOAD, items=[]), "insurance_empty_bill", id="empty"),
    pytest.param(dict(PAYLOAD, items=[{"item_class": "A", "amount_fen": -1}]), "insurance_invalid_amount",
                 id="negative"),
    pytest.param(dict(PAYLOAD, items=[{"item_class": "Z", "amount_fen": 1}]), "insurance_unknown_item_class",
                 id="class"),
    pytest.param(dict(PAYLOAD, insurance_type="gold"), "insurance_unknown_type", id="type"),
    pytest.param(dict(PAYLOAD, bill_no=""), "invalid_request", id="no_bill_no"),
    pytest.param(dict(PAYLOAD, items="A"), "invalid_request", id="items_not_a_list"),
])
def test_insurance_gateway_protocol_rejects_bad_bills(insurer, payload, code):
    status, answer, _, _ = raw_call(insurer, "POST", "/v1/pre-settlements", payload)

    assert (status, answer["code"]) == (400, code)
    assert insurer.year_to_date("P9") == YearToDate(0, 0)


def test_insurance_gateway_protocol_rejects_invalid_json(insurer):
    status, answer, _, _ = raw_call(insurer, "POST", "/v1/pre-settlements", body=b"{nope")

    assert (status, answer["code"]) == (400, "invalid_json")
