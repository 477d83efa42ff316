"""The insurance split (`payments.insurance`): pure arithmetic, no database.

Most cases use `P`, a policy with round numbers so the expected figures can be checked by
hand: employee deductible 10000, insurer 80 %, cap 100000; resident deductible 5000, 60 %,
cap 50000; class B pre-self-pay 10 %.
"""

from __future__ import annotations

import doctest
import random
from types import SimpleNamespace

import pytest

from payments import insurance
from payments.insurance import (
    BP,
    BillItem,
    EmptyBill,
    InconsistentSettlement,
    InsuranceInputError,
    InsurancePolicy,
    InsuranceType,
    InvalidAmount,
    InvalidPolicy,
    InvalidYearToDate,
    ItemClass,
    SchemeTerms,
    Settlement,
    UnknownInsuranceType,
    UnknownItemClass,
    YearToDate,
    settle,
    settlement_from_dict,
    settlement_to_dict,
)

P = InsurancePolicy(
    employee=SchemeTerms(deductible_fen=10_000, ratio_bp=8_000, annual_cap_fen=100_000),
    resident=SchemeTerms(deductible_fen=5_000, ratio_bp=6_000, annual_cap_fen=50_000),
    class_b_pre_self_pay_bp=1_000,
)
MET = YearToDate(deductible_met_fen=10_000, insurance_paid_fen=0)  # employee deductible met
FRESH = YearToDate(0, 0)

A, B, C = "A", "B", "C"


def bill(*items: tuple[str, int]) -> list[BillItem]:
    return [BillItem(cls, amount, name=f"item {i}") for i, (cls, amount) in enumerate(items)]


def parts(s: Settlement) -> dict[str, int]:
    return {"total": s.total_fen, "ins": s.insurance_fen, "self": s.self_pay_fen,
            "eligible": s.eligible_fen, "c": s.class_c_self_pay_fen, "b_pre": s.class_b_pre_self_pay_fen,
            "ded": s.deductible_fen, "ratio_self": s.ratio_self_pay_fen, "over_cap": s.over_cap_fen,
            "uninsured": s.uninsured_fen}


def expect(total, ins, *, eligible=0, c=0, b_pre=0, ded=0, ratio_self=0, over_cap=0, uninsured=0):
    return {"total": total, "ins": ins, "self": total - ins, "eligible": eligible, "c": c,
            "b_pre": b_pre, "ded": ded, "ratio_self": ratio_self, "over_cap": over_cap,
            "uninsured": uninsured}


