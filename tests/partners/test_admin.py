"""Platform admin: partners, keys (plaintext shown once, stored hashed), revocation, grants;
hospital admins cannot reach any of it."""

from __future__ import annotations

import re

from portal.partners.models import ApiKey, Grant, Partner
from portal.partners.services import key_hash
from tests.helpers import PLATFORM_HOST, host_client


def test_admin_operator_creates_key_shown_once(operator, hospital_a):
    client = host_client(PLATFORM_HOST, operator)
    assert client.post("/admin/partners/partner/add/", {
        "name": "康健 App", "contact_email": "dev@kangjian.example", "is_active": "on",
        "grants-TOTAL_FORMS": "1", "grants-INITIAL_FORMS": "0", "grants-0-hospital": hospital_a.pk,
        "keys-TOTAL_FORMS": "0", "keys-INITIAL_FORMS": "0"}).status_code == 302
    partner = Partner.objects.get(name="康健 App")
    assert Grant.objects.filter(partner=partner, hospital=hospital_a).exists()
    response = client.post("/admin/partners/apikey/add/", {
        "partner": partner.pk, "name": "production", "scopes": ["schedules:read",
                                                                "bookings:write"]},
        follow=True)
    assert response.status_code == 200
    raw = re.search(r"hpk_[0-9a-f]{8}_[A-Za-z0-9_\-]+", response.content.decode()).group(0)
    key = ApiKey.objects.get(partner=partner)
    assert key.key_hash == key_hash(raw) and raw.startswith(f"hpk_{key.prefix}_")
    assert key.scopes == ["bookings:write", "schedules:read"]
    for page in ("/admin/partners/apikey/", f"/admin/partners/apikey/{key.pk}/change/"):
        assert raw not in client.get(page).content.decode()
    client.post("/admin/partners/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_admin_hospital_staff_cannot_manage_partners(admin_a):
    client = host_client("alpha.localhost", admin_a)
    for url in ("/admin/partners/partner/", "/admin/partners/apikey/"):
        assert client.get(url).status_code in (302, 403, 404)
    platform = host_client(PLATFORM_HOST, admin_a)  # staff of a hospital, not an operator
    assert platform.get("/admin/partners/apikey/").status_code == 302
