"""One end-to-end check in real Chromium: login form, span tree, htmx span detail, escaping.

htmx is loaded exactly as in production (tests/web/browser.py: from Causeline itself, or
from the pinned CDN URL answered from a local copy); Chromium verifies the integrity hash
either way, so this also proves that the SRI in web/render.py matches the real htmx file.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from tests.api.seed import XSS
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, HTMX_COPY, ROOT, SETUP, serve
from web.render import HTMX_SRI, HTMX_URL, HTMX_VERSION

SCREENSHOT = ROOT / "test-results" / "trace_page.png"


def test_trace_page_in_chromium(app, seeded):
    assert HTMX_COPY.is_file(), (
        f"the local htmx copy {HTMX_COPY} is missing; from {ROOT} run:\n  {SETUP}"
    )
    digest = "sha384-" + base64.b64encode(hashlib.sha384(HTMX_COPY.read_bytes()).digest()).decode()
    assert digest == HTMX_SRI, (
        f"{HTMX_COPY} is not htmx.org@{HTMX_VERSION} (its hash does not match the SRI in web/render.py); "
        f"from {ROOT} run:\n  rm {HTMX_COPY} && {SETUP}"
    )
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install chromium)"
    from playwright.sync_api import expect, sync_playwright

    trace, fallback = seeded.trace.hex, seeded.trace.spans["fallback"].hex()
    with serve(app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 900})
            blocked: list[str] = []

            def route(r):
                url = r.request.url
                if url == HTMX_URL:
                    # crossorigin="anonymous" makes this a CORS request: the CDN's ACAO header is needed.
                    r.fulfill(path=HTMX_COPY, content_type="application/javascript",
                              headers={"Access-Control-Allow-Origin": "*"})
                elif url.startswith(base):
                    r.continue_()
                else:
                    blocked.append(url)
                    r.abort()

            context.route("**/*", route)
            page = context.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            console_errors: list[str] = []
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

            # Logged out: the trace link sends us to the login form, which brings us back.
            page.goto(f"{base}/traces/{trace}")
            expect(page).to_have_url(f"{base}/login?next=%2Ftraces%2F{trace}")
            page.fill("input[name=email]", seeded.email)
            page.fill("input[name=password]", seeded.password)
            page.click("button[type=submit]")
            expect(page).to_have_url(f"{base}/traces/{trace}")
            page.wait_for_function("() => window.htmx !== undefined", timeout=5000)

            rows = page.locator("tr.span-row")
            expect(rows).to_have_count(8)
            failed = page.locator(f"tr.span-row[data-span='{seeded.trace.spans['llm'].hex()}']")
            expect(failed).to_have_class("span-row status-error")
            expect(failed.locator(".flag.error")).to_have_text("✕ timeout")
            expect(page.locator(f"tr.span-row[data-span='{seeded.trace.spans['orphan'].hex()}'] .flag.warn")
                   ).to_have_text("parent missing")
            expect(page.locator("#span-detail .hint")).to_be_visible()

            # A marker survives only if the click does not reload the page (htmx swap, not navigation).
            page.evaluate("() => { window.__stillHere = true }")
            with page.expect_response(f"{base}/traces/{trace}/spans/{fallback}") as response_info:
                page.locator(f"tr.span-row[data-span='{fallback}'] a.span-link").click()
            assert response_info.value.request.headers.get("hx-request") == "true"
            detail = page.locator("#span-detail")
            expect(detail.locator("h2")).to_have_text("chat claude-sonnet-4")
            expect(detail.locator("pre.content").first).to_contain_text(XSS)
            expect(page.locator(f"tr.span-row[data-span='{fallback}']")).to_have_class("span-row status-ok selected")
            expect(page).to_have_url(f"{base}/traces/{trace}?span={fallback}")
            assert page.evaluate("() => window.__stillHere === true"), "the click navigated instead of swapping"
            assert detail.locator("script").count() == 0
            assert dialogs == [], f"a dialog fired: {dialogs}"

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            assert not console_errors, f"browser console errors: {console_errors}"
            assert blocked == [], f"the page tried to reach other origins: {blocked}"
        finally:
            browser.close()