# (id, items, insurance type, year to date before, expected parts, year to date after)
CASES = [
    # --- no insurance: everything self-paid, nothing moves
    ("none_all_self_pay", bill((A, 10_000), (B, 5_000), (C, 3_000)), "none", FRESH,
     expect(18_000, 0, uninsured=18_000), FRESH),
    ("none_keeps_year_to_date", bill((A, 10_000)), "none", YearToDate(3_000, 700),
     expect(10_000, 0, uninsured=10_000), YearToDate(3_000, 700)),
    # --- item classes
    ("only_class_a", bill((A, 10_000), (A, 2_500)), "employee", MET,
     expect(12_500, 10_000, eligible=12_500, ratio_self=2_500), YearToDate(10_000, 10_000)),
    ("class_b_pre_self_pay", bill((B, 20_000)), "employee", MET,
     # pre 10 % = 2000; eligible 18000; insurer 80 % = 14400; patient 3600 + 2000
     expect(20_000, 14_400, eligible=18_000, b_pre=2_000, ratio_self=3_600), YearToDate(10_000, 14_400)),
    ("class_c_excluded", bill((A, 10_000), (C, 7_000)), "employee", MET,
     expect(17_000, 8_000, eligible=10_000, c=7_000, ratio_self=2_000), YearToDate(10_000, 8_000)),
    ("class_c_does_not_count_toward_deductible", bill((C, 7_000)), "employee", FRESH,
     expect(7_000, 0, c=7_000), FRESH),
    ("class_b_pre_self_pay_does_not_count_toward_deductible", bill((B, 5_000)), "employee", FRESH,
     expect(5_000, 0, eligible=4_500, b_pre=500, ded=4_500), YearToDate(4_500, 0)),
    ("chinese_class_names", bill(("甲", 10_000), ("乙", 20_000), ("丙", 1_000)), "employee", MET,
     expect(31_000, 22_400, eligible=28_000, c=1_000, b_pre=2_000, ratio_self=5_600),
     YearToDate(10_000, 22_400)),
    # --- deductible
    ("deductible_not_met_bill_below_it", bill((A, 6_000)), "employee", FRESH,
     expect(6_000, 0, eligible=6_000, ded=6_000), YearToDate(6_000, 0)),
    ("deductible_not_met_bill_crosses_it", bill((A, 25_000)), "employee", FRESH,
     # 10000 deductible, 15000 above it: insurer 12000, patient 3000
     expect(25_000, 12_000, eligible=25_000, ded=10_000, ratio_self=3_000), YearToDate(10_000, 12_000)),
    ("deductible_partly_met", bill((A, 25_000)), "employee", YearToDate(4_000, 0),
     # 6000 left; 19000 above: insurer 15200, patient 3800
     expect(25_000, 15_200, eligible=25_000, ded=6_000, ratio_self=3_800), YearToDate(10_000, 15_200)),
    ("deductible_exactly_met_before", bill((A, 25_000)), "employee", YearToDate(10_000, 0),
     expect(25_000, 20_000, eligible=25_000, ratio_self=5_000), YearToDate(10_000, 20_000)),
    ("deductible_exactly_met_by_this_bill", bill((A, 10_000)), "employee", FRESH,
     expect(10_000, 0, eligible=10_000, ded=10_000), YearToDate(10_000, 0)),
    ("deductible_met_above_policy_counts_as_met", bill((A, 1_000)), "employee", YearToDate(99_999, 0),
     expect(1_000, 800, eligible=1_000, ratio_self=200), YearToDate(99_999, 800)),
    # --- annual cap
    ("cap_reached_exactly", bill((A, 25_000)), "employee", YearToDate(10_000, 80_000),
     expect(25_000, 20_000, eligible=25_000, ratio_self=5_000), YearToDate(10_000, 100_000)),
    ("cap_crossed_inside_this_bill", bill((A, 25_000)), "employee", YearToDate(10_000, 90_000),
     # ratio would pay 20000, only 10000 left under the cap
     expect(25_000, 10_000, eligible=25_000, ratio_self=5_000, over_cap=10_000),
     YearToDate(10_000, 100_000)),
    ("cap_already_reached", bill((A, 25_000)), "employee", YearToDate(10_000, 100_000),
     expect(25_000, 0, eligible=25_000, ratio_self=5_000, over_cap=20_000), YearToDate(10_000, 100_000)),
    ("cap_already_exceeded_after_policy_change", bill((A, 25_000)), "employee", YearToDate(10_000, 120_000),
     expect(25_000, 0, eligible=25_000, ratio_self=5_000, over_cap=20_000), YearToDate(10_000, 120_000)),
    ("cap_and_deductible_in_one_bill", bill((A, 60_000), (B, 10_000)), "resident", YearToDate(1_000, 40_000),
     # eligible 60000 + 9000 = 69000; deductible 4000; above 65000 × 60 % = 39000, 10000 left
     expect(70_000, 10_000, eligible=69_000, b_pre=1_000, ded=4_000, ratio_self=26_000, over_cap=29_000),
     YearToDate(5_000, 50_000)),
    # --- rounding at odd fen
    ("rounding_class_b_pre_self_pay_up", bill((B, 1_001)), "employee", MET,
     # pre ceil(100.1) = 101; eligible 900; insurer 720
     expect(1_001, 720, eligible=900, b_pre=101, ratio_self=180), YearToDate(10_000, 720)),
    ("rounding_class_b_single_fen", bill((B, 9)), "employee", MET,
     # pre ceil(0.9) = 1; eligible 8; insurer floor(6.4) = 6
     expect(9, 6, eligible=8, b_pre=1, ratio_self=2), YearToDate(10_000, 6)),
    ("rounding_insurance_down_one_fen", bill((A, 1)), "employee", MET,
     expect(1, 0, eligible=1, ratio_self=1), MET),
    ("rounding_insurance_down_odd", bill((A, 7)), "resident", YearToDate(5_000, 0),
     # floor(7 × 0.6) = floor(4.2) = 4
     expect(7, 4, eligible=7, ratio_self=3), YearToDate(5_000, 4)),
    ("rounding_once_per_bill_not_per_line", bill((A, 1), (A, 1), (A, 1)), "employee", MET,
     # per line each would round to 0; per bill floor(3 × 0.8) = 2
     expect(3, 2, eligible=3, ratio_self=1), YearToDate(10_000, 2)),
    # --- employee vs resident on the same bill
    ("employee_ratio", bill((A, 30_000)), "employee", FRESH,
     expect(30_000, 16_000, eligible=30_000, ded=10_000, ratio_self=4_000), YearToDate(10_000, 16_000)),
    ("resident_ratio", bill((A, 30_000)), "resident", FRESH,
     expect(30_000, 15_000, eligible=30_000, ded=5_000, ratio_self=10_000), YearToDate(5_000, 15_000)),
    # --- a free item is fine
    ("zero_amount_item", bill((A, 0), (C, 0)), "employee", MET, expect(0, 0), MET),
]


