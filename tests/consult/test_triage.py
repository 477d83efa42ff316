"""Triage: every seeded red flag stops the online path; benign answers go online; rule
changes are versioned and each triage keeps the version that decided it."""

from __future__ import annotations

import pytest

from consult import selectors
from consult.defaults import RED_FLAGS
from consult.errors import InvalidRule, NotYourPatient, TriageIncomplete, TriageNotOnline
from consult.models import TriageResult, TriageRule, TriageRuleVersion
from consult.services import consultations, triage_rules
from tests.consult.helpers import birth_days_ago, make_patient
from tests.helpers import in_schema

ADULT = "19900307"

# (red flag code, birth date, sex, answers)
RED_FLAG_CASES = [
    ("chest-pain-breathless", ADULT, "M",
     {"symptoms": ["chest_pain", "short_of_breath"], "duration": "1", "pregnant": "na"}),
    ("chest-pain-sweating", ADULT, "M",
     {"symptoms": ["chest_pain", "sweating"], "duration": "2", "pregnant": "na"}),
    ("stroke-fast", ADULT, "F",
     {"symptoms": ["face_drooping"], "duration": "1", "pregnant": "no"}),
    ("stroke-fast", ADULT, "M",
     {"symptoms": ["arm_weakness", "headache"], "duration": "3", "pregnant": "na"}),
    ("stroke-fast", "19500101", "M",
     {"symptoms": ["speech_difficulty"], "duration": "1", "pregnant": "na"}),
    ("heavy-bleeding", ADULT, "M",
     {"symptoms": ["heavy_bleeding"], "duration": "1", "pregnant": "na"}),
    ("breathing-difficulty", ADULT, "F",
     {"symptoms": ["severe_breathing_difficulty", "cough"], "duration": "5", "pregnant": "no"}),
    ("infant-fever", birth_days_ago(40), "F",
     {"symptoms": ["fever"], "duration": "6", "pregnant": "na"}),
    ("infant-fever", birth_days_ago(80), "M",
     {"symptoms": ["cough"], "temperature": "38.3", "duration": "12", "pregnant": "na"}),
    ("suicidal-thoughts", "20050101", "F",
     {"symptoms": ["suicidal_thoughts"], "duration": "2", "duration_unit": "w",
      "pregnant": "no"}),
    ("pregnancy-bleeding-pain", ADULT, "F",
     {"symptoms": ["vaginal_bleeding"], "duration": "2", "pregnant": "yes"}),
    ("pregnancy-bleeding-pain", ADULT, "F",
     {"symptoms": ["severe_abdominal_pain"], "duration": "3", "pregnant": "yes"}),
]

BENIGN_CASES = [
    (ADULT, "M", {"symptoms": ["cough", "sore_throat"], "temperature": "37.4", "duration": "2",
                  "duration_unit": "d", "pregnant": "na"}),
    (ADULT, "F", {"symptoms": ["rash"], "duration": "1", "duration_unit": "w", "pregnant": "no"}),
    (ADULT, "M", {"symptoms": ["chest_pain"], "duration": "1", "pregnant": "na"}),
    # Fever at four months is not the infant red flag.
    (birth_days_ago(120), "M", {"symptoms": ["fever"], "temperature": "38.2", "duration": "5",
                                "pregnant": "na"}),
    # Bleeding without pregnancy is not the pregnancy red flag.
    (ADULT, "F", {"symptoms": ["vaginal_bleeding"], "duration": "1", "pregnant": "no"}),
]


def test_triage_table_covers_every_seeded_red_flag():
    assert {code for code, *_ in RED_FLAG_CASES} == {r["code"] for r in RED_FLAGS}


@pytest.mark.parametrize(("code", "birth", "sex", "answers"), RED_FLAG_CASES)
def test_triage_red_flag_routes_to_emergency(hospital_a, code, birth, sex, answers):
    user, member = make_patient("分诊", birth=birth, sex=sex)
    with in_schema(hospital_a):
        result = triage_rules.triage_submit(account=user, family_member=member, answers=answers)
        assert result.outcome == "emergency_now"
        assert result.matched[0]["code"] == code
        assert result.matched[0]["advice"]  # the patient is told what to do
        # and the online path is closed
        with pytest.raises(TriageNotOnline) as exc:
            consultations.consultation_start(triage=result, account=user, question="?")
        assert exc.value.code == "triage_not_online"


@pytest.mark.parametrize(("birth", "sex", "answers"), BENIGN_CASES)
def test_triage_benign_answers_route_online(hospital_a, birth, sex, answers):
    user, member = make_patient("普通", birth=birth, sex=sex)
    with in_schema(hospital_a):
        result = triage_rules.triage_submit(account=user, family_member=member, answers=answers)
        assert result.outcome == "online_ok", result.matched
        assert result.matched == []


def test_triage_long_fever_routes_to_visit_in_person(hospital_a):
    user, member = make_patient("发热")
    with in_schema(hospital_a):
        result = triage_rules.triage_submit(account=user, family_member=member, answers={
            "symptoms": ["fever", "cough"], "temperature": "38.6", "duration": "4",
            "duration_unit": "d", "pregnant": "na"})
        assert result.outcome == "visit_in_person"
        assert result.answers["duration"] == 96.0  # kept in hours


