"""Browser fixtures: Playwright driving Debian's headless Chromium."""

from __future__ import annotations

import os

import pytest

from tests.helpers import CHROMIUM


@pytest.fixture
def page(live_site, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync"],
        )
        context = browser.new_context(viewport={"width": 390, "height": 844},
                                      locale="en-US")  # the site still defaults to Chinese
        page = context.new_page()
        page.set_default_timeout(20_000)
        # Every browser test also proves its pages work under the Content-Security-Policy:
        # Chromium reports each blocked script, style or image on the console.
        blocked: list[str] = []
        page.on("console", lambda msg: blocked.append(msg.text)
                if "Content Security Policy" in msg.text else None)
        page.csp_violations = blocked
        yield page
        try:
            page.screenshot(path=str(tmp_path / "last.png"))
        finally:
            context.close()
            browser.close()
        assert not blocked, f"blocked by the Content-Security-Policy: {blocked}"


