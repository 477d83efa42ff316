"""Consult in the hospital admin: rules edited there are versioned; roles see what they may."""

from __future__ import annotations

import json

from consult.models import TriageRule, TriageRuleVersion
from tests.helpers import host_client, in_schema, make_staff


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


def test_admin_triage_rules_and_forms_are_changed_by_hospital_admins_only(
        hospital_a, admin_a, registrar_a, finance_a):
    """Clinical safety rules: the admin role changes and publishes them, doctors only read them,
    registrars and finance do not see them at all."""
    from consult.models import TriageForm

    doctor = make_staff(hospital_a, "doctor")
    with in_schema(hospital_a):
        rule = TriageRule.objects.filter(is_active=True).first()
        form = TriageForm.objects.get(code="general")
        before = TriageRuleVersion.objects.order_by("-number").first().number
        rule_count = TriageRule.objects.count()
    rule_url = f"/admin/consult/triagerule/{rule.pk}/change/"
    form_url = f"/admin/consult/triageform/{form.pk}/change/"
    changed = {**_rule_form({"q": "symptoms", "op": "has", "value": "rash"}), "code": rule.code,
               "name": "医生改的"}

    # Doctors: list and read each page, with no way to save, add or delete.
    as_doctor = host_client("alpha.localhost", doctor)
    for url in ("/admin/consult/triagerule/", rule_url, "/admin/consult/triageform/", form_url,
                "/admin/consult/triageruleversion/"):
        page = as_doctor.get(url)
        assert page.status_code == 200, url
        assert 'name="_save"' not in page.content.decode(), url
    assert "/admin/consult/triagerule/add/" not in as_doctor.get(
        "/admin/consult/triagerule/").content.decode()
    assert as_doctor.post(rule_url, changed).status_code == 403
    assert as_doctor.post("/admin/consult/triagerule/add/", _rule_form(
        {"q": "symptoms", "op": "has", "value": "rash"})).status_code == 403
    assert as_doctor.post(f"/admin/consult/triagerule/{rule.pk}/delete/",
                          {"post": "yes"}).status_code == 403
    assert as_doctor.post("/admin/consult/triagerule/", {
        "action": "delete_selected", "_selected_action": [rule.pk], "post": "yes"}).status_code in (
        200, 302, 403)
    assert as_doctor.post(form_url, {"name": "改", "code": "general"}).status_code == 403
    assert as_doctor.post("/admin/consult/triageform/add/", {"name": "新", "code": "new"}
                          ).status_code == 403
    assert as_doctor.post(f"/admin/consult/triageform/{form.pk}/delete/",
                          {"post": "yes"}).status_code == 403
    with in_schema(hospital_a):
        assert TriageRule.objects.count() == rule_count
        assert TriageRule.objects.get(pk=rule.pk).name == rule.name
        assert TriageForm.objects.filter(pk=form.pk, name=form.name).exists()
        assert TriageRuleVersion.objects.order_by("-number").first().number == before

    # Registrars and finance: not there at all.
    for user in (registrar_a, finance_a):
        client = host_client("alpha.localhost", user)
        for url in ("/admin/consult/triagerule/", rule_url, "/admin/consult/triageform/",
                    form_url):
            assert client.get(url).status_code == 403, (user, url)
        assert client.post(rule_url, changed).status_code == 403

    # The hospital admin changes the rule, which publishes a new version.
    as_admin = host_client("alpha.localhost", admin_a)
    page = as_admin.get(rule_url).content.decode()
    assert 'name="_save"' in page
    saved = as_admin.post(rule_url, {**changed, "name": "管理员改的"})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    with in_schema(hospital_a):
        latest = TriageRuleVersion.objects.order_by("-number").first()
        assert latest.number == before + 1 and latest.created_by == admin_a
        assert {r["code"]: r["name"] for r in latest.rules}[rule.code] == "管理员改的"
