<<<<<<< HEAD
"""The Overview and Providers pages in real Chromium over a seeded provider outage: the
journey from the Overview to the failed run, screenshots, and hostile names that must not run.

Screenshots go to tests/web/screenshots/ (git-ignored) for a person to look at.
"""
=======
"""The Failures and Costs pages in real Chromium: screenshots, the journey "filter Costs by
model and follow a bar to its runs", and hostile names that must never execute."""
>>>>>>> h-pages1

from __future__ import annotations

from contextlib import contextmanager
<<<<<<< HEAD
from datetime import datetime, timedelta, timezone
=======
>>>>>>> h-pages1
from pathlib import Path

import pytest

<<<<<<< HEAD
from tests.web.outage import NEW_SERVED, attribute_all, ingest, ns_at, run_spans, seed_outage
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, HTMX_COPY, serve
from web.render import HTMX_URL

SHOTS = Path(__file__).resolve().parent / "screenshots"
AXE = HTMX_COPY.parent / "axe.min.js"


def serious_accessibility_violations(page) -> list[dict]:
    """axe-core's serious and critical violations. Injected through the DevTools protocol
    (page.evaluate), which the page's CSP does not apply to: no inline script is added."""
    assert AXE.is_file(), f"{AXE} is missing: run `make vendor`"
    page.evaluate(AXE.read_text() + "\n;undefined")
    found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
        .map(v => ({id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))""")
    return [v for v in found if v["impact"] in ("serious", "critical")]
HOSTILE = {
    "agent": "<script>alert('agent')</script>",
    "provider": '"><img src=x onerror=alert("provider")>',
    "model": "javascript:alert('model')",
    "service": "<svg onload=alert('service')>",
}


@contextmanager
def browser_page(app, seeded):
    if not HTMX_COPY.is_file() or not Path(CHROMIUM).exists():
        pytest.fail(f"needs {HTMX_COPY} (see tests/web/test_browser.py) and {CHROMIUM}")
=======
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
>>>>>>> h-pages1
    from playwright.sync_api import sync_playwright

    with serve(app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
<<<<<<< HEAD
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            blocked: list[str] = []
=======
            context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme=color_scheme,
                                          bypass_csp=bypass_csp)
            seen = {"dialogs": [], "console": [], "blocked": []}
>>>>>>> h-pages1

            def route(r):
                url = r.request.url
                if url == HTMX_URL:
                    r.fulfill(path=HTMX_COPY, content_type="application/javascript",
                              headers={"Access-Control-Allow-Origin": "*"})
                elif url.startswith(base):
                    r.continue_()
                else:
<<<<<<< HEAD
                    blocked.append(url)
=======
                    seen["blocked"].append(url)
>>>>>>> h-pages1
                    r.abort()

            context.route("**/*", route)
            page = context.new_page()
<<<<<<< HEAD
            events = {"dialogs": [], "console": [], "blocked": blocked}
            page.on("dialog", lambda d: (events["dialogs"].append(d.message), d.dismiss()))
            page.on("console", lambda m: events["console"].append(m.text) if m.type == "error" else None)
            page.goto(f"{base}/login?next=/overview")
            page.fill("input[name=email]", seeded.email)
            page.fill("input[name=password]", seeded.password)
            page.click("button[type=submit]")
            yield page, base, events
=======
            page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
            page.on("console", lambda m: seen["console"].append(m.text) if m.type == "error" else None)
            page.goto(f"{base}/login")
            page.fill("input[name=email]", seeded.email)
            page.fill("input[name=password]", seeded.password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/traces")
            yield base, page, seen
            assert seen["dialogs"] == [], f"a dialog fired: {seen['dialogs']}"
            assert seen["console"] == [], f"browser console errors: {seen['console']}"
            assert seen["blocked"] == [], f"the page tried to reach other origins: {seen['blocked']}"
>>>>>>> h-pages1
        finally:
            browser.close()


<<<<<<< HEAD
def test_from_the_overview_find_the_failed_run_of_an_outage_and_open_it(app, seeded, database_url, sessionmaker):
    from playwright.sync_api import expect

    outage = seed_outage(database_url, sessionmaker, seeded.project.id)
    failed = outage.failed[0].hex()
    with browser_page(app, seeded) as (page, base, events):
        expect(page).to_have_url(f"{base}/overview")
        # The default window is the last 24 hours; pick it explicitly as a person would.
        page.get_by_role("navigation", name="Time range").get_by_role("link", name="24h").click()
        expect(page).to_have_url(f"{base}/overview?range=24h")
        expect(page.locator(".tile-failed .tile-value")).to_have_text("1")
        expect(page.locator(".tile-recovered .tile-value")).to_have_text("2")
        expect(page.locator(".tile-runs .tile-value")).to_have_text("7")
        # The outage: gpt-4o is the model in trouble, its errors are timeouts.
        trouble = page.locator("section[aria-labelledby=trouble-h] tbody tr").first
        expect(trouble).to_contain_text("openai · gpt-4o")
        expect(trouble).to_contain_text("42.9%")
        expect(trouble).to_contain_text("timeout")
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)
        violations = serious_accessibility_violations(page)
        assert violations == [], "\n".join(map(str, violations))

        # Its timeline on the Providers page, with the served-model change marked.
        trouble.get_by_role("link", name="42.9%").click()
        expect(page).to_have_url(f"{base}/providers?range=24h&provider=openai&model=gpt-4o")
        card = page.locator("section.model-card")
        expect(card).to_have_count(1)
        expect(card.locator(".chart-marker.chart-change").first).to_be_attached()
        expect(card).to_contain_text(NEW_SERVED)
        page.go_back()

        # The failed run (not one of the two that recovered by falling back) opens.
        row = page.locator("table.failed-runs tbody tr")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("timeout")
        row.get_by_role("link").first.click()
        expect(page).to_have_url(f"{base}/traces/{failed}")
        expect(page.locator("tr.span-row.status-error").first).to_be_visible()
        expect(page.locator("body")).to_contain_text("chat gpt-4o")
        assert events["dialogs"] == [] and events["blocked"] == []
        assert not events["console"], events["console"]


def test_providers_page_in_chromium(app, seeded, database_url, sessionmaker):
    from playwright.sync_api import expect

    seed_outage(database_url, sessionmaker, seeded.project.id)
    with browser_page(app, seeded) as (page, base, events):
        page.goto(f"{base}/providers?range=24h")
        expect(page.locator("section.model-card")).to_have_count(2)
        expect(page.locator("section.model-card svg.chart-lines")).to_have_count(2)
        # A filter is a shareable URL.
        page.fill("input[name=provider]", "anthropic")
        page.get_by_role("button", name="Apply").last.click()
        expect(page).to_have_url(f"{base}/providers?range=24h&provider=anthropic&model=&service=&agent=")
        expect(page.locator("section.model-card")).to_have_count(1)
        page.goto(f"{base}/providers?range=24h")
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "providers.png"), full_page=True)
        violations = serious_accessibility_violations(page)
        assert violations == [], "\n".join(map(str, violations))
        assert events["dialogs"] == [] and not events["console"] and events["blocked"] == []


def test_hostile_names_do_not_run_on_either_page(app, seeded, database_url, sessionmaker):
    from playwright.sync_api import expect

    start = ns_at(datetime.now(timezone.utc) - timedelta(hours=1))
    spans = []
    for i, outcome in enumerate(["failed", "recovered", "ok"]):
        _, run = run_spans(start + i * 60_000_000_000, agent=HOSTILE["agent"], outcome=outcome, model=HOSTILE["model"],
                      served=HOSTILE["model"] + "<b>", provider=HOSTILE["provider"], name=HOSTILE["service"])
        spans += run
    ingest(database_url, seeded.project.id, spans, service=HOSTILE["service"])
    attribute_all(sessionmaker)
    with browser_page(app, seeded) as (page, base, events):
        for path in ("/overview?range=24h", "/providers?range=24h"):
            page.goto(base + path)
            expect(page.locator("body")).to_contain_text(HOSTILE["provider"])
            expect(page.locator("body")).to_contain_text(HOSTILE["model"])
            assert page.locator("main script, main img, main svg[onload]").count() == 0
            hrefs = page.eval_on_selector_all("main a", "els => els.map(e => e.getAttribute('href'))")
            assert not [h for h in hrefs if h and h.strip().lower().startswith("javascript:")]
        page.goto(base + "/overview?range=24h")
        expect(page.locator("body")).to_contain_text(HOSTILE["agent"])
        assert events["dialogs"] == [], events["dialogs"]
        assert not events["console"], events["console"]
        assert events["blocked"] == [], events["blocked"]
=======
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
>>>>>>> h-pages1
