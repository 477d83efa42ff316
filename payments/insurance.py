"""The medical-insurance split of an outpatient bill (医保结算): what the insurer pays, what the
patient pays. Pure arithmetic: no models, no database, no clock, no I/O.

Units
-----
* Money is integer fen (分). Every amount in and out is an ``int``; a float is rejected.
* Ratios and shares are integer **basis points** (万分比, ``BP = 10_000`` is 100 %):
  70 % is ``7000``, 92.5 % is ``9250``. One rule for every ratio, fine enough for any real
  policy, and all arithmetic stays in integers.

How a bill is split (mainland basic medical insurance, outpatient pooling 门诊统筹)
------------------------------------------------------------------------------------
1. Class 丙 (C) items are outside the catalogue: fully self-paid (``class_c_self_pay_fen``).
2. Class 乙 (B) items: the patient first pays a fixed share (乙类先行自付, e.g. 10 %;
   ``class_b_pre_self_pay_fen``); the rest of the item is within the policy scope.
3. Class 甲 (A) items are within the policy scope in full.
   Policy-scope spending (政策范围内费用) = A + (B − B's pre-self-pay) = ``eligible_fen``.
4. Deductible (起付线, per calendar year): the first part of the year's eligible spending is
   self-paid until the year's deductible is met (``deductible_fen`` is the part met by this
   bill; the year-to-date figure carries it across bills).
5. Above the deductible the insurer pays ``ratio_bp``; the patient pays the rest
   (``ratio_self_pay_fen``).
6. Annual cap (封顶线): the insurer never pays more than the cap in a year; whatever the
   ratio would have paid beyond it is self-paid (``over_cap_fen``).
7. Patients without insurance (自费) pay everything (``uninsured_fen``); no year-to-date
   figure moves.

Always: ``total_fen = insurance_fen + self_pay_fen`` and
``self_pay_fen = class_c_self_pay_fen + class_b_pre_self_pay_fen + deductible_fen
+ ratio_self_pay_fen + over_cap_fen + uninsured_fen``.

Rounding (the only two places a fraction of a fen can appear)
-------------------------------------------------------------
* The class-B pre-self-pay is computed **per item** (it is printed per line on the receipt)
  and rounded **up** to the fen; the eligible rest of the item is therefore rounded down.
* The insurer's share is computed **once per bill** on the amount above the deductible and
  rounded **down** to the fen; the patient's ratio part is the exact remainder.
So the insurer never pays more than the ratio allows, the patient is never charged less than
they owe, and the result of a bill does not depend on the order of its items. Splitting a bill
in two (settled one after the other) never gives the insurer more, and at most 1 fen less per
extra bill, than settling it at once. The deductible and the cap are exact integer minima.

Worked examples (default policy, see `InsurancePolicy`; amounts in fen, ¥ for reading)
-------------------------------------------------------------------------------------------
Example 1: employee, deductible already met this year, one item of each class.

    甲 drug ¥120.00 = 12000, 乙 CT ¥300.00 = 30000, 丙 supplement ¥50.00 = 5000; total 47000
    丙 self-pay                      5000
    乙 pre-self-pay   ceil(30000 × 1000 / 10000) = 3000  → 乙 eligible 30000 − 3000 = 27000
    eligible          12000 + 27000 = 39000
    deductible now    0 (1800.00 yuan already met)
    insurance         floor(39000 × 7000 / 10000) = 27300;  ratio self-pay 39000 − 27300 = 11700
    self-pay          5000 + 3000 + 0 + 11700 = 19700;  27300 + 19700 = 47000 ✓

>>> ytd = YearToDate(deductible_met_fen=180000, insurance_paid_fen=0)
>>> s = settle([BillItem("A", 12000), BillItem("B", 30000), BillItem("C", 5000)],
...            insurance_type="employee", policy=InsurancePolicy(), year_to_date=ytd)
>>> (s.total_fen, s.insurance_fen, s.self_pay_fen, s.class_b_pre_self_pay_fen, s.ratio_self_pay_fen)
(47000, 27300, 19700, 3000, 11700)

Example 2: resident, deductible partly met (¥150.00 of ¥200.00), odd fen on both roundings.

    甲 8765, 乙 1001; total 9766
    乙 pre-self-pay   ceil(1001 × 1000 / 10000) = ceil(100.1) = 101  → 乙 eligible 900
    eligible          8765 + 900 = 9665
    deductible now    min(9665, 20000 − 15000) = 5000;  above it 9665 − 5000 = 4665
    insurance         floor(4665 × 5000 / 10000) = floor(2332.5) = 2332;  ratio self-pay 2333
    self-pay          101 + 5000 + 2333 = 7434;  2332 + 7434 = 9766 ✓
    year to date      deductible met 15000 + 5000 = 20000;  insurance paid 0 + 2332 = 2332

>>> s = settle([BillItem("甲", 8765), BillItem("乙", 1001)], insurance_type="resident",
...            policy=InsurancePolicy(), year_to_date=YearToDate(15000, 0))
>>> (s.insurance_fen, s.self_pay_fen, s.deductible_fen, s.year_to_date_after)
(2332, 7434, 5000, YearToDate(deductible_met_fen=20000, insurance_paid_fen=2332))

Example 3: employee, the annual cap (¥20,000.00) is crossed inside this bill.

    甲 10000; insurer has paid 1995000 this year, so 2000000 − 1995000 = 5000 is left
    eligible 10000, deductible met;  ratio would pay floor(10000 × 7000 / 10000) = 7000
    insurance         min(7000, 5000) = 5000;  over the cap 7000 − 5000 = 2000
    self-pay          ratio part 3000 + over cap 2000 = 5000;  5000 + 5000 = 10000 ✓

>>> s = settle([BillItem("A", 10000)], insurance_type="employee", policy=InsurancePolicy(),
...            year_to_date=YearToDate(180000, 1995000))
>>> (s.insurance_fen, s.ratio_self_pay_fen, s.over_cap_fen, s.year_to_date_after.insurance_paid_fen)
(5000, 3000, 2000, 2000000)

Example 4: no insurance (自费): everything is self-paid, nothing else moves.

>>> s = settle([BillItem("A", 12000), BillItem("C", 5000)], insurance_type="none",
...            policy=InsurancePolicy(), year_to_date=YearToDate(0, 0))
>>> (s.insurance_fen, s.self_pay_fen, s.uninsured_fen)
(0, 17000, 17000)

What this module is for
-----------------------
The insurer's own computation (through `payments.insurance_gateway`) is authoritative for what
it pays; this module is the same rule written once, used by the test insurer, for estimates
shown before the insurer is asked, and to check an insurer's answer for internal consistency.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.utils.translation import gettext_lazy as _

from portal.errors import DomainError

BP = 10_000  # basis points in 100 %
Fen = int


# --------------------------------------------------------------------------- errors


class InsuranceInputError(DomainError, ValueError):
    """Bad input to the insurance split. A ``ValueError`` with a stable ``code``."""

    code = "insurance_invalid_input"
    default_message = "The bill cannot be settled with insurance."


class EmptyBill(InsuranceInputError):
    code = "insurance_empty_bill"


class InvalidAmount(InsuranceInputError):
    code = "insurance_invalid_amount"


class UnknownItemClass(InsuranceInputError):
    code = "insurance_unknown_item_class"


class UnknownInsuranceType(InsuranceInputError):
    code = "insurance_unknown_type"


class InvalidYearToDate(InsuranceInputError):
    code = "insurance_invalid_year_to_date"


class InvalidPolicy(InsuranceInputError):
    code = "insurance_invalid_policy"


class InconsistentSettlement(InsuranceInputError):
    """A `Settlement` whose parts do not add up (e.g. a malformed answer from an insurer)."""

    code = "insurance_inconsistent_settlement"


def _check_fen(value: object, what: str, error: type[InsuranceInputError] = InvalidAmount) -> int:
    # bool is an int subclass; True fen is a bug, not an amount.
    if type(value) is not int or value < 0:
        raise error(_("%(what)s must be a whole, non-negative number of fen (got %(value)r).")
                    % {"what": what, "value": value}, details={"field": what, "value": repr(value)})
    return value


def _check_bp(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value <= BP:
        raise InvalidPolicy(_("%(what)s must be whole basis points between 0 and 10000 (got %(value)r).")
                            % {"what": what, "value": value},
                            details={"field": what, "value": repr(value)})
    return value


# --------------------------------------------------------------------------- vocabulary


class ItemClass(enum.StrEnum):
    """Catalogue class of a bill item (the values a hospital's bill items store: A, B, C)."""

    A = "A"  # 甲类: fully within the catalogue
    B = "B"  # 乙类: the patient pre-pays a share, the rest is within the catalogue
    C = "C"  # 丙类: outside the catalogue, fully self-paid

    @classmethod
    def parse(cls, value: object) -> ItemClass:
        if isinstance(value, cls):
            return value
        found = _ITEM_CLASS_ALIASES.get(value) if isinstance(value, str) else None
        if found is None:
            raise UnknownItemClass(_("Unknown insurance item class %(value)r; use A (甲), B (乙) or C (丙).")
                                   % {"value": value}, details={"value": repr(value)})
        return found


_ITEM_CLASS_ALIASES = {"A": ItemClass.A, "B": ItemClass.B, "C": ItemClass.C,
                       "甲": ItemClass.A, "乙": ItemClass.B, "丙": ItemClass.C}


class InsuranceType(enum.StrEnum):
    EMPLOYEE = "employee"  # 职工基本医疗保险
    RESIDENT = "resident"  # 城乡居民基本医疗保险
    NONE = "none"  # 自费: no insurance used

    @classmethod
    def parse(cls, value: object) -> InsuranceType:
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                pass
        raise UnknownInsuranceType(_("Unknown insurance type %(value)r; use employee, resident or none.")
                                   % {"value": value}, details={"value": repr(value)})


class ItemLike(Protocol):
    """Anything with a class and an amount: a `BillItem`, or a row with those attributes."""

    item_class: Any
    amount_fen: int


@dataclass(frozen=True)
class BillItem:
    item_class: ItemClass | str
    amount_fen: Fen
    name: str = ""


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class SchemeTerms:
    """One insurance type's outpatient terms at one hospital."""

    deductible_fen: Fen  # 起付线, per calendar year
    ratio_bp: int  # share the insurer pays above the deductible
    annual_cap_fen: Fen  # 封顶线: most the insurer pays in a calendar year

    def __post_init__(self) -> None:
        _check_fen(self.deductible_fen, "deductible_fen", InvalidPolicy)
        _check_bp(self.ratio_bp, "ratio_bp")
        _check_fen(self.annual_cap_fen, "annual_cap_fen", InvalidPolicy)


# Illustrative defaults, shaped like a large city's outpatient pooling at a tertiary hospital.
# They are NOT any city's current figures: each hospital sets its own from its 医保局's notice.
DEFAULT_EMPLOYEE_TERMS = SchemeTerms(deductible_fen=180_000, ratio_bp=7_000, annual_cap_fen=2_000_000)
DEFAULT_RESIDENT_TERMS = SchemeTerms(deductible_fen=20_000, ratio_bp=5_000, annual_cap_fen=300_000)
DEFAULT_CLASS_B_PRE_SELF_PAY_BP = 1_000


@dataclass(frozen=True)
class InsurancePolicy:
    """A hospital's outpatient insurance policy.

    Defaults (illustrative only): employee (职工) deductible ¥1,800.00, insurer pays 70 %, cap
    ¥20,000.00 a year; resident (居民) deductible ¥200.00, 50 %, cap ¥3,000.00 a year; class-B
    items pre-self-pay 10 %.
    """

    employee: SchemeTerms = DEFAULT_EMPLOYEE_TERMS
    resident: SchemeTerms = DEFAULT_RESIDENT_TERMS
    class_b_pre_self_pay_bp: int = DEFAULT_CLASS_B_PRE_SELF_PAY_BP

    def __post_init__(self) -> None:
        for name in ("employee", "resident"):
            if not isinstance(getattr(self, name), SchemeTerms):
                raise InvalidPolicy(_("%(what)s must be SchemeTerms.") % {"what": name},
                                    details={"field": name})
        _check_bp(self.class_b_pre_self_pay_bp, "class_b_pre_self_pay_bp")

    def terms(self, insurance_type: InsuranceType) -> SchemeTerms | None:
        """The terms of an insurance type; ``None`` for no insurance."""
        if insurance_type is InsuranceType.EMPLOYEE:
            return self.employee
        if insurance_type is InsuranceType.RESIDENT:
            return self.resident
        return None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (e.g. for a hospital's settings row); `from_dict` reads it back."""
        return {"employee": _terms_dict(self.employee), "resident": _terms_dict(self.resident),
                "class_b_pre_self_pay_bp": self.class_b_pre_self_pay_bp}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InsurancePolicy:
        try:
            return cls(employee=SchemeTerms(**data["employee"]), resident=SchemeTerms(**data["resident"]),
                       class_b_pre_self_pay_bp=data["class_b_pre_self_pay_bp"])
        except (KeyError, TypeError) as exc:
            raise InvalidPolicy(_("The insurance policy is incomplete."),
                                details={"reason": str(exc)}) from exc


def _terms_dict(terms: SchemeTerms) -> dict[str, int]:
    return {"deductible_fen": terms.deductible_fen, "ratio_bp": terms.ratio_bp,
            "annual_cap_fen": terms.annual_cap_fen}


# --------------------------------------------------------------------------- state and result


@dataclass(frozen=True)
class YearToDate:
    """A patient's figures for the current calendar year, under their insurance type."""

    deductible_met_fen: Fen = 0  # eligible spending already counted toward the deductible
    insurance_paid_fen: Fen = 0  # what the insurer has already paid (toward the cap)

    def __post_init__(self) -> None:
        _check_fen(self.deductible_met_fen, "deductible_met_fen", InvalidYearToDate)
        _check_fen(self.insurance_paid_fen, "insurance_paid_fen", InvalidYearToDate)


@dataclass(frozen=True)
class SettlementLine:
    """One bill item as the receipt shows it (自付比例 / 自付金额 per line)."""

    index: int  # position in the bill as given
    name: str
    item_class: ItemClass
    amount_fen: Fen
    self_pay_ratio_bp: int  # 甲 0, 乙 the pre-self-pay share, 丙 (or no insurance) 10000
    self_pay_fen: Fen  # the line's own self-paid part (丙 whole, 乙 pre-share, uninsured whole)
    eligible_fen: Fen  # the rest: within the policy scope

    def __post_init__(self) -> None:
        if (self.amount_fen != self.self_pay_fen + self.eligible_fen
                or min(self.amount_fen, self.self_pay_fen, self.eligible_fen) < 0):
            raise InconsistentSettlement(details={"line": self.index})


@dataclass(frozen=True)
class Settlement:
    """The split of one bill. Construction checks that every part adds up."""

    insurance_type: InsuranceType
    total_fen: Fen
    insurance_fen: Fen
    self_pay_fen: Fen
    eligible_fen: Fen  # 政策范围内费用: A + B's eligible rest
    class_c_self_pay_fen: Fen
    class_b_pre_self_pay_fen: Fen
    deductible_fen: Fen  # deductible met by this bill
    ratio_self_pay_fen: Fen  # the patient's share above the deductible
    over_cap_fen: Fen  # what the ratio would have paid beyond the annual cap
    uninsured_fen: Fen  # no insurance: the whole bill
    ratio_bp: int  # the insurer's ratio applied (0 without insurance)
    year_to_date_before: YearToDate
    year_to_date_after: YearToDate
    lines: tuple[SettlementLine, ...] = field(default=())

    def __post_init__(self) -> None:
        amounts = (self.total_fen, self.insurance_fen, self.self_pay_fen, self.eligible_fen,
                   self.class_c_self_pay_fen, self.class_b_pre_self_pay_fen, self.deductible_fen,
                   self.ratio_self_pay_fen, self.over_cap_fen, self.uninsured_fen)
        problems = []
        if any(type(a) is not int or a < 0 for a in amounts):
            problems.append("negative or non-integer amount")
        if self.total_fen != self.insurance_fen + self.self_pay_fen:
            problems.append("total != insurance + self_pay")
        if self.self_pay_fen != (self.class_c_self_pay_fen + self.class_b_pre_self_pay_fen
                                 + self.deductible_fen + self.ratio_self_pay_fen + self.over_cap_fen
                                 + self.uninsured_fen):
            problems.append("self_pay != sum of its parts")
        if self.eligible_fen != (self.deductible_fen + self.ratio_self_pay_fen + self.over_cap_fen
                                 + self.insurance_fen):
            problems.append("eligible != deductible + ratio self-pay + over cap + insurance")
        if self.total_fen != (self.eligible_fen + self.class_c_self_pay_fen
                              + self.class_b_pre_self_pay_fen + self.uninsured_fen):
            problems.append("total != eligible + not-covered parts")
        if self.lines:
            if self.total_fen != sum(line.amount_fen for line in self.lines):
                problems.append("total != sum of lines")
            if self.eligible_fen != sum(line.eligible_fen for line in self.lines):
                problems.append("eligible != sum of lines' eligible")
        before, after = self.year_to_date_before, self.year_to_date_after
        if after.deductible_met_fen != before.deductible_met_fen + self.deductible_fen:
            problems.append("year-to-date deductible does not move by the deductible applied")
        if after.insurance_paid_fen != before.insurance_paid_fen + self.insurance_fen:
            problems.append("year-to-date insurance does not move by the insurance paid")
        if self.insurance_type is InsuranceType.NONE and self.uninsured_fen != self.total_fen:
            problems.append("no insurance but not everything is self-paid")
        if not 0 <= self.ratio_bp <= BP:
            problems.append("ratio out of range")
        if problems:
            raise InconsistentSettlement(_("The insurance settlement does not add up."),
                                         details={"problems": problems})


# --------------------------------------------------------------------------- the split


def _ceil_share(amount: int, bp: int) -> int:
    return -(-amount * bp // BP)


def normalize_items(items: Iterable[ItemLike]) -> tuple[BillItem, ...]:
    """Check a bill's items and return them as `BillItem`s with parsed classes.

    Raises `EmptyBill`, `InvalidAmount` or `UnknownItemClass` (all ``ValueError``s with a code).
    """
    checked = tuple(
        BillItem(item_class=ItemClass.parse(getattr(item, "item_class", None)),
                 amount_fen=_check_fen(getattr(item, "amount_fen", None), f"items[{index}].amount_fen"),
                 name=str(getattr(item, "name", "") or ""))
        for index, item in enumerate(items))
    if not checked:
        raise EmptyBill(_("The bill has no items."))
    return checked


def settle(items: Iterable[ItemLike], *, insurance_type: InsuranceType | str, policy: InsurancePolicy,
           year_to_date: YearToDate) -> Settlement:
    """Split a bill into the insurer's and the patient's parts. Pure and deterministic.

    Raises an `InsuranceInputError` (a ``ValueError`` with a stable ``code``) for an empty
    bill, a negative or non-integer amount, an unknown item class or insurance type.
    """
    kind = InsuranceType.parse(insurance_type)
    if not isinstance(policy, InsurancePolicy):
        raise InvalidPolicy(_("An insurance policy is required."))
    if not isinstance(year_to_date, YearToDate):
        raise InvalidYearToDate(_("The patient's year-to-date figures are required."))
    terms = policy.terms(kind)

    lines: list[SettlementLine] = []
    for index, item in enumerate(normalize_items(items)):
        if terms is None or item.item_class is ItemClass.C:
            share = BP
        elif item.item_class is ItemClass.B:
            share = policy.class_b_pre_self_pay_bp
        else:
            share = 0
        own = _ceil_share(item.amount_fen, share)
        lines.append(SettlementLine(index=index, name=item.name, item_class=ItemClass(item.item_class),
                                    amount_fen=item.amount_fen, self_pay_ratio_bp=share,
                                    self_pay_fen=own, eligible_fen=item.amount_fen - own))

    total = sum(line.amount_fen for line in lines)
    if terms is None:
        return Settlement(insurance_type=kind, total_fen=total, insurance_fen=0, self_pay_fen=total,
                          eligible_fen=0, class_c_self_pay_fen=0, class_b_pre_self_pay_fen=0,
                          deductible_fen=0, ratio_self_pay_fen=0, over_cap_fen=0, uninsured_fen=total,
                          ratio_bp=0, year_to_date_before=year_to_date, year_to_date_after=year_to_date,
                          lines=tuple(lines))

    class_c = sum(line.self_pay_fen for line in lines if line.item_class is ItemClass.C)
    class_b_pre = sum(line.self_pay_fen for line in lines if line.item_class is ItemClass.B)
    eligible = sum(line.eligible_fen for line in lines)

    # A year-to-date figure above the policy's (the policy was lowered mid-year) means "met".
    deductible_left = max(0, terms.deductible_fen - year_to_date.deductible_met_fen)
    deductible = min(eligible, deductible_left)
    above = eligible - deductible
    by_ratio = above * terms.ratio_bp // BP  # rounded down: never more than the ratio
    cap_left = max(0, terms.annual_cap_fen - year_to_date.insurance_paid_fen)
    insurance = min(by_ratio, cap_left)
    over_cap = by_ratio - insurance
    ratio_self_pay = above - by_ratio

    self_pay = class_c + class_b_pre + deductible + ratio_self_pay + over_cap
    after = YearToDate(deductible_met_fen=year_to_date.deductible_met_fen + deductible,
                       insurance_paid_fen=year_to_date.insurance_paid_fen + insurance)
    return Settlement(insurance_type=kind, total_fen=total, insurance_fen=insurance, self_pay_fen=self_pay,
                      eligible_fen=eligible, class_c_self_pay_fen=class_c,
                      class_b_pre_self_pay_fen=class_b_pre, deductible_fen=deductible,
                      ratio_self_pay_fen=ratio_self_pay, over_cap_fen=over_cap, uninsured_fen=0,
                      ratio_bp=terms.ratio_bp, year_to_date_before=year_to_date, year_to_date_after=after,
                      lines=tuple(lines))


# --------------------------------------------------------------------------- JSON form


def settlement_to_dict(s: Settlement) -> dict[str, Any]:
    """The JSON form of a settlement (the ``settlement`` object of the insurer protocol)."""
    return {
        "insurance_type": str(s.insurance_type), "total_fen": s.total_fen,
        "insurance_fen": s.insurance_fen, "self_pay_fen": s.self_pay_fen,
        "eligible_fen": s.eligible_fen, "class_c_self_pay_fen": s.class_c_self_pay_fen,
        "class_b_pre_self_pay_fen": s.class_b_pre_self_pay_fen, "deductible_fen": s.deductible_fen,
        "ratio_self_pay_fen": s.ratio_self_pay_fen, "over_cap_fen": s.over_cap_fen,
        "uninsured_fen": s.uninsured_fen, "ratio_bp": s.ratio_bp,
        "year_to_date_before": _ytd_dict(s.year_to_date_before),
        "year_to_date_after": _ytd_dict(s.year_to_date_after),
        "lines": [{"index": line.index, "name": line.name, "item_class": str(line.item_class),
                   "amount_fen": line.amount_fen, "self_pay_ratio_bp": line.self_pay_ratio_bp,
                   "self_pay_fen": line.self_pay_fen, "eligible_fen": line.eligible_fen}
                  for line in s.lines],
    }


def settlement_from_dict(data: Mapping[str, Any]) -> Settlement:
    """Read `settlement_to_dict`'s form back; anything malformed or not adding up raises."""
    try:
        return Settlement(
            insurance_type=InsuranceType.parse(data["insurance_type"]),
            total_fen=data["total_fen"], insurance_fen=data["insurance_fen"],
            self_pay_fen=data["self_pay_fen"], eligible_fen=data["eligible_fen"],
            class_c_self_pay_fen=data["class_c_self_pay_fen"],
            class_b_pre_self_pay_fen=data["class_b_pre_self_pay_fen"],
            deductible_fen=data["deductible_fen"], ratio_self_pay_fen=data["ratio_self_pay_fen"],
            over_cap_fen=data["over_cap_fen"], uninsured_fen=data["uninsured_fen"],
            ratio_bp=_check_bp(data["ratio_bp"], "ratio_bp"),
            year_to_date_before=YearToDate(**data["year_to_date_before"]),
            year_to_date_after=YearToDate(**data["year_to_date_after"]),
            lines=tuple(SettlementLine(index=line["index"], name=str(line.get("name", "")),
                                       item_class=ItemClass.parse(line["item_class"]),
                                       amount_fen=_check_fen(line["amount_fen"], "amount_fen"),
                                       self_pay_ratio_bp=_check_bp(line["self_pay_ratio_bp"],
                                                                   "self_pay_ratio_bp"),
                                       self_pay_fen=_check_fen(line["self_pay_fen"], "self_pay_fen"),
                                       eligible_fen=_check_fen(line["eligible_fen"], "eligible_fen"))
                        for line in data.get("lines", ())),
        )
    except InsuranceInputError as exc:
        raise InconsistentSettlement(exc.message, details={"reason": exc.code, **exc.details}) from exc
    except (KeyError, TypeError, AttributeError) as exc:
        raise InconsistentSettlement(_("The insurance settlement is malformed."),
                                     details={"reason": repr(exc)}) from exc


def _ytd_dict(ytd: YearToDate) -> dict[str, int]:
    return {"deductible_met_fen": ytd.deductible_met_fen, "insurance_paid_fen": ytd.insurance_paid_fen}
