"""The platform home's hospital search takes any text a URL can carry."""

from __future__ import annotations

from tests.helpers import HOSPITAL_A


def test_platform_search_with_a_nul_character_is_an_ordinary_search(platform_client):
    response = platform_client.get("/", {"q": "甲市\x00", "city": "\x00"})
    assert response.status_code == 200
    assert HOSPITAL_A["name"] in response.content.decode()


def test_platform_search_still_filters(platform_client):
    html = platform_client.get("/", {"q": "no such hospital"}).content.decode()
    assert HOSPITAL_A["name"] not in html
