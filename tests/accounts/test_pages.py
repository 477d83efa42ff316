"""Sign-up, login, password change and family members through the platform's pages."""

import pytest

from portal.accounts.models import FamilyMember, User
from tests.helpers import PASSWORD, host_client, unique_phone

VALID_ID = "110101199003071233"
CHILD_ID = "110101201806150023"


def test_signup_creates_account_and_logs_in(platform_client):
    phone = unique_phone()
    r = platform_client.post("/accounts/signup/", {
        "phone": f"+86 {phone}", "name": "李雷", "password1": "a-good-pass-9", "password2": "a-good-pass-9"})
    assert r.status_code == 302
    user = User.objects.get(phone=phone)
    assert user.name == "李雷"
    assert platform_client.get("/accounts/family/").status_code == 200


def test_signup_bad_phone_shows_form_error_and_creates_nothing(platform_client):
    before = User.objects.count()
    r = platform_client.post("/accounts/signup/", {
        "phone": "12345", "password1": "a-good-pass-9", "password2": "a-good-pass-9"})
    assert r.status_code == 200
    assert "11 digits" in r.content.decode() or "11 位" in r.content.decode()
    assert User.objects.count() == before


def test_signup_existing_phone_is_refused(platform_client, patient):
    r = platform_client.post("/accounts/signup/", {
        "phone": patient.phone, "password1": "a-good-pass-9", "password2": "a-good-pass-9"})
    assert r.status_code == 200
    assert User.objects.filter(phone=patient.phone).count() == 1


def test_login_with_phone_and_password(platform_client, patient):
    r = platform_client.post("/accounts/login/", {"username": patient.phone, "password": PASSWORD})
    assert r.status_code == 302
    r = host_client("localhost").post("/accounts/login/", {"username": patient.phone,
                                                            "password": "wrong"})
    assert r.status_code == 200
    assert not r.wsgi_request.user.is_authenticated


def test_password_change_requires_old_password(platform_client, patient):
    platform_client.force_login(patient)
    r = platform_client.post("/accounts/password/", {
        "old_password": PASSWORD, "new_password1": "new-secret-77x", "new_password2": "new-secret-77x"})
    assert r.status_code == 302
    patient.refresh_from_db()
    assert patient.check_password("new-secret-77x")


def test_family_add_valid_member_derives_sex_and_birth(platform_client, patient):
    platform_client.force_login(patient)
    r = platform_client.post("/accounts/family/add/", {
        "name": "李小明", "relation": "child", "id_number": CHILD_ID, "phone": ""})
    assert r.status_code == 302
    member = patient.family_members.get()
    assert (member.sex, member.birth_date.isoformat()) == ("F", "2018-06-15")
    page = platform_client.get("/accounts/family/").content.decode()
    assert "李小明" in page and CHILD_ID not in page and "110101********0023" in page


def test_family_add_bad_check_digit_shows_message_and_saves_nothing(platform_client, patient):
    platform_client.force_login(patient)
    r = platform_client.post("/accounts/family/add/", {
        "name": "王五", "relation": "parent", "id_number": "110101199003071234"})
    assert r.status_code == 200
    assert "check digit" in r.content.decode() or "校验" in r.content.decode()
    assert not patient.family_members.exists()


def test_family_duplicate_self_and_id_are_refused(platform_client, patient):
    platform_client.force_login(patient)
    ok = {"name": "我", "relation": "self", "id_number": VALID_ID}
    assert platform_client.post("/accounts/family/add/", ok).status_code == 302
    again = {"name": "我", "relation": "other", "id_number": VALID_ID}
    assert platform_client.post("/accounts/family/add/", again).status_code == 200
    second_self = {"name": "另一个我", "relation": "self", "id_number": CHILD_ID}
    assert platform_client.post("/accounts/family/add/", second_self).status_code == 200
    assert patient.family_members.count() == 1


def test_family_member_of_another_account_is_404(platform_client, patient, other_patient):
    from portal.accounts.services import family_member_add

    theirs = family_member_add(account=other_patient, name="别人", relation="self",
                               id_number=VALID_ID)
    platform_client.force_login(patient)
    assert platform_client.get(f"/accounts/family/{theirs.pk}/").status_code == 404
    assert platform_client.post(f"/accounts/family/{theirs.pk}/delete/").status_code == 404
    assert FamilyMember.objects.filter(pk=theirs.pk).exists()


def test_family_pages_work_on_hospital_site_for_same_account(patient):
    client = host_client("alpha.localhost", patient)
    r = client.post("/accounts/family/add/", {"name": "李四", "relation": "self",
                                               "id_number": VALID_ID})
    assert r.status_code == 302
    assert patient.family_members.filter(name="李四").exists()


@pytest.mark.parametrize("blank", [" " * 8, " \t " * 4, "  ab  cd  "])
def test_signup_whitespace_password_is_refused_and_creates_nothing(platform_client, blank):
    phone = unique_phone()
    r = platform_client.post("/accounts/signup/", {
        "phone": phone, "name": "韩梅梅", "password1": blank, "password2": blank})
    assert r.status_code == 200
    assert "password_blank" in {e.code for e in r.context["form"].errors.as_data()["password1"]}
    assert not User.objects.filter(phone=phone).exists()