@pytest.mark.parametrize(("items", "kind", "before", "expected", "after"),
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_insurance_split_table(items, kind, before, expected, after):
    s = settle(items, insurance_type=kind, policy=P, year_to_date=before)

    assert parts(s) == expected
    assert s.year_to_date_before == before
    assert s.year_to_date_after == after
    assert s.insurance_type == InsuranceType(kind)


def test_insurance_none_ignores_policy_and_lines_are_all_self_paid():
    s = settle(bill((A, 100), (B, 200)), insurance_type=InsuranceType.NONE, policy=P, year_to_date=MET)

    assert s.ratio_bp == 0
    assert [(line.self_pay_ratio_bp, line.self_pay_fen, line.eligible_fen) for line in s.lines] == [
        (BP, 100, 0), (BP, 200, 0)]


def test_insurance_receipt_lines_per_item():
    s = settle(bill((A, 1_000), (B, 1_001), (C, 50)), insurance_type="employee", policy=P, year_to_date=MET)

    assert [(line.index, line.name, line.item_class, line.amount_fen, line.self_pay_ratio_bp,
             line.self_pay_fen, line.eligible_fen) for line in s.lines] == [
        (0, "item 0", ItemClass.A, 1_000, 0, 0, 1_000),
        (1, "item 1", ItemClass.B, 1_001, 1_000, 101, 900),
        (2, "item 2", ItemClass.C, 50, BP, 50, 0),
    ]
    assert s.ratio_bp == 8_000


def test_insurance_accepts_clinic_bill_item_like_rows():
    rows = [SimpleNamespace(item_class="B", amount_fen=20_000, name="CT"),
            SimpleNamespace(item_class="A", amount_fen=5_000)]  # no name: fine

    s = settle(rows, insurance_type="employee", policy=P, year_to_date=MET)

    assert (s.insurance_fen, s.class_b_pre_self_pay_fen) == (18_400, 2_000)
    assert [line.name for line in s.lines] == ["CT", ""]


def test_insurance_accepts_any_iterable_of_items():
    s = settle((item for item in bill((A, 100))), insurance_type="employee", policy=P, year_to_date=MET)

    assert s.total_fen == 100


def test_insurance_defaults_are_the_documented_ones():
    policy = InsurancePolicy()

    assert policy.employee == SchemeTerms(deductible_fen=180_000, ratio_bp=7_000, annual_cap_fen=2_000_000)
    assert policy.resident == SchemeTerms(deductible_fen=20_000, ratio_bp=5_000, annual_cap_fen=300_000)
    assert policy.class_b_pre_self_pay_bp == 1_000
    assert policy.terms(InsuranceType.NONE) is None


def test_insurance_policy_round_trips_through_a_dict():
    assert InsurancePolicy.from_dict(P.as_dict()) == P
    with pytest.raises(InvalidPolicy):
        InsurancePolicy.from_dict({"employee": {}})


def test_insurance_docstring_examples_hold():
    result = doctest.testmod(insurance, raise_on_error=False, verbose=False)

    assert result.attempted >= 8
    assert result.failed == 0


# --------------------------------------------------------------------------- bad input

def _items(*pairs):
    return [SimpleNamespace(item_class=c, amount_fen=a) for c, a in pairs]


BAD_INPUT = [
    ("empty_bill", [], "employee", EmptyBill, "insurance_empty_bill"),
    ("negative_amount", _items((A, -1)), "employee", InvalidAmount, "insurance_invalid_amount"),
    ("float_amount", _items((A, 10.0)), "employee", InvalidAmount, "insurance_invalid_amount"),
    ("bool_amount", _items((A, True)), "employee", InvalidAmount, "insurance_invalid_amount"),
    ("string_amount", _items((A, "100")), "employee", InvalidAmount, "insurance_invalid_amount"),
    ("missing_amount", [SimpleNamespace(item_class=A)], "employee", InvalidAmount,
     "insurance_invalid_amount"),
    ("negative_amount_without_insurance", _items((A, -5)), "none", InvalidAmount, "insurance_invalid_amount"),
    ("unknown_class", _items(("D", 100)), "employee", UnknownItemClass, "insurance_unknown_item_class"),
    ("lowercase_class", _items(("a", 100)), "employee", UnknownItemClass, "insurance_unknown_item_class"),
    ("missing_class", [SimpleNamespace(amount_fen=100)], "employee", UnknownItemClass,
     "insurance_unknown_item_class"),
    ("unknown_type", _items((A, 100)), "commercial", UnknownInsuranceType, "insurance_unknown_type"),
    ("empty_type", _items((A, 100)), "", UnknownInsuranceType, "insurance_unknown_type"),
    ("none_type_object", _items((A, 100)), None, UnknownInsuranceType, "insurance_unknown_type"),
]


@pytest.mark.parametrize(("items", "kind", "error", "code"),
                         [pytest.param(*case[1:], id=case[0]) for case in BAD_INPUT])
def test_insurance_rejects_bad_input(items, kind, error, code):
    with pytest.raises(error) as caught:
        settle(items, insurance_type=kind, policy=P, year_to_date=MET)

    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, InsuranceInputError)
    assert caught.value.code == code
    assert str(caught.value)


