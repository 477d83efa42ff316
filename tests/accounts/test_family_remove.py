"""Removing a family member, from the platform's pages and from a hospital's.

Django's delete collector looked for the member's patient cards, bookings and waitlist entries
in the current schema: on the platform host those tables do not exist, so every removal was a
500; on a hospital's host only that hospital was looked at. Now the database's foreign keys from
every hospital decide: a member with records anywhere is kept, with a clear message.
"""

from __future__ import annotations

import pytest

from portal.accounts.models import FamilyMember
from portal.accounts.services import family_member_add
from registration.services.patients import patient_card_for
from tests.helpers import HOSPITAL_A, HOSPITAL_B, PLATFORM_HOST, host_client, in_schema
from tests.registration.helpers import valid_id


def _member(patient, name="王小明"):
    return family_member_add(account=patient, name=name, relation="child", id_number=valid_id())


@pytest.mark.parametrize("host", [PLATFORM_HOST, HOSPITAL_A["domain"]])
def test_family_remove_member_without_records(patient, host):
    member = _member(patient)
    r = host_client(host, patient).post(f"/accounts/family/{member.pk}/delete/")
    assert r.status_code == 302
    assert not FamilyMember.objects.filter(pk=member.pk).exists()


@pytest.mark.parametrize("host", [PLATFORM_HOST, HOSPITAL_B["domain"]])
def test_family_remove_member_with_records_at_a_hospital_is_refused(hospital_a, patient, host):
    member = _member(patient)
    with in_schema(hospital_a):
        patient_card_for(family_member=member)  # a medical record number at hospital A
    r = host_client(host, patient).post(f"/accounts/family/{member.pk}/delete/")
    assert r.status_code == 409
    assert "无法删除" in r.content.decode()
    assert FamilyMember.objects.filter(pk=member.pk).exists()
    # the session's transaction is still usable, other members can go
    other = _member(patient, "王小红")
    assert host_client(host, patient).post(
        f"/accounts/family/{other.pk}/delete/").status_code == 302


def test_family_remove_platform_admin_offers_no_delete_that_would_crash(patient):
    from tests.helpers import make_user

    member = _member(patient)
    client = host_client(PLATFORM_HOST, make_user(is_staff=True, is_superuser=True))
    assert client.get(f"/admin/accounts/familymember/{member.pk}/delete/").status_code == 403
    assert client.get(f"/admin/accounts/user/{patient.pk}/delete/").status_code == 403
    page = client.get(f"/admin/accounts/user/{patient.pk}/change/")
    assert page.status_code == 200 and 'name="is_active"' in page.content.decode()
