"""`make run`'s demo partner: the key printed by demo_info and used in docs/partner-api.md's curl
session reaches both demo hospitals, and seeding twice makes one key."""

from __future__ import annotations

from django.core.management import call_command
from django.test import Client

from tests.helpers import PLATFORM_HOST


def test_seed_demo_partner_key_lists_both_demo_hospitals_once_however_often_seeded(db):
    from portal.partners.models import ApiKey, Scope
    from tenants import demo

    call_command("seed_demo")
    call_command("seed_demo")
    assert ApiKey.objects.filter(partner__name=demo.PARTNER["name"]).count() == 1

    client = Client(HTTP_HOST=PLATFORM_HOST)
    response = client.get("/api/v1/hospitals/", headers={"X-Api-Key": demo.PARTNER["key"]})
    assert response.status_code == 200
    assert {h["code"] for h in response.json()["results"]} == {
        h["code"] for h in demo.HOSPITALS}
    # Every scope: the docs' curl session books and cancels with it.
    assert set(ApiKey.objects.get(partner__name=demo.PARTNER["name"]).scopes) == set(Scope.values)
    denied = client.get("/api/v1/hospitals/", headers={"X-Api-Key": demo.PARTNER["key"] + "x"})
    assert denied.status_code == 401
