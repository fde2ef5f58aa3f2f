"""The trace page's Costs panel: by step, agent, model and tool, from the same data as the JSON
twin /api/traces/{id}/costs; unpriced calls shown apart, never as $0; hostile names escaped."""

from __future__ import annotations

import os
from decimal import Decimal
from html import unescape

import pytest

import web.routes_traces
from tests.api.seed import XSS, make_span, store
from tests.web.conftest import login

HX = {"HX-Request": "true"}


@pytest.fixture
def costed(session, seeded) -> str:
    pid, tid = seeded.project.id, os.urandom(16)
    root = make_span(pid, tid, name="support run", start_ms=0, duration_ms=900, category="agent",
                     agent_name=f"agent {XSS}")
    step = make_span(pid, tid, name="plan", start_ms=1, duration_ms=400, category="workflow", parent=root.span_id)
    priced = make_span(pid, tid, name="chat gpt-4o", start_ms=2, duration_ms=300, category="llm", parent=step.span_id,
                       provider="openai", request_model="gpt-4o", response_model="gpt-4o-2024-08-06",
                       cost_usd=Decimal("0.0123"), cost_source="table", input_tokens=1000, output_tokens=200)
    tool = make_span(pid, tid, name="lookup", start_ms=500, duration_ms=300, category="tool", parent=root.span_id,
                     tool_name="lookup_order")
    unpriced = make_span(pid, tid, name="chat mystery", start_ms=510, duration_ms=200, category="llm",
                         parent=tool.span_id, provider="acme", request_model="mystery-1", cost_source="unpriced",
                         input_tokens=50, output_tokens=5)
    store(session, [root, step, priced, tool, unpriced])
    session.commit()
    return tid.hex()


def panel(html: str) -> str:
    start = html.index('<section class="costs-panel"')
    return unescape(html[start:html.index("</section>", start)])


def test_panel_breaks_the_cost_down_like_its_twin(client, seeded, costed):
    login(client, seeded)
    page = client.get(f"/traces/{costed}")
    shown = panel(page.text)
    twin = client.get(f"/api/traces/{costed}/costs").json()
    assert twin["calls"] == 2 and twin["unpriced_calls"] == 1 and twin["cost_usd"] == "0.0123"
    for caption in ("By step", "By agent", "By model", "By tool"):
        assert f"<caption>{caption}</caption>" in shown
    for group in ("by_step", "by_agent", "by_model", "by_tool"):
        for g in twin[group]:
            assert f"<td>{g['key']}</td>" in shown
    assert "plan" in shown and "gpt-4o-2024-08-06" in shown and "lookup_order" in shown
    assert "1 unpriced (no price known: not counted as $0)" in shown
    # The unpriced model's row says so; it never shows a cost of $0.
    row = shown[shown.index("<td>mystery-1</td>"):]
    row = row[:row.index("</tr>")]
    assert "unpriced" in row and "$0" not in row
    assert "$0.0123" in shown and "1,000 / 200" in shown


def test_hostile_names_are_escaped_in_the_panel(client, seeded, costed):
    login(client, seeded)
    html = client.get(f"/traces/{costed}").text
    assert XSS not in html and "agent &lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_large_trace_loads_the_panel_afterwards(client, seeded, costed, monkeypatch):
    monkeypatch.setattr(web.routes_traces, "INLINE_ATTRIBUTION_SPANS", 1)
    login(client, seeded)
    html = client.get(f"/traces/{costed}").text
    assert f'hx-get="/traces/{costed}/costs"' in html and "<caption>By step</caption>" not in html
    fragment = client.get(f"/traces/{costed}/costs", headers=HX)
    assert fragment.status_code == 200 and "<caption>By model</caption>" in fragment.text
    assert "<html" not in fragment.text
    plain = client.get(f"/traces/{costed}/costs", follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == f"/api/traces/{costed}/costs"
    missing = client.get(f"/traces/{'ab' * 16}/costs", headers=HX)
    assert missing.status_code == 404


def test_a_trace_without_model_calls_says_so(client, seeded, session):
    tid = os.urandom(16)
    store(session, [make_span(seeded.project.id, tid, name="cron", start_ms=0, duration_ms=5)])
    session.commit()
    login(client, seeded)
    assert "No model calls in this trace." in panel(client.get(f"/traces/{tid.hex()}").text)
