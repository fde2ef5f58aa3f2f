"""The trace list's filters, totals and previews, the trace page's Costs panel and /docs, in real
Chromium with every other origin blocked: filters update the list as you type (htmx) and keep a
shareable URL, paging keeps them, a bad filter shows its error, hostile names and prompts never
run, axe-core finds no serious violation, and /docs renders with no internet."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tests.web.browser import chromium, serious_accessibility_violations, shot
from tests.web.test_trace_filters import run

HOSTILE_NAME = "<img src=x onerror=alert('span')>"
HOSTILE_PROMPT = "<script>alert('prompt')</script> and javascript:alert(1)"


@pytest.fixture
def listed(session, seeded) -> dict[str, str]:
    pid, base = seeded.project.id, datetime.now(timezone.utc) - timedelta(hours=1)
    chat = json.dumps([{"role": "system", "content": "be terse"}, {"role": "user", "content": "refund order 42"}])
    made = {
        "cheap": run(session, pid, "support run", ms=100, base=base, prompt=chat, provider="openai",
                     request_model="gpt-4o", cost_usd=Decimal("0.01"), cost_source="table", input_tokens=10,
                     output_tokens=5),
        "slow": run(session, pid, "support run", ms=5000, base=base + timedelta(minutes=1),
                    prompt="weather in Paris", provider="anthropic", request_model="claude", status="error",
                    error_class="timeout", cost_usd=Decimal("0.5"), cost_source="table", input_tokens=100),
        "hostile": run(session, pid, HOSTILE_NAME, ms=2000, base=base + timedelta(minutes=2), prompt=HOSTILE_PROMPT,
                       provider="openai", request_model="mystery-model", cost_source="unpriced", input_tokens=7,
                       agent_name="\"><svg onload=alert('agent')>"),
    }
    session.commit()
    return {k: v.hex() for k, v in made.items()}


def test_filters_update_the_list_as_you_type_and_keep_paging(app, seeded, listed):
    from playwright.sync_api import expect

    with chromium(app, seeded, land="/traces?range=24h") as (base, page, seen):
        page.wait_for_function("() => window.htmx !== undefined", timeout=5000)
        rows = page.locator("#trace-rows tr[class^='status-']")
        expect(rows).to_have_count(3)
        expect(page.locator(".run-totals")).to_contain_text("3")
        expect(page.locator(".preview", has_text="refund order 42")).to_have_count(1)
        expect(page.locator(".preview", has_text=HOSTILE_PROMPT)).to_have_count(1)  # shown as text
        page.evaluate("() => { window.__stillHere = true }")

        page.fill("input[name=provider]", "anthropic")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("weather in Paris")
        expect(page).to_have_url(f"{base}/traces?q=&range=24h&since=&until=&status=&outcome=&service=&agent="
                                 f"&model=&provider=anthropic&error_class=&min_cost=&min_duration=&score_name=&min_score=&limit=50")
        expect(page.locator(".run-totals dd").first).to_have_text("1")
        page.fill("input[name=min_cost]", "cheap")
        expect(page.locator("#results .alert.error")).to_contain_text("“Min cost” must be an amount in USD")
        expect(rows).to_have_count(0)
        expect(page.locator(".run-totals")).to_have_count(0)
        page.fill("input[name=min_cost]", "")
        page.fill("input[name=provider]", "")
        page.fill("input[name=min_duration]", "1.5s")
        expect(rows).to_have_count(2)
        page.fill("input[name=limit]", "1")
        expect(rows).to_have_count(1)
        assert page.evaluate("() => window.__stillHere === true"), "a filter reloaded the page instead of swapping"

        # The next page comes with the same filters, appended by htmx.
        page.get_by_role("link", name="Older traces ↓").click()
        expect(rows).to_have_count(2)
        expect(page.get_by_role("link", name="Older traces ↓")).to_have_count(0)
        assert {listed["slow"][:16], listed["hostile"][:16]} == {
            t[:16] for t in page.eval_on_selector_all("#trace-rows a[href^='/traces/']",
                                                       "els => els.map(e => e.getAttribute('href').slice(8))")}
        assert page.locator("main script, main img, main svg").count() == 0
        shot(page, "traces-filtered")
        violations = serious_accessibility_violations(page)
        assert violations == [], "\n".join(map(str, violations))
    assert seen["dialogs"] == []


def test_trace_page_shows_the_costs_panel_and_never_runs_hostile_text(app, seeded, listed):
    from playwright.sync_api import expect

    with chromium(app, seeded, land=f"/traces/{listed['hostile']}") as (base, page, seen):
        panel = page.locator("section.costs-panel")
        expect(panel.locator("caption")).to_have_text(["By step", "By agent", "By model", "By tool"])
        expect(panel).to_contain_text("1 unpriced (no price known: not counted as $0)")
        expect(panel.locator("tr", has_text="mystery-model")).to_contain_text("unpriced")
        expect(page.locator("h1")).to_contain_text(HOSTILE_NAME)
        assert page.locator("main script, main img, main svg[onload]").count() == 0
        shot(page, "trace-costs")
        violations = serious_accessibility_violations(page)
        assert violations == [], "\n".join(map(str, violations))
        page.goto(f"{base}/traces/{listed['cheap']}")
        expect(page.locator("section.costs-panel tr", has_text="gpt-4o")).to_contain_text("$0.0100")
    assert seen["dialogs"] == []


def test_api_reference_renders_offline(app, seeded):
    from playwright.sync_api import expect

    with chromium(app, seeded, land="/docs") as (base, page, seen):
        expect(page.locator(".swagger-ui .information-container .title")).to_contain_text("Causeline", timeout=15000)
        expect(page.locator(".opblock-summary-path", has_text="/api/traces").first).to_be_visible()
        shot(page, "docs")
    assert seen["blocked"] == []