@pytest.mark.parametrize(("build", "error", "code"), [
    pytest.param(lambda: YearToDate(-1, 0), InvalidYearToDate, "insurance_invalid_year_to_date",
                 id="negative_deductible_met"),
    pytest.param(lambda: YearToDate(0, 1.5), InvalidYearToDate, "insurance_invalid_year_to_date",
                 id="float_insurance_paid"),
    pytest.param(lambda: SchemeTerms(-1, 5_000, 100), InvalidPolicy, "insurance_invalid_policy",
                 id="negative_deductible"),
    pytest.param(lambda: SchemeTerms(0, 10_001, 100), InvalidPolicy, "insurance_invalid_policy",
                 id="ratio_over_100_percent"),
    pytest.param(lambda: SchemeTerms(0, 0.7, 100), InvalidPolicy, "insurance_invalid_policy",
                 id="ratio_as_float"),
    pytest.param(lambda: InsurancePolicy(class_b_pre_self_pay_bp=-1), InvalidPolicy,
                 "insurance_invalid_policy", id="negative_class_b_share"),
    pytest.param(lambda: settle(bill((A, 1)), insurance_type="employee", policy=None, year_to_date=MET),
                 InvalidPolicy, "insurance_invalid_policy", id="no_policy"),
    pytest.param(lambda: settle(bill((A, 1)), insurance_type="employee", policy=P, year_to_date=(0, 0)),
                 InvalidYearToDate, "insurance_invalid_year_to_date", id="year_to_date_not_a_year_to_date"),
])
def test_insurance_rejects_bad_policy_and_state(build, error, code):
    with pytest.raises(error) as caught:
        build()

    assert isinstance(caught.value, ValueError)
    assert caught.value.code == code


