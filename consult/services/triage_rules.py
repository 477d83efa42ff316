"""Triage as a use case: the rules staff edit and the versions they are frozen into, the
default rules, and a patient's answers turned into a decision that is kept.

Deciding itself is the pure engine `consult.triage.decide` (imported here as `engine`); this
module is everything around it that touches the database. The form to show is a read:
`consult.selectors.triage_form_for`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from tenants.models import hospital_tz

from .. import triage as engine
from ..defaults import snapshot
from ..errors import InvalidRule, NotYourPatient, TriageIncomplete
from ..models import TriageForm, TriageQuestion, TriageResult, TriageRule, TriageRuleVersion
from ..selectors import triage_form_for

_VERSION_LOCK = 7401  # advisory-lock key: one rule version number at a time


def triage_seed_defaults() -> None:
    """The general form and the red flags (idempotent). Migration 0002 (or its squash) runs the
    same seed in every schema, so this is for hospitals whose staff deleted them and want them back."""
    from django.apps import apps

    from ..defaults import seed

    with transaction.atomic():
        seed(apps)


def triage_current_version() -> TriageRuleVersion:
    """The version new triage decides by (published now if there is none yet)."""
    version = TriageRuleVersion.objects.order_by("-number").first()
    if version is None:
        version = triage_rules_publish(by=None, note="first version")
    return version


@transaction.atomic
def triage_rules_publish(*, by, note: str = "") -> TriageRuleVersion:
    """Freeze the active rules as a new version; new triage decides by it from now on."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [_VERSION_LOCK])
    number = (TriageRuleVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
    return TriageRuleVersion.objects.create(
        number=number, rules=snapshot(TriageRule.objects.filter(is_active=True)),
        note=note[:200], created_by=by)


def triage_rule_check(*, rule: TriageRule) -> None:
    questions = set(TriageQuestion.objects.values_list("code", flat=True))
    try:
        engine.validate_conditions(rule.conditions, questions)
    except engine.InvalidConditions as exc:
        raise InvalidRule(_("The conditions are not valid: %(why)s") % {"why": exc}) from None


@transaction.atomic
def triage_rule_save(*, rule: TriageRule, by) -> TriageRuleVersion:
    """Save a rule (new or changed) and publish a new rule version with it."""
    triage_rule_check(rule=rule)
    rule.save()
    return triage_rules_publish(by=by, note=f"saved {rule.code}")


@transaction.atomic
def triage_rule_delete(*, rule: TriageRule, by) -> TriageRuleVersion:
    code = rule.code
    rule.delete()
    return triage_rules_publish(by=by, note=f"deleted {code}")


def triage_clean_answers(*, form: TriageForm, data) -> dict:
    """Turn submitted values into typed answers. `data` maps a question code to a string or a
    list of strings (a QueryDict works; use `getlist` semantics for multi-choice). Duration
    answers come as CODE (a number) and CODE_unit (h / d / w) and are kept in hours."""
    answers: dict = {}
    errors: dict[str, str] = {}

    def values(key):
        if hasattr(data, "getlist"):
            return [v for v in data.getlist(key) if v != ""]
        raw = data.get(key)
        if raw is None or raw == "":
            return []
        return list(raw) if isinstance(raw, list | tuple) else [raw]

    for q in form.questions.all():
        raw = values(q.code)
        allowed = {c[0] for c in q.choices}
        if not raw:
            if q.required:
                errors[q.code] = _("Please answer this question.")
            continue
        if q.kind == TriageQuestion.Kind.CHOICE:
            if len(raw) != 1 or raw[0] not in allowed:
                errors[q.code] = _("Choose one of the options.")
            else:
                answers[q.code] = raw[0]
        elif q.kind == TriageQuestion.Kind.MULTI:
            if any(v not in allowed for v in raw):
                errors[q.code] = _("Choose from the options.")
            else:
                answers[q.code] = sorted(set(raw))
        else:
            try:
                number = Decimal(str(raw[0]).strip())
            except InvalidOperation:
                errors[q.code] = _("Enter a number.")
                continue
            if not number.is_finite():
                errors[q.code] = _("Enter a number.")
                continue
            if q.kind == TriageQuestion.Kind.DURATION:
                unit = (values(f"{q.code}_unit") or ["h"])[0]
                factor = {"h": 1, "d": 24, "w": 168}.get(unit)
                if factor is None:
                    errors[q.code] = _("Choose hours, days or weeks.")
                    continue
                number *= factor
            if (q.min_value is not None and number < q.min_value) or \
                    (q.max_value is not None and number > q.max_value):
                errors[q.code] = _("Enter a value between %(lo)s and %(hi)s.") % {
                    "lo": q.min_value, "hi": q.max_value}
                continue
            answers[q.code] = float(number)
    if errors:
        raise TriageIncomplete(_("Please check your answers."), details={"fields": errors})
    return answers


def _age_days(member, today=None) -> int:
    # The hospital's today: a child born "yesterday" there is one day old, whatever the
    # server's or the request's time zone.
    today = today or timezone.localdate(timezone=hospital_tz())
    return max((today - member.birth_date).days, 0)


@transaction.atomic
def triage_submit(*, account, family_member, answers: dict, department=None,
                  doctor=None, form: TriageForm | None = None) -> TriageResult:
    """Decide a triage for a family member of `account`, keep the answers and the rule version
    that decided. `answers` are raw values (see `triage_clean_answers`)."""
    if family_member.account_id != account.pk:
        raise NotYourPatient(_("You can only consult for your own family members."))
    if doctor is not None:
        department = doctor.department
    form = form or triage_form_for(department=department)
    clean = triage_clean_answers(form=form, data=answers)
    version = triage_current_version()
    age = _age_days(family_member)
    decision = engine.decide(rules=version.rules, answers=clean, age_days=age,
                             sex=family_member.sex)
    return TriageResult.objects.create(
        account=account, family_member=family_member, form=form, version=version,
        answers=clean, age_days=age, sex=family_member.sex, outcome=decision.outcome,
        matched=[{"code": r["code"], "outcome": r["outcome"], "name": r["name"],
                  "name_en": r.get("name_en", ""), "advice": r.get("advice", ""),
                  "advice_en": r.get("advice_en", ""),
                  "suggest_department_id": r.get("suggest_department_id")}
                 for r in decision.matched],
        department=department, doctor=doctor)
