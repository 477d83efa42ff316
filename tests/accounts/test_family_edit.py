"""Editing a family member never puts the full resident ID number back on the page.

The edit form used to fill the ID field with the full number; now it shows the masked number,
which (like an empty field) keeps the stored one. A new full number replaces it, checked.
"""

from __future__ import annotations

import re

import pytest

from portal.accounts.models import FamilyMember
from portal.accounts.services import family_member_add
from tests.helpers import HOSPITAL_B, PLATFORM_HOST, host_client

ID = "110101199003071233"
OTHER_ID = "110101201806150023"


def _member(patient):
    return family_member_add(account=patient, name="王芳", relation="self", id_number=ID)


def test_family_edit_shows_the_id_number_masked(patient):
    member = _member(patient)
    html = host_client(PLATFORM_HOST, patient).get(f"/accounts/family/{member.pk}/")
    html = html.content.decode()
    assert ID not in html and member.masked_id_number in html


def test_family_edit_masked_or_empty_number_keeps_it(patient):
    member = _member(patient)
    client = host_client(PLATFORM_HOST, patient)
    for sent, name in ((member.masked_id_number, "王芳芳"), ("", "王小芳")):
        r = client.post(f"/accounts/family/{member.pk}/", {
            "name": name, "relation": "self", "id_number": sent, "phone": ""})
        assert r.status_code == 302
        member.refresh_from_db()
        assert (member.name, member.id_number) == (name, ID)


def test_family_edit_new_number_is_checked_then_replaces(patient):
    member = _member(patient)
    client = host_client(PLATFORM_HOST, patient)
    bad = OTHER_ID[:-1] + ("4" if OTHER_ID[-1] != "4" else "5")
    r = client.post(f"/accounts/family/{member.pk}/", {
        "name": "王芳", "relation": "child", "id_number": bad, "phone": ""})
    assert r.status_code == 200 and "校验码" in r.content.decode()
    assert FamilyMember.objects.get(pk=member.pk).id_number == ID
    r = client.post(f"/accounts/family/{member.pk}/", {
        "name": "王芳", "relation": "child", "id_number": OTHER_ID.lower(), "phone": ""})
    assert r.status_code == 302
    assert FamilyMember.objects.get(pk=member.pk).id_number == OTHER_ID


def test_family_edit_mobile_number_masked_too(patient):
    member = family_member_add(account=patient, name="王芳", relation="self", id_number=ID,
                               phone="13912345678")
    client = host_client(PLATFORM_HOST, patient)
    html = client.get(f"/accounts/family/{member.pk}/").content.decode()
    assert "13912345678" not in html and member.masked_phone in html
    form = {"name": "王芳", "relation": "self", "id_number": member.masked_id_number}
    assert client.post(f"/accounts/family/{member.pk}/",
                       {**form, "phone": member.masked_phone}).status_code == 302
    member.refresh_from_db()
    assert member.phone == "13912345678"
    r = client.post(f"/accounts/family/{member.pk}/", {**form, "phone": "12345"})
    assert r.status_code == 200 and "11 位" in r.content.decode()
    assert client.post(f"/accounts/family/{member.pk}/",
                       {**form, "phone": "13800001111"}).status_code == 302
    member.refresh_from_db()
    assert member.phone == "13800001111"
    assert client.post(f"/accounts/family/{member.pk}/", {**form, "phone": ""}).status_code == 302
    member.refresh_from_db()
    assert member.phone == ""


# --------------------------------------------------------------------------- records at a hospital
# Once a hospital keeps records of a member (a patient card, made on the first booking), the name
# and ID number it filed them under are fixed: shown read-only with the reason, a forged change
# refused by the service, the rest still editable.


def _with_card(hospital, patient):
    from registration.services.patients import patient_card_for
    from tests.helpers import in_schema

    member = _member(patient)
    with in_schema(hospital):
        patient_card_for(family_member=member)
    return member


def test_family_edit_identity_read_only_once_a_hospital_has_records(hospital_a, patient):
    member = _with_card(hospital_a, patient)
    for host in (PLATFORM_HOST, HOSPITAL_B["domain"]):  # records at A, seen from anywhere
        html = host_client(host, patient).get(f"/accounts/family/{member.pk}/").content.decode()
        for name in ("name", "id_number"):
            tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html).group(0)
            assert "readonly" in tag, tag
        assert "已在医院建档" in html and "请联系医院" in html
        assert ID not in html and member.masked_id_number in html
        phone = re.search(r'<input[^>]*name="phone"[^>]*>', html).group(0)
        assert "readonly" not in phone
    english = host_client(PLATFORM_HOST, patient)
    english.cookies["django_language"] = "en"
    html = english.get(f"/accounts/family/{member.pk}/").content.decode()
    assert "please contact the hospital" in html
    # Without records: editable as before.
    other = family_member_add(account=patient, name="王小明", relation="child", id_number=OTHER_ID)
    html = host_client(PLATFORM_HOST, patient).get(f"/accounts/family/{other.pk}/")
    assert "readonly" not in html.content.decode()


def test_family_edit_forged_identity_change_is_refused_once_records_exist(hospital_a, patient):
    member = _with_card(hospital_a, patient)
    client = host_client(PLATFORM_HOST, patient)
    url = f"/accounts/family/{member.pk}/"
    same = {"name": "王芳", "relation": "self", "id_number": member.masked_id_number, "phone": ""}
    for forged in ({"id_number": OTHER_ID}, {"name": "王芳芳"}, {"id_number": ID[:-1] + "X"}):
        r = client.post(url, {**same, **forged})
        assert r.status_code == 200, forged
        field = next(iter(forged))
        assert re.search(rf'id="id_{field}_error"', r.content.decode()), forged
        member.refresh_from_db()
        assert (member.name, member.id_number, member.relation) == ("王芳", ID, "self")
    # Everything else stays the patient's to change.
    assert client.post(url, {**same, "name": " 王芳 ", "phone": "13800001111"}).status_code == 302
    member.refresh_from_db()
    assert (member.name, member.id_number, member.phone) == ("王芳", ID, "13800001111")


def test_family_edit_service_refuses_identity_change_after_a_booking(hospital_b, patient):
    from django.core.exceptions import ValidationError

    from portal.accounts.services import family_member_update
    from registration.models import TimeSlice
    from registration.services import booking as svc
    from tests.helpers import in_schema
    from tests.registration.helpers import make_session

    member = _member(patient)
    with in_schema(hospital_b):
        _, schedule = make_session()
        svc.booking_hold(slice_id=TimeSlice.objects.filter(schedule=schedule).first().pk,
                         family_member=member, account=patient)
    with pytest.raises(ValidationError) as refused:
        family_member_update(member=member, name="王芳", relation="self", id_number=OTHER_ID)
    assert refused.value.error_dict["id_number"][0].code == "identity_locked"
    member.refresh_from_db()
    assert (member.id_number, member.sex, member.birth_date.year) == (ID, "M", 1990)
    family_member_update(member=member, name="王芳", relation="parent", id_number=ID)
    assert FamilyMember.objects.get(pk=member.pk).relation == "parent"


def test_family_edit_records_check_changes_nothing(hospital_a, patient):
    from portal.accounts.services import family_member_has_records
    from registration.services.patients import patient_card_for
    from tests.helpers import in_schema

    member = _member(patient)
    assert not family_member_has_records(member=member)
    assert FamilyMember.objects.filter(pk=member.pk).exists()  # the probe's DELETE undone
    with in_schema(hospital_a):
        patient_card_for(family_member=member)
    assert family_member_has_records(member=member)
    assert FamilyMember.objects.filter(pk=member.pk).exists()
