"""Error pages a patient can meet: translated, on the site's own layout, with a way back.

Without these templates Django answers a production 404 with a bare English "Not Found" page
(and a 500 or a CSRF failure with technical English), on a Chinese site, on a phone.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.helpers import HOSPITAL_A, PLATFORM_HOST, host_client


@pytest.mark.parametrize("host", [PLATFORM_HOST, HOSPITAL_A["domain"]])
def test_error_pages_404_is_translated_with_a_way_home(db, host):
    response = host_client(host).get("/no-such-page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert 'id="error-page"' in html
    assert "页面不存在" in html and 'href="/"' in html
    assert "Not Found" not in html


def test_error_pages_404_on_a_hospital_offers_booking_and_follows_the_language(db):
    client = host_client(HOSPITAL_A["domain"])
    assert "预约挂号" in client.get("/no-such-page/").content.decode()
    client.cookies["django_language"] = "en"
    html = client.get("/no-such-page/").content.decode()
    assert "Page not found" in html and "Book an appointment" in html
    assert "页面不存在" not in html


def test_error_pages_unknown_booking_is_the_friendly_404(db, patient):
    response = host_client(HOSPITAL_A["domain"], patient).get("/bookings/999999/")
    assert response.status_code == 404
    assert 'id="error-page"' in response.content.decode()


def test_error_pages_csrf_failure_is_translated(db, patient):
    client = Client(HTTP_HOST=HOSPITAL_A["domain"], enforce_csrf_checks=True)
    client.force_login(patient)
    response = client.post("/bookings/new/", {"slice": "1", "family_member": "1"})
    html = response.content.decode()
    assert response.status_code == 403
    assert "请重试" in html and "CSRF verification failed" not in html


def test_error_pages_500_renders_without_a_request():
    from django.template import loader
    from django.utils import translation

    with translation.override("zh-hans"):
        html = loader.get_template("500.html").render()
    assert "出错了" in html and 'data-status="500"' in html