def test_insurance_settlement_that_does_not_add_up_is_refused():
    s = settle(bill((A, 25_000), (B, 999), (C, 3)), insurance_type="employee", policy=P, year_to_date=FRESH)
    data = settlement_to_dict(s)

    assert settlement_from_dict(data) == s

    for field, delta in [("insurance_fen", 1), ("self_pay_fen", -1), ("over_cap_fen", 1),
                         ("deductible_fen", 1), ("eligible_fen", 1)]:
        tampered = dict(data, **{field: data[field] + delta})
        with pytest.raises(InconsistentSettlement) as caught:
            settlement_from_dict(tampered)
        assert caught.value.code == "insurance_inconsistent_settlement"
    with pytest.raises(InconsistentSettlement):
        settlement_from_dict({k: v for k, v in data.items() if k != "total_fen"})
    with pytest.raises(InconsistentSettlement):
        settlement_from_dict(dict(data, insurance_fen=float(data["insurance_fen"])))
    bad_line = dict(data, lines=[dict(data["lines"][0], eligible_fen=0)] + data["lines"][1:])
    with pytest.raises(InconsistentSettlement):
        settlement_from_dict(bad_line)


# --------------------------------------------------------------------------- invariants


def _random_policy(rng: random.Random) -> InsurancePolicy:
    def terms() -> SchemeTerms:
        return SchemeTerms(deductible_fen=rng.choice([0, 1, 999, 20_000, 180_000]),
                           ratio_bp=rng.choice([0, 1, 3_333, 5_000, 7_000, 9_999, BP]),
                           annual_cap_fen=rng.choice([0, 1, 50_000, 300_000, 2_000_000]))

    return InsurancePolicy(employee=terms(), resident=terms(),
                           class_b_pre_self_pay_bp=rng.choice([0, 1, 1_000, 2_000, 3_333, BP]))


def _random_bill(rng: random.Random) -> list[BillItem]:
    return [BillItem(rng.choice("ABC"),
                     rng.choice([0, 1, 3, 7, 99, 1_001, rng.randint(0, 50_000), rng.randint(0, 2_000_000)]))
            for _ in range(rng.randint(1, 8))]


def _random_year_to_date(rng: random.Random) -> YearToDate:
    return YearToDate(rng.choice([0, rng.randint(0, 200_000), 10**9]),
                      rng.choice([0, rng.randint(0, 2_100_000), 10**9]))


