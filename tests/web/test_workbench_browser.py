"""The Overview and Providers pages in real Chromium over a seeded provider outage: the
journey from the Overview to the failed run, screenshots, and hostile names that must not run.

Screenshots go to tests/web/screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path


from tests.web.outage import NEW_SERVED, attribute_all, ingest, ns_at, run_spans, seed_outage
from tests.web.browser import chromium, serious_accessibility_violations

SHOTS = Path(__file__).resolve().parent / "screenshots"
HOSTILE = {
    "agent": "<script>alert('agent')</script>",
    "provider": '"><img src=x onerror=alert("provider")>',
    "model": "javascript:alert('model')",
    "service": "<svg onload=alert('service')>",
}


@contextmanager
def browser_page(app, seeded):
    """(page, base, events), logged in on the Overview (tests/web/browser.py's harness)."""
    with chromium(app, seeded, check=False) as (base, page, seen):
        yield page, base, seen


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
