"""One login across the platform and every hospital host (redirect-based SSO)."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from django.contrib.sessions.models import Session
from django.utils import timezone

from portal.accounts.models import SsoTicket
from tests.helpers import host_client

HTML = {"HTTP_ACCEPT": "text/html"}


def _ticket_from(location: str) -> str:
    return parse_qs(urlsplit(location).query)["ticket"][0]


def _authorize(platform, next_url="http://alpha.localhost/accounts/family/"):
    return platform.get("/sso/authorize/", {"next": next_url})


def test_sso_signed_in_platform_user_is_signed_in_on_hospital(patient):
    platform = host_client("localhost", patient)
    r = _authorize(platform)
    assert r.status_code == 302 and r["Location"].startswith("http://alpha.localhost/sso/callback/")
    hospital = host_client("alpha.localhost")
    r = hospital.get("/sso/callback/", {"ticket": _ticket_from(r["Location"]),
                                        "next": "/accounts/family/"})
    assert r.status_code == 302 and r["Location"] == "/accounts/family/"
    assert hospital.get("/accounts/family/").status_code == 200


def test_sso_anonymous_hospital_visit_checks_platform_passively(db):
    hospital = host_client("alpha.localhost")
    r = hospital.get("/", **HTML)
    assert r.status_code == 302
    assert r["Location"].startswith("http://localhost/sso/authorize/?next=")
    assert "passive=1" in r["Location"]
    platform = host_client("localhost")
    r = platform.get(urlsplit(r["Location"]).path + "?" + urlsplit(r["Location"]).query)
    assert r["Location"].startswith("http://alpha.localhost/sso/callback/?next=")
    assert "ticket" not in r["Location"]
    hospital.get(urlsplit(r["Location"]).path + "?" + urlsplit(r["Location"]).query)
    # remembered: the next page is served without another round trip
    assert hospital.get("/", **HTML).status_code == 200


def test_sso_ticket_is_single_use(patient):
    token = _ticket_from(_authorize(host_client("localhost", patient))["Location"])
    first, second = host_client("alpha.localhost"), host_client("alpha.localhost")
    first.get("/sso/callback/", {"ticket": token})
    second.get("/sso/callback/", {"ticket": token})
    assert first.get("/accounts/family/").status_code == 200
    assert second.get("/accounts/family/").status_code == 302  # sent to log in


def test_sso_ticket_for_one_hospital_does_not_work_at_another(patient):
    token = _ticket_from(_authorize(host_client("localhost", patient))["Location"])
    other = host_client("beta.localhost")
    other.get("/sso/callback/", {"ticket": token})
    assert other.get("/accounts/family/").status_code == 302


def test_sso_expired_ticket_is_refused(patient):
    token = _ticket_from(_authorize(host_client("localhost", patient))["Location"])
    SsoTicket.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    hospital = host_client("alpha.localhost")
    hospital.get("/sso/callback/", {"ticket": token})
    assert hospital.get("/accounts/family/").status_code == 302


def test_sso_refuses_to_send_tickets_to_foreign_hosts(patient):
    platform = host_client("localhost", patient)
    for target in ("http://evil.example/", "javascript:alert(1)", "//evil.example/", ""):
        assert platform.get("/sso/authorize/", {"next": target}).status_code == 400
    assert not SsoTicket.objects.exists()


def test_sso_callback_never_redirects_off_site(patient):
    token = _ticket_from(_authorize(host_client("localhost", patient))["Location"])
    r = host_client("alpha.localhost").get("/sso/callback/", {"ticket": token,
                                                              "next": "https://evil.example/"})
    assert r["Location"] == "/"


def test_sso_platform_logout_ends_hospital_session(patient):
    platform = host_client("localhost", patient)
    token = _ticket_from(_authorize(platform)["Location"])
    hospital = host_client("alpha.localhost")
    hospital.get("/sso/callback/", {"ticket": token})
    assert hospital.get("/accounts/family/").status_code == 200
    platform.post("/accounts/logout/")
    assert hospital.get("/accounts/family/").status_code == 302


def test_sso_hospital_logout_ends_platform_session(patient):
    platform = host_client("localhost", patient)
    token = _ticket_from(_authorize(platform)["Location"])
    hospital = host_client("alpha.localhost")
    hospital.get("/sso/callback/", {"ticket": token})
    parent = SsoTicket.objects.get().parent_session_key
    hospital.post("/accounts/logout/")
    assert not Session.objects.filter(session_key=parent).exists()
    assert platform.get("/accounts/family/").status_code == 302


def test_sso_hospital_login_link_goes_through_platform(db):
    r = host_client("alpha.localhost").get("/accounts/login/", {"next": "/accounts/family/"})
    assert r.status_code == 302
    location = r["Location"]
    assert location.startswith("http://localhost/accounts/login/?next=")
    assert "sso%2Fauthorize" in location
