"""The Failures and Costs pages in real Chromium: screenshots, the journey "filter Costs by
model and follow a bar to its runs", and hostile names that must never execute."""

from __future__ import annotations

from tests.web.browser import chromium, serious_accessibility_violations, shot
from tests.web.workbench_seed import XSS_AGENT, XSS_MODEL, seed_hostile, seed_workbench

WINDOW = "since=2026-11-22T10:00&until=2026-11-22T16:00"


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
    seed_workbench(database_url, sessionmaker, seeded.project.id)
    with chromium(app, seeded) as (base, page, _):
        for path in ("/failures", "/costs", "/costs?group_by=hour", "/costs?group_by=tool"):
            page.goto(f"{base}{path}{'&' if '?' in path else '?'}{WINDOW}")
            serious = serious_accessibility_violations(page)
            assert serious == [], f"{path}: {serious}"
