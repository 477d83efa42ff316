"""Consult in the hospital admin: rules edited there are versioned; roles see what they may."""

from __future__ import annotations

import json

from consult.models import TriageRule, TriageRuleVersion
from tests.conftest import host_client, in_schema, make_staff


def _rule_form(conditions) -> dict:
    return {"code": "admin-rash", "name": "皮疹伴发热", "name_en": "", "outcome": "visit_in_person",
            "conditions": json.dumps(conditions), "advice": "请到皮肤科就诊", "advice_en": "",
            "suggest_department": "", "is_active": "on"}


def test_admin_rule_edit_publishes_a_version_and_bad_conditions_are_refused(hospital_a, admin_a):
    client = host_client("alpha.localhost", admin_a)
    with in_schema(hospital_a):
        before = TriageRuleVersion.objects.order_by("-number").first().number
    bad = client.post("/admin/consult/triagerule/add/", _rule_form({"q": "symptoms", "op": "like",
                                                                     "value": "rash"}))
    assert bad.status_code == 200 and "like" in bad.content.decode()
    good = client.post("/admin/consult/triagerule/add/", _rule_form(
        {"all": [{"q": "symptoms", "op": "has", "value": "rash"},
                 {"q": "symptoms", "op": "has", "value": "fever"}]}))
    assert good.status_code == 302, good.content.decode()[:2000]
    with in_schema(hospital_a):
        latest = TriageRuleVersion.objects.order_by("-number").first()
        assert latest.number == before + 1 and latest.created_by == admin_a
        assert "admin-rash" in {r["code"] for r in latest.rules}
        rule = TriageRule.objects.get(code="admin-rash")
    deleted = client.post(f"/admin/consult/triagerule/{rule.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    with in_schema(hospital_a):
        latest = TriageRuleVersion.objects.order_by("-number").first()
        assert latest.number == before + 2 and "admin-rash" not in {r["code"] for r in latest.rules}


def test_admin_consult_app_by_role(hospital_a, admin_a, registrar_a, finance_a):
    doctor = make_staff(hospital_a, "doctor")
    for user, status in ((admin_a, 200), (doctor, 200), (registrar_a, 403), (finance_a, 403)):
        for url in ("/admin/consult/record/", "/admin/consult/triagerule/",
                    "/admin/consult/consultation/"):
            assert host_client("alpha.localhost", user).get(url).status_code == status, (user, url)
    # Settings and the access log: hospital admins only.
    for url in ("/admin/consult/consultsettings/", "/admin/consult/recordaccess/"):
        assert host_client("alpha.localhost", admin_a).get(url).status_code == 200
        assert host_client("alpha.localhost", doctor).get(url).status_code == 403


def test_admin_triage_question_choices_are_checked(hospital_a):
    import pytest
    from django.core.exceptions import ValidationError

    from consult.models import TriageForm, TriageQuestion

    with in_schema(hospital_a):
        form = TriageForm.objects.get(code="general")
        for bad in ([], [["only-value"]], [["a", "甲"], ["a", "乙"]], "a,b"):
            with pytest.raises(ValidationError):
                TriageQuestion(form=form, code="q", text="?", kind="choice", choices=bad).clean()
        TriageQuestion(form=form, code="q", text="?", kind="choice",
                       choices=[["a", "甲", "A"], ["b", "乙"]]).clean()
