"""The Content-Security-Policy in a real browser: the partner API's docs (Swagger UI and Redoc)
and the staff admin render and run under it, and an injected inline script does not run.
(Every other browser test fails on any CSP report too: see the `page` fixture.)"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser]


def test_browser_api_docs_render_under_the_content_security_policy(page, live_site):
    response = page.goto(f"http://localhost:{live_site}/api/docs/")
    assert "script-src 'self' 'nonce-" in response.headers["content-security-policy"]
    # Swagger UI drew the operations from the schema (its script ran, its styles applied).
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() > 5
    assert page.csp_violations == []
    page.goto(f"http://localhost:{live_site}/api/redoc/")
    page.locator("[data-section-id]").first.wait_for()
    # Redoc's "powered by" badge fetches its logo from Redoc's CDN: a third-party request the
    # policy rightly blocks (the docs work offline). Nothing else may be blocked.
    assert all("cdn.redoc.ly" in text for text in page.csp_violations), page.csp_violations
    page.csp_violations.clear()


def test_browser_hospital_admin_login_works_under_the_content_security_policy(page, live_site):
    response = page.goto(f"http://alpha.localhost:{live_site}/admin/login/")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert page.locator("input[name=username]").is_visible()


def test_browser_inline_script_without_the_nonce_is_blocked(page, live_site):
    page.goto(f"http://localhost:{live_site}/")
    # What a stored-XSS payload would be: an inline script the server did not sign.
    page.evaluate("""() => { const s = document.createElement('script');
                             s.textContent = 'window.__injected = true';
                             document.body.appendChild(s); }""")
    assert page.evaluate("() => window.__injected === undefined")
    assert any("script-src" in text for text in page.csp_violations)
    page.csp_violations.clear()  # expected here; the fixture fails on any other
