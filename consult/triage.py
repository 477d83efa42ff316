"""The triage engine: a pure function from answers + age + sex + rules to an outcome.

Rules are data (see `TriageRule.conditions`); this module has no database access, so the
same function decides for the page, the tests and any later API, and a frozen rule version
decides exactly as it did on the day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

EMERGENCY_NOW = "emergency_now"
VISIT_IN_PERSON = "visit_in_person"
ONLINE_OK = "online_ok"
_RANK = {EMERGENCY_NOW: 0, VISIT_IN_PERSON: 1, ONLINE_OK: 2}

OPS = ("eq", "ne", "in", "has", "has_any", "gt", "gte", "lt", "lte")


class InvalidConditions(ValueError):
    pass


@dataclass
class Decision:
    outcome: str
    matched: list[dict] = field(default_factory=list)  # the rules that matched, most urgent first

    @property
    def deciding(self) -> dict | None:
        return self.matched[0] if self.matched else None


def _number(value) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _facts_value(facts: dict, key: str):
    return facts.get(key)


def _check(cond: dict, facts: dict) -> bool:
    if "all" in cond:
        return all(_check(c, facts) for c in cond["all"])
    if "any" in cond:
        return any(_check(c, facts) for c in cond["any"])
    if "not" in cond:
        return not _check(cond["not"], facts)
    op, expected = cond.get("op"), cond.get("value")
    actual = _facts_value(facts, cond.get("q", ""))
    if actual is None or actual == "" or actual == []:
        return False  # an unanswered question never matches (nor triggers "ne")
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    if op == "in":
        return actual in (expected or [])
    if op == "has":
        return isinstance(actual, list) and expected in actual
    if op == "has_any":
        return isinstance(actual, list) and any(v in actual for v in (expected or []))
    a, e = _number(actual), _number(expected)
    if a is None or e is None:
        return False
    return {"gt": a > e, "gte": a >= e, "lt": a < e, "lte": a <= e}[op]


def validate_conditions(cond, questions: set[str] | None = None) -> None:
    """Raise InvalidConditions if a rule's conditions are not well-formed."""
    if not isinstance(cond, dict) or not cond:
        raise InvalidConditions("a condition must be an object")
    for key in ("all", "any"):
        if key in cond:
            if not isinstance(cond[key], list) or not cond[key]:
                raise InvalidConditions(f"'{key}' needs a non-empty list")
            for c in cond[key]:
                validate_conditions(c, questions)
            return
    if "not" in cond:
        validate_conditions(cond["not"], questions)
        return
    if cond.get("op") not in OPS:
        raise InvalidConditions(f"unknown op {cond.get('op')!r}; use one of {', '.join(OPS)}")
    q = cond.get("q")
    if not q or not isinstance(q, str):
        raise InvalidConditions("each condition needs 'q' (a question code, age_years, "
                                "age_days or sex)")
    if questions is not None and q not in questions | {"age_years", "age_days", "sex"}:
        raise InvalidConditions(f"no question has the code {q!r}")
    if "value" not in cond:
        raise InvalidConditions("each condition needs 'value'")


def decide(*, rules: list[dict], answers: dict, age_days: int, sex: str) -> Decision:
    """The most urgent outcome among the rules that match; `online_ok` if none does.

    `rules`: [{"code", "outcome", "conditions", ...}] (a version's frozen copy).
    """
    facts = dict(answers)
    facts["age_days"] = age_days
    facts["age_years"] = age_days // 365
    facts["sex"] = sex
    matched = [r for r in rules if _check(r["conditions"], facts)]
    matched.sort(key=lambda r: (_RANK.get(r["outcome"], 9), r["code"]))
    return Decision(outcome=matched[0]["outcome"] if matched else ONLINE_OK, matched=matched)