def test_triage_red_flags_exist_in_every_hospital(hospital_a, hospital_b):
    codes = {r["code"] for r in RED_FLAGS}
    for hospital in (hospital_a, hospital_b):  # both provisioned by the provisioning service
        with in_schema(hospital):
            assert codes <= set(TriageRule.objects.values_list("code", flat=True))
            version = TriageRuleVersion.objects.order_by("-number").first()
            assert codes <= {r["code"] for r in version.rules}


def test_triage_incomplete_answers_refused_with_field_errors(hospital_a):
    user, member = make_patient("漏填")
    with in_schema(hospital_a):
        with pytest.raises(TriageIncomplete) as exc:
            triage_rules.triage_submit(account=user, family_member=member,
                                       answers={"symptoms": ["nonsense"], "temperature": "abc"})
        fields = exc.value.details["fields"]
        assert {"symptoms", "temperature", "duration", "pregnant"} <= set(fields)
        assert TriageResult.objects.filter(family_member_id=member.pk).count() == 0


def test_triage_for_someone_elses_family_member_refused(hospital_a, other_patient):
    _, member = make_patient("别人家")
    with in_schema(hospital_a), pytest.raises(NotYourPatient):
        triage_rules.triage_submit(account=other_patient, family_member=member,
                                   answers={"symptoms": ["cough"], "duration": "1", "pregnant": "na"})


def test_triage_rule_change_is_versioned_and_old_results_keep_theirs(hospital_a, admin_a):
    user, member = make_patient("版本")
    rash = {"symptoms": ["rash"], "duration": "1", "pregnant": "na"}
    with in_schema(hospital_a):
        before = triage_rules.triage_submit(account=user, family_member=member, answers=rash)
        assert before.outcome == "online_ok"
        rule = TriageRule(code="rash-in-person", name="皮疹需面诊", outcome="visit_in_person",
                          conditions={"q": "symptoms", "op": "has", "value": "rash"},
                          advice="请到皮肤科就诊")
        new_version = triage_rules.triage_rule_save(rule=rule, by=admin_a)
        assert new_version.number > before.version.number
        assert new_version.created_by == admin_a
        after = triage_rules.triage_submit(account=user, family_member=member, answers=rash)
        assert (after.outcome, after.version_id) == ("visit_in_person", new_version.pk)
        # The first triage still shows the answers and the version that decided it.
        before.refresh_from_db()
        assert before.outcome == "online_ok" and before.answers["symptoms"] == ["rash"]
        assert "rash-in-person" not in {r["code"] for r in before.version.rules}
        # Deleting is versioned too.
        latest = triage_rules.triage_rule_delete(rule=rule, by=admin_a)
        assert latest.number == new_version.number + 1
        assert triage_rules.triage_submit(account=user, family_member=member,
                                          answers=rash).outcome == "online_ok"


def test_triage_rule_with_bad_conditions_refused(hospital_a, admin_a):
    with in_schema(hospital_a):
        count = TriageRuleVersion.objects.count()
        for bad in ({"q": "symptoms", "op": "like", "value": "x"},
                    {"q": "no_such_question", "op": "eq", "value": 1},
                    {"all": []}):
            rule = TriageRule(code="bad", name="bad", outcome="emergency_now", conditions=bad)
            with pytest.raises(InvalidRule):
                triage_rules.triage_rule_save(rule=rule, by=admin_a)
        assert TriageRuleVersion.objects.count() == count


def test_triage_red_flags_seeded_in_a_newly_provisioned_hospital(db):
    from tenants.services import hospital_provision

    hospital = hospital_provision(code="consultnew", name="新院", domain="consultnew.localhost")
    with in_schema(hospital):
        assert {r["code"] for r in RED_FLAGS} <= set(
            TriageRule.objects.filter(outcome="emergency_now").values_list("code", flat=True))
        assert TriageRuleVersion.objects.get().number == 1
        user, member = make_patient("新院患者")
        result = triage_rules.triage_submit(account=user, family_member=member, answers={
            "symptoms": ["heavy_bleeding"], "duration": "1", "pregnant": "na"})
        assert result.outcome == "emergency_now" and result.version.number == 1


def test_triage_department_form_is_used_for_its_department_and_children(hospital_a):
    from consult.models import TriageForm, TriageQuestion
    from registration.models import Department

    user, member = make_patient("皮肤")
    with in_schema(hospital_a):
        derm = Department.objects.get(code="dermatology")
        form = TriageForm.objects.create(code="derm", name="皮肤科预问诊", department=derm)
        TriageQuestion.objects.create(form=form, code="itch_days", text="瘙痒几天了？",
                                      kind="number", min_value=0, max_value=365)
        assert selectors.triage_form_for(department=derm) == form
        general = selectors.triage_form_for(department=Department.objects.get(code="cardiology"))
        assert general.code == "general"
        result = triage_rules.triage_submit(account=user, family_member=member, department=derm,
                                            answers={"itch_days": "3"})
        assert (result.form_id, result.answers, result.outcome) == (form.pk, {"itch_days": 3.0},
                                                                     "online_ok")
