"""A patient in a real browser (Playwright driving Debian's headless Chromium).

Sign up and log in on the platform, open a hospital's site (another host: the login follows
through single sign-on), add a family member there, switch to English.
"""

from __future__ import annotations

import pytest

from tests.helpers import unique_phone

pytestmark = [pytest.mark.browser]


def test_browser_signup_login_hospital_sso_family_member_english(page, live_site):
    platform = f"http://localhost:{live_site}"
    hospital = f"http://alpha.localhost:{live_site}"
    phone = unique_phone()
    password = "browser-pass-2026"

    # Chinese by default, even though the browser asks for English.
    page.goto(platform + "/")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    page.get_by_role("link", name="注册").click()
    page.locator("input[name=phone]").fill(phone)
    page.locator("input[name=name]").fill("韩梅梅")
    page.locator("input[name=password1]").fill(password)
    page.locator("input[name=password2]").fill(password)
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url("**/accounts/family/")

    # Log out, then log in on the platform.
    page.get_by_role("button", name="退出登录").click()
    page.wait_for_url(platform + "/")
    page.get_by_role("link", name="登录").click()
    page.locator("input[name=username]").fill(phone)
    page.locator("input[name=password]").fill(password)
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url(platform + "/")
    assert "韩梅梅" in page.locator("header").inner_text()

    # Another host: the hospital site knows who we are without another login.
    page.goto(hospital + "/")
    page.wait_for_url(hospital + "/")
    assert "甲市人民医院" in page.locator("h1").inner_text()
    assert "韩梅梅" in page.locator("header").inner_text()

    # Add a family member on the hospital's site.
    page.get_by_role("link", name="就诊人").first.click()
    page.wait_for_url(hospital + "/accounts/family/")
    page.get_by_role("link", name="添加就诊人").click()
    page.locator("input[name=name]").fill("李小红")
    page.locator("select[name=relation]").select_option("child")
    page.locator("input[name=id_number]").fill("110101201806150024")  # wrong check digit
    page.locator("form.form button[type=submit]").click()
    assert page.locator(".error, .errors").first.is_visible()
    page.locator("input[name=id_number]").fill("110101201806150023")
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url(hospital + "/accounts/family/")
    listing = page.locator("main").inner_text()
    assert "李小红" in listing and "110101********0023" in listing
    assert "110101201806150023" not in page.content()

    # Switch to English; the choice sticks to the account.
    page.get_by_role("button", name="English").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Family members" in page.locator("h1").inner_text()
    page.goto(platform + "/")
    assert "Find a hospital" in page.locator("h1").inner_text()
