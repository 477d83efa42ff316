"""Consult and records in a real browser against a real web server:

* a patient answers the pre-screening with a red flag and is stopped with the emergency advice;
* a patient completes a paid consultation while a doctor replies from the workbench (two
  browser contexts: the patient's page shows the reply without a reload);
* a patient opens a lab report and sees the abnormal values highlighted.
"""

from __future__ import annotations

import os

import pytest
from django.db import connection

from tests.helpers import CHROMIUM, PASSWORD, in_schema

pytestmark = [pytest.mark.browser]


@pytest.fixture
def browser(live_site):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync"])
        b.csp_blocked = []
        yield b
        b.close()
        assert not b.csp_blocked, f"blocked by the Content-Security-Policy: {b.csp_blocked}"


def _phone_page(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on("console", lambda msg: browser.csp_blocked.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    return page


def _login(page, platform: str, phone: str) -> None:
    page.goto(platform + "/accounts/login/")
    page.locator("input[name=username]").fill(phone)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url(platform + "/")


@pytest.fixture
def cast(committed_hospital_a):
    """Committed (the web server is another process): a patient and an online doctor at alpha."""
    from tests.consult.helpers import make_online_doctor, make_patient

    user, member = make_patient("浏览器患者")
    alpha = committed_hospital_a
    with in_schema(alpha):
        doctor, doctor_user = make_online_doctor(alpha, fee=1500, name="网诊医生")
    connection.set_schema_to_public()
    return user, member, doctor, doctor_user


def test_browser_red_flag_stops_the_patient_with_emergency_advice(cast, live_site, browser):
    user, member, doctor, _ = cast
    platform, hospital = f"http://localhost:{live_site}", f"http://alpha.localhost:{live_site}"
    page = _phone_page(browser)
    _login(page, platform, user.phone)

    page.goto(hospital + "/")
    page.locator("#home-consult").click()
    page.wait_for_url(hospital + "/consult/")
    page.locator(f"a[href='/consult/start/?doctor={doctor.pk}']").click()
    page.locator(f"input[name=member][value='{member.pk}']").check()
    page.locator("input[name=symptoms][value=chest_pain]").check()
    page.locator("input[name=symptoms][value=sweating]").check()
    page.locator("input[name=duration]").fill("1")
    page.locator("select[name=duration_unit]").select_option("h")
    page.locator("input[name=pregnant][value=na]").check()
    page.locator("#triage-submit").click()

    page.wait_for_url("**/consult/triage/**")
    outcome = page.locator("#triage-outcome")
    assert outcome.get_attribute("data-outcome") == "emergency_now"
    assert "120" in page.locator("#emergency-advice").inner_text()
    assert page.locator("#emergency-call").get_attribute("href") == "tel:120"
    assert page.locator("#consult-create").count() == 0  # no way on to pay


def test_browser_paid_consultation_with_doctor_replying_from_workbench(cast, live_site, browser):
    user, member, doctor, doctor_user = cast
    platform, hospital = f"http://localhost:{live_site}", f"http://alpha.localhost:{live_site}"
    patient = _phone_page(browser)
    _login(patient, platform, user.phone)

    # Pre-screening with benign answers, the question, then pay on the provider's cashier.
    patient.goto(f"{hospital}/consult/start/?doctor={doctor.pk}")
    patient.locator(f"input[name=member][value='{member.pk}']").check()
    patient.locator("input[name=symptoms][value=cough]").check()
    patient.locator("input[name=temperature]").fill("37.3")
    patient.locator("input[name=duration]").fill("2")
    patient.locator("input[name=pregnant][value=na]").check()
    patient.locator("#triage-submit").click()
    patient.wait_for_url("**/consult/triage/**")
    assert patient.locator("#triage-outcome").get_attribute("data-outcome") == "online_ok"
    patient.locator("#question").fill("咳嗽两天，夜里加重，需要吃药吗？")
    patient.locator("#consult-create").click()
    patient.wait_for_url("**/consult/*/")
    consult_url = patient.url
    assert patient.locator("#consult-status").get_attribute("data-status") == "awaiting_payment"
    patient.locator("#consult-pay").click()
    patient.wait_for_url("**/cashier/**")
    assert "¥15.00" in patient.locator("#amount").inner_text()
    patient.get_by_role("button", name="确认支付 Pay").click()
    patient.wait_for_url(consult_url)
    assert patient.locator("#consult-status").get_attribute("data-status") == "waiting"
    patient.locator("#message-body").fill("另外有点咽痛")
    patient.locator("#send").click()
    patient.locator("#messages >> text=另外有点咽痛").wait_for()

    # The doctor, in another browser context: the workbench lists it; the triage comes first.
    doc = _phone_page(browser)
    _login(doc, platform, doctor_user.phone)
    doc.goto(hospital + "/workbench/")
    doc.locator(f"#waiting a[href='{consult_url.replace(hospital, '')}']").click()
    doc.wait_for_url(consult_url)
    assert "咳嗽" in doc.locator("#triage-answers").inner_text()
    assert "另外有点咽痛" in doc.locator("#messages").inner_text()
    doc.locator("#message-body").fill("多喝温水，睡前可用止咳糖浆，三天不好转请来门诊。")
    doc.locator("#send").click()

    # The patient's page shows the reply without anyone reloading it.
    patient.locator("#messages >> text=多喝温水").wait_for(timeout=15_000)
    patient.wait_for_function(
        "document.getElementById('consult-status').dataset.status === 'active'", timeout=15_000)

    # The doctor closes with a summary; the patient's page moves on and offers a rating.
    doc.reload()
    doc.locator("#summary").fill("急性支气管炎可能，对症止咳，三天复诊。")
    doc.locator("#close-consultation").click()
    doc.wait_for_url(hospital + "/workbench/")
    patient.locator("#rate-form").wait_for(timeout=15_000)
    assert patient.locator("#consult-status").get_attribute("data-status") == "closed"
    patient.locator("input[name=rating][value='5']").check()
    patient.locator("#rate-submit").click()
    patient.locator("#consult-rating").wait_for()
    patient.locator("#consult-record").click()
    assert "急性支气管炎可能" in patient.locator("#record-body").inner_text()


@pytest.fixture
def lab_report(committed_hospital_a):
    from consult.services.records import report_create
    from tests.consult.helpers import make_patient

    user, member = make_patient("看化验单")
    with in_schema(committed_hospital_a):
        record = report_create(kind="lab_report", title="肝功能", family_member=member, items=[
            {"name": "谷丙转氨酶 ALT", "value": "88", "unit": "U/L", "reference_range": "9-50"},
            {"name": "白蛋白 ALB", "value": "42", "unit": "g/L", "reference_range": "40-55"}])
    connection.set_schema_to_public()
    return user, record


def test_browser_lab_report_highlights_abnormal_value(lab_report, live_site, browser):
    user, record = lab_report
    platform, hospital = f"http://localhost:{live_site}", f"http://alpha.localhost:{live_site}"
    page = _phone_page(browser)
    _login(page, platform, user.phone)
    page.goto(hospital + "/")
    page.locator("#home-records").click()
    page.get_by_role("link", name="肝功能").click()
    page.wait_for_url(f"{hospital}/records/{record.pk}/")
    abnormal = page.locator("#lab-items tr.abnormal")
    assert abnormal.count() == 1
    assert "谷丙转氨酶" in abnormal.inner_text() and "↑" in abnormal.inner_text()
    color = abnormal.evaluate("el => getComputedStyle(el).color")
    assert color == "rgb(185, 28, 28)"  # shown in red
    normal = page.locator("#lab-items tbody tr:not(.abnormal)")
    assert "白蛋白" in normal.inner_text()
