"""The email channel is on by default, but there was nowhere to give an email address: the
preferences page said "No email address on your account yet" and offered no way to add one."""

from __future__ import annotations

from portal.notifications.channels import channel_preferences
from tests.helpers import HOSPITAL_A, host_client, make_user


def test_preferences_email_address_is_given_on_the_page(db):
    user = make_user()
    client = host_client(HOSPITAL_A["domain"], user)
    page = client.get("/inbox/preferences/").content.decode()
    assert 'name="email_address"' in page and "您的账号尚未填写电子邮箱" in page
    r = client.post("/inbox/preferences/", {"email": "on", "email_address": " Li.Na@Example.COM "})
    assert r.status_code == 302
    user.refresh_from_db()
    assert user.email == "Li.Na@example.com"
    assert "尚未填写电子邮箱" not in client.get("/inbox/preferences/").content.decode()


def test_preferences_bad_email_is_a_form_error_and_changes_nothing(db):
    user = make_user(email="old@example.com")
    client = host_client(HOSPITAL_A["domain"], user)
    before = channel_preferences(user=user)
    r = client.post("/inbox/preferences/", {"email_address": "not-an-address"})  # all unticked
    assert r.status_code == 400
    html = r.content.decode()
    assert "请输入有效的电子邮箱地址" in html and 'value="not-an-address"' in html
    user.refresh_from_db()
    assert user.email == "old@example.com" and channel_preferences(user=user) == before


def test_preferences_email_can_be_removed(db):
    user = make_user(email="old@example.com")
    client = host_client(HOSPITAL_A["domain"], user)
    assert client.post("/inbox/preferences/", {"email_address": ""}).status_code == 302
    user.refresh_from_db()
    assert user.email == ""