def test_insurance_invariants_hold_for_random_bills():
    rng = random.Random(20250601)
    for _ in range(3_000):
        policy, items, before = _random_policy(rng), _random_bill(rng), _random_year_to_date(rng)
        kind = rng.choice(list(InsuranceType))

        s = settle(items, insurance_type=kind, policy=policy, year_to_date=before)

        assert s.total_fen == sum(i.amount_fen for i in items)
        assert s.total_fen == s.insurance_fen + s.self_pay_fen
        assert 0 <= s.insurance_fen <= s.eligible_fen <= s.total_fen
        assert s.self_pay_fen >= s.class_c_self_pay_fen + s.class_b_pre_self_pay_fen
        assert s.class_c_self_pay_fen == (0 if kind is InsuranceType.NONE
                                          else sum(i.amount_fen for i in items if i.item_class == "C"))
        terms = policy.terms(kind)
        if terms is None:
            assert (s.insurance_fen, s.eligible_fen, s.uninsured_fen) == (0, 0, s.total_fen)
            assert s.year_to_date_after == before
            continue
        # never more than the ratio of what is above the deductible
        assert s.insurance_fen * BP <= (s.eligible_fen - s.deductible_fen) * terms.ratio_bp
        # the insurer rounds down by less than one fen
        above = s.eligible_fen - s.deductible_fen
        assert (s.insurance_fen + s.over_cap_fen + 1) * BP > above * terms.ratio_bp
        # the cap is never exceeded (a year already over it never grows)
        assert s.year_to_date_after.insurance_paid_fen <= max(terms.annual_cap_fen, before.insurance_paid_fen)
        assert s.over_cap_fen == 0 or s.year_to_date_after.insurance_paid_fen >= terms.annual_cap_fen
        # the deductible is never over-collected
        assert s.year_to_date_after.deductible_met_fen <= max(terms.deductible_fen, before.deductible_met_fen)
        # class B pre-self-pay: at most 1 fen above the exact share, per line
        for line in s.lines:
            exact = line.amount_fen * line.self_pay_ratio_bp
            assert line.self_pay_fen * BP >= exact > (line.self_pay_fen - 1) * BP


def test_insurance_result_does_not_depend_on_item_order():
    rng = random.Random(7)
    for _ in range(500):
        policy, items, before = _random_policy(rng), _random_bill(rng), _random_year_to_date(rng)
        kind = rng.choice(list(InsuranceType))
        shuffled = items[:]
        rng.shuffle(shuffled)

        one = settle(items, insurance_type=kind, policy=policy, year_to_date=before)
        two = settle(shuffled, insurance_type=kind, policy=policy, year_to_date=before)

        assert parts(one) == parts(two)
        assert one.year_to_date_after == two.year_to_date_after
        assert settle(items, insurance_type=kind, policy=policy, year_to_date=before) == one


def test_insurance_splitting_a_bill_never_pays_more():
    """Settling a bill in two parts, one after the other, gives the insurer at most what one bill
    would, and at most 1 fen less (one more rounding down)."""
    rng = random.Random(11)
    for _ in range(1_000):
        policy, before = _random_policy(rng), _random_year_to_date(rng)
        items = _random_bill(rng) + _random_bill(rng)
        kind = rng.choice([InsuranceType.EMPLOYEE, InsuranceType.RESIDENT])
        cut = rng.randint(1, len(items) - 1)

        whole = settle(items, insurance_type=kind, policy=policy, year_to_date=before)
        first = settle(items[:cut], insurance_type=kind, policy=policy, year_to_date=before)
        second = settle(items[cut:], insurance_type=kind, policy=policy,
                        year_to_date=first.year_to_date_after)

        split = first.insurance_fen + second.insurance_fen
        assert whole.insurance_fen - 1 <= split <= whole.insurance_fen
        assert second.year_to_date_after.deductible_met_fen == whole.year_to_date_after.deductible_met_fen


def test_insurance_a_year_of_bills_never_exceeds_the_cap():
    rng = random.Random(2025)
    for _ in range(50):
        policy = _random_policy(rng)
        kind = rng.choice([InsuranceType.EMPLOYEE, InsuranceType.RESIDENT])
        terms = policy.terms(kind)
        ytd, paid, deductible = FRESH, 0, 0
        for _ in range(60):
            s = settle(_random_bill(rng), insurance_type=kind, policy=policy, year_to_date=ytd)
            paid += s.insurance_fen
            deductible += s.deductible_fen
            ytd = s.year_to_date_after

        assert ytd == YearToDate(deductible, paid)
        assert paid <= terms.annual_cap_fen
        assert deductible <= terms.deductible_fen
