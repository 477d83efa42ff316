"""Editing a family member never puts the full resident ID number back on the page.

The edit form used to fill the ID field with the full number; now it shows the masked number,
which (like an empty field) keeps the stored one. A new full number replaces it, checked.
"""

from __future__ import annotations

from portal.accounts.models import FamilyMember
from portal.accounts.services import family_member_add
from tests.conftest import PLATFORM_HOST, host_client

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
