"""The Failures and Costs pages in real Chromium: screenshots, the journey "filter Costs by
model and follow a bar to its runs", and hostile names that must never execute."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, HTMX_COPY, serve
from tests.web.workbench_seed import XSS_AGENT, XSS_MODEL, seed_hostile, seed_workbench
from web.render import HTMX_URL

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
AXE = HTMX_COPY.parent / "axe.min.js"  # `make vendor`
WINDOW = "since=2026-11-22T10:00&until=2026-11-22T16:00"


@contextmanager
def chromium(app, seeded, *, color_scheme: str = "light", bypass_csp: bool = False):
    """A logged-in page, other origins blocked, with the dialogs and console errors it raised.
    `bypass_csp` only to inject axe-core (an inline script the page's CSP rightly refuses)."""
    if not HTMX_COPY.is_file() or not Path(CHROMIUM).exists():
        pytest.fail(f"needs {HTMX_COPY} and {CHROMIUM} (see tests/web/test_browser.py)")
    from playwright.sync_api import sync_playwright

    with serve(app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme=color_scheme,
                                          bypass_csp=bypass_csp)
            seen = {"dialogs": [], "console": [], "blocked": []}

            def route(r):
                url = r.request.url
                if url == HTMX_URL:
                    r.fulfill(path=HTMX_COPY, content_type="application/javascript",
                              headers={"Access-Control-Allow-Origin": "*"})
                elif url.startswith(base):
                    r.continue_()
                else:
                    seen["blocked"].append(url)
                    r.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
            page.on("console", lambda m: seen["console"].append(m.text) if m.type == "error" else None)
            page.goto(f"{base}/login")
            page.fill("input[name=email]", seeded.email)
            page.fill("input[name=password]", seeded.password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/overview")
            yield base, page, seen
            assert seen["dialogs"] == [], f"a dialog fired: {seen['dialogs']}"
            assert seen["console"] == [], f"browser console errors: {seen['console']}"
            assert seen["blocked"] == [], f"the page tried to reach other origins: {seen['blocked']}"
        finally:
            browser.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_failures_and_costs_pages_in_chromium(app, seeded, database_url, sessionmaker):
    from playwright.sync_api import expect

    runs = seed_workbench(database_url, sessionmaker, seeded.project.id)
    for scheme in ("light", "dark"):
        with chromium(app, seeded, color_scheme=scheme) as (base, page, _):
            page.goto(f"{base}/failures?{WINDOW}")
            rows = page.locator("table.failures tbody tr")
            expect(rows).to_have_count(2)
            expect(rows.first.locator("td").first).to_contain_text("timeout")
            expect(page.locator("td.trend svg.sparkline")).to_have_count(2)
            shot(page, "failures" if scheme == "light" else "failures-dark")
            # An example run opens its trace.
            page.locator(f"a[href='/traces/{runs.failed_run}']").click()
            expect(page).to_have_url(f"{base}/traces/{runs.failed_run}")

            page.goto(f"{base}/costs?{WINDOW}")
            expect(page.locator("table.costs tbody tr")).to_have_count(2)
            expect(page.locator("svg.chart-series rect.chart-bar")).to_have_count(6)
            shot(page, "costs" if scheme == "light" else "costs-dark")


def test_journey_filter_costs_by_model_and_follow_a_bar_to_its_runs(app, seeded, database_url, sessionmaker):
    from playwright.sync_api import expect

    runs = seed_workbench(database_url, sessionmaker, seeded.project.id)
    with chromium(app, seeded) as (base, page, _):
        page.goto(f"{base}/costs?{WINDOW}&group_by=agent")
        expect(page.locator("table.costs tbody tr")).to_have_count(2)  # support, billing
        page.fill("input[name=model]", "gpt-4o")
        page.click("form.filters button[type=submit]")
        expect(page).to_have_url(f"{base}/costs?group_by=agent&since=2026-11-22T10%3A00&until=2026-11-22T16%3A00"
                                 "&service=&agent=&model=gpt-4o&provider=")
        rows = page.locator("table.costs tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first.locator("td").first).to_have_text("support")
        expect(rows.first.locator("td").nth(1)).to_have_text("2")
        # The bar of the "support" agent leads to the runs behind it: same window, agent and model.
        bar = page.locator("svg.chart-bars a").first
        expect(bar.locator("title").first).to_contain_text("support")
        bar.locator("rect").click()
        expect(page).to_have_url(f"{base}/traces?since=2026-11-22T10%3A00%3A00Z&until=2026-11-22T16%3A00%3A00Z"
                                 "&agent=support&model=gpt-4o")
        listed = page.locator(f"a[href='/traces/{runs.failed_run}']")
        expect(listed.first).to_be_visible()
        expect(page.locator(f"a[href='/traces/{runs.billing_run}']")).to_have_count(0)
        shot(page, "costs-journey-runs")


def test_hostile_names_never_execute(app, seeded, database_url, sessionmaker):
    from playwright.sync_api import expect

    seed_hostile(database_url, sessionmaker, seeded.project.id)
    with chromium(app, seeded) as (base, page, seen):
        for path in ("/costs?group_by=model", "/costs?group_by=agent", "/costs?group_by=tool",
                     "/costs?group_by=service", "/failures?group_by=agent", "/failures?group_by=tool",
                     "/failures?group_by=model"):
            page.goto(f"{base}{path}&{WINDOW}")
            expect(page.locator("main table.grid")).to_have_count(1)
            assert page.locator("main script, main img, main iframe").count() == 0
            # HTML and SVG links alike (an SVG <a>'s href is not a string property).
            assert page.evaluate("() => [...document.querySelectorAll('a')].filter(a => "
                                 "(a.getAttribute('href') || '').trim().toLowerCase().startsWith('javascript:')"
                                 ").length") == 0
        page.goto(f"{base}/costs?group_by=model&{WINDOW}")
        expect(page.locator("table.costs tbody td").first).to_contain_text(XSS_MODEL)
        page.goto(f"{base}/failures?group_by=agent&{WINDOW}")
        expect(page.locator("table.failures tbody td").first).to_contain_text(XSS_AGENT)
        shot(page, "failures-hostile")
    assert seen["dialogs"] == []


def test_accessibility_no_serious_violations(app, seeded, database_url, sessionmaker):
    assert AXE.is_file(), f"{AXE} is missing: run `make vendor`"
    seed_workbench(database_url, sessionmaker, seeded.project.id)
    with chromium(app, seeded, bypass_csp=True) as (base, page, _):
        for path in ("/failures", "/costs", "/costs?group_by=hour", "/costs?group_by=tool"):
            page.goto(f"{base}{path}{'&' if '?' in path else '?'}{WINDOW}")
            page.add_script_tag(path=str(AXE))
            result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
            serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
                       if v["impact"] in ("serious", "critical")]
            assert serious == [], f"{path}: {serious}"
