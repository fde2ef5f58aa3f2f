"""The Routing page in real Chromium: the suggestion and the models per step shown, a hostile step
name and routing reason inert, the group-by switch and a number's link to the traces behind it,
no serious accessibility violations (axe-core); a screenshot for a person to look at."""

from __future__ import annotations

from tests.web.browser import chromium, serious_accessibility_violations, shot
from tests.web.routing_seed import HOSTILE_REASON, HOSTILE_STEP, seed_routing


def test_routing_page_in_chromium(app, seeded, session):
    seed_routing(session, seeded.project.id)
    with chromium(app, seeded) as (base, page, seen):
        page.goto(f"{base}/overview")
        scores = page.locator("section.overview-scores")  # the scores panel
        # Every seeded score is of today: their means in a sentence, not a chart of lone dots.
        assert "classify-intent" in scores.inner_text() and scores.locator("svg.chart").count() == 0
        assert "too few days for a daily chart" in scores.inner_text()
        serious = serious_accessibility_violations(page)
        assert serious == [], f"/overview: {serious}"
        page.locator("nav.mainnav a", has_text="Routing").click()
        page.wait_for_url("**/routing")
        assert page.locator("main script, main img, main iframe").count() == 0
        suggestion = page.locator("section.routing-suggestions li").first.inner_text()
        assert "gpt-4o-mini served “classify-intent” 200 times" in suggestion
        assert page.locator("section.routing-group").count() >= 2
        assert HOSTILE_STEP in page.locator("section.routing-group h2", has_text="summarize").inner_text()
        assert HOSTILE_REASON in page.locator("section.routing-decisions").inner_text()  # text, never run
        shot(page, "routing")
        serious = serious_accessibility_violations(page)
        assert serious == [], serious
        page.locator("nav.group-by a", has_text="agent").click()
        page.wait_for_url("**/routing?*by=agent*")
        assert page.locator("section.routing-group h2", has_text="triage").count() == 1
        page.locator("section.routing-group td.num a").first.click()  # the calls: the runs behind them
        page.wait_for_url("**/traces?*model=*")
        assert "agent=triage" in page.url
    assert seen["dialogs"] == []
