"""The trace page and list in real Chromium at 800 px: lazy expand, keyboard navigation, live search."""

from __future__ import annotations

from pathlib import Path

from tests.api.seed import XSS
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, HTMX_COPY, serve
from tests.web.test_trace_tree import store_many, wide
from web.render import HTMX_URL
from web.tree import MAX_CHILDREN

SHOTS = Path(__file__).resolve().parents[2] / "test-results"


def test_large_trace_and_live_search_in_chromium(app, session, seeded):
    assert HTMX_COPY.is_file() and Path(CHROMIUM).exists()
    from playwright.sync_api import expect, sync_playwright

    spans = wide(seeded.project.id, 250)
    spans[1].name = XSS
    spans[2].status, spans[2].error_class = "error", "rate_limit"
    spans[2].status_message = "Traceback (most recent call last):\n  File \"agent.py\", line 3\nRateLimitError: 429"
    trace = store_many(session, spans).trace_id.hex()
    with serve(app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 800, "height": 900})
            context.route("**/*", lambda r: r.fulfill(path=HTMX_COPY, content_type="application/javascript",
                                                      headers={"Access-Control-Allow-Origin": "*"})
                          if r.request.url == HTMX_URL else (r.continue_() if r.request.url.startswith(base)
                                                             else r.abort()))
            page = context.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{base}/login")
            page.fill("input[name=email]", seeded.email)
            page.fill("input[name=password]", seeded.password)
            page.click("button[type=submit]")

            page.goto(f"{base}/traces/{trace}")
            page.wait_for_function("() => window.htmx !== undefined", timeout=5000)
            rows = page.locator("tr.span-row")
            expect(rows).to_have_count(1 + MAX_CHILDREN)
            page.locator("tr.more-row a.more").click()
            expect(rows).to_have_count(1 + 2 * MAX_CHILDREN)
            # Keyboard: j selects the next span and loads its detail.
            page.locator("body").press("j")
            page.locator("body").press("j")
            expect(page.locator("#span-detail h2")).to_have_text(XSS)
            page.locator("body").press("j")
            expect(page.locator("#span-detail .alert .msg")).to_contain_text("RateLimitError: 429")
            # The stack trace keeps its line breaks.
            height = page.locator("#span-detail .alert .msg").evaluate("e => e.getBoundingClientRect().height")
            line = page.locator("#span-detail .alert .msg").evaluate(
                "e => parseFloat(getComputedStyle(e).lineHeight) || 16")
            assert height >= 2.5 * line
            # At 800 px nothing scrolls the page sideways.
            assert page.evaluate("() => document.documentElement.scrollWidth") <= 800 + 1
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "trace_page_800.png"), full_page=False)

            page.goto(f"{base}/traces")
            page.fill("input[name=q]", "child")
            expect(page.locator("#trace-rows tr", has_text=trace[:16])).to_have_count(1)
            page.fill("input[name=q]", "zebra")
            expect(page.locator("#results")).to_contain_text("No traces match")
            page.screenshot(path=str(SHOTS / "traces_search_800.png"), full_page=False)
            assert page.evaluate("() => document.documentElement.scrollWidth") <= 800 + 1
            assert dialogs == [] and not errors, (dialogs, errors)
        finally:
            browser.close()
