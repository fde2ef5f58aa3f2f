"""Trace list filters (provider, error class, min cost, min duration, quick range) through the one
builder of run filters: the page and its JSON twin select the same runs, with the totals of the
filtered set and a masked, escaped preview of each run's input; a bad filter shows no runs."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from core.masking import MASK
from db.queries.auth import add_membership, create_user
from db.queries.run_filters import RunFilters, filtered_runs
from db.models import TraceRow
from server.app import create_app
from tests.api.seed import XSS, make_span, store
from tests.plans import indexes_used
from tests.web.conftest import ORIGIN, login

HX = {"HX-Request": "true"}


@dataclass
class Runs:
    cheap: bytes      # openai, 100 ms, $0.01, a chat whose user message is "refund order 42"
    slow: bytes       # anthropic, 5 s, $0.50, timed out
    unpriced: bytes   # openai, 2 s, one unpriced call, hostile prompt
    plain: bytes      # no model call, 300 ms


def run(session, pid, name, *, ms, base, prompt=None, **llm) -> bytes:
    tid = os.urandom(16)
    root = make_span(pid, tid, name=name, start_ms=0, duration_ms=ms, category="agent", base=base,
                     agent_name="support", input=prompt)
    spans = [root]
    if llm:
        spans.append(make_span(pid, tid, name=f"chat {llm.get('request_model', 'm')}", start_ms=1,
                               duration_ms=ms - 2, parent=root.span_id, category="llm", base=base, **llm))
    store(session, spans)
    return tid


@pytest.fixture
def runs(session, seeded) -> Runs:
    pid, base = seeded.project.id, datetime.now(timezone.utc) - timedelta(hours=2)
    chat = json.dumps([{"role": "system", "content": "You are a support agent."},
                       {"role": "user", "content": "refund order 42"}])
    made = Runs(
        cheap=run(session, pid, "support run", ms=100, base=base, prompt=chat, provider="openai",
                  request_model="gpt-4o", cost_usd=Decimal("0.01"), cost_source="table", input_tokens=10,
                  output_tokens=5),
        slow=run(session, pid, "support run", ms=5000, base=base + timedelta(minutes=1), prompt="weather in Paris",
                 provider="anthropic", request_model="claude", status="error", error_class="timeout",
                 cost_usd=Decimal("0.5"), cost_source="table", input_tokens=100, output_tokens=0),
        unpriced=run(session, pid, "support run", ms=2000, base=base + timedelta(minutes=2),
                     prompt=f"summarise {XSS}", provider="openai", request_model="mystery-model",
                     cost_source="unpriced", input_tokens=7, output_tokens=3),
        plain=run(session, pid, "support run", ms=300, base=base + timedelta(minutes=3)),
    )
    session.commit()
    return made


def listed(html: str, runs: Runs) -> set[str]:
    return {name for name, tid in vars(runs).items() if tid.hex() in html}


@pytest.mark.parametrize("params, expected", [
    ({"provider": "anthropic"}, {"slow"}),
    ({"provider": "openai"}, {"cheap", "unpriced"}),
    ({"error_class": "timeout"}, {"slow"}),
    ({"error_class": "rate_limit"}, set()),
    ({"min_cost": "0.1"}, {"slow"}),
    ({"min_cost": "$0.01"}, {"cheap", "slow"}),
    ({"min_duration": "1.5s"}, {"slow", "unpriced"}),
    ({"min_duration": "250ms", "provider": "openai"}, {"unpriced"}),
    ({"range": "24h", "agent": "support"}, {"cheap", "slow", "unpriced", "plain"}),
    ({"range": "15m"}, set()),
])
def test_each_filter_selects_the_same_runs_on_the_page_and_its_twin(client, seeded, runs, params, expected):
    login(client, seeded)
    page = client.get("/traces", params=params)
    assert page.status_code == 200 and listed(page.text, runs) == expected
    fragment = client.get("/traces/rows", params=params, headers=HX).text
    assert listed(fragment, runs) == expected and "<html" not in fragment
    twin = client.get("/api/traces", params=params).json()
    ids = {t["trace_id"] for t in twin["traces"]}
    assert {name for name, tid in vars(runs).items() if tid.hex() in ids} == expected
    assert twin["totals"]["runs"] == len(ids)
    # The page names its twin with the same filters.
    assert all(f"{k}=" in page.headers["link"] for k in params)


def test_totals_count_every_run_of_the_filtered_set_and_never_price_unpriced_calls_at_zero(client, seeded, runs):
    login(client, seeded)
    twin = client.get("/api/traces", params={"provider": "openai", "limit": "1", "range": "24h"}).json()
    assert len(twin["traces"]) == 1 and twin["next_cursor"]  # one row shown, totals of both
    assert twin["totals"] == {"runs": 2, "capped": False, "failed": 0, "with_errors": 0, "cost_usd": "0.01", "unpriced_calls": 1,
                              "input_tokens": 17, "output_tokens": 8}
    html = unescape(client.get("/traces", params={"provider": "openai", "limit": "1", "range": "24h"}).text)
    totals = html[html.index('class="stats run-totals"'):html.index("</dl>", html.index("run-totals"))]
    assert "$0.0100" in totals and "+ 1 unpriced call" in totals and "17 / 8" in totals
    errors = client.get("/api/traces", params={"error_class": "timeout", "range": "24h"}).json()["totals"]
    assert errors["runs"] == 1 and errors["with_errors"] == 1 and errors["cost_usd"] == "0.5"


def test_pagination_keeps_every_filter(client, seeded, runs):
    login(client, seeded)
    seen, params = [], {"min_duration": "250ms", "limit": "1", "range": "24h"}
    for _ in range(5):
        twin = client.get("/api/traces", params=params).json()
        seen += [t["trace_id"] for t in twin["traces"]]
        if not twin["next_cursor"]:
            break
        params = {**params, "cursor": twin["next_cursor"]}
    assert seen == [runs.plain.hex(), runs.unpriced.hex(), runs.slow.hex()]
    # The page's "older" link carries the filters too.
    page = client.get("/traces", params={"min_duration": "250ms", "limit": "1", "range": "24h"}).text
    older = unescape(page.split('class="more"')[1].split('href="')[1].split('"')[0])
    assert "min_duration=250ms" in older
    second = client.get(older).text
    assert listed(second, runs) == {"unpriced"}


def test_preview_tells_runs_apart_and_is_escaped(client, seeded, runs):
    login(client, seeded)
    html = client.get("/traces").text
    assert '<div class="preview" title="The run\'s input">refund order 42</div>' in html
    assert "weather in Paris" in html and "You are a support agent" not in html  # the user's message, not the system's
    assert XSS not in html and "summarise &lt;script&gt;alert(1)&lt;/script&gt;" in html
    twin = {t["trace_id"]: t["input_preview"] for t in client.get("/api/traces").json()["traces"]}
    assert twin[runs.cheap.hex()] == "refund order 42" and twin[runs.plain.hex()] is None


def test_viewers_see_the_preview_masked(settings, engine, session, seeded, runs):
    user = create_user(session, "viewer@example.com", "viewer-password-1")
    add_membership(session, user.id, seeded.project.id, role="viewer")
    session.commit()
    with TestClient(create_app(settings, engine=engine, parts=("api", "web")), base_url="http://testserver") as viewer:
        assert viewer.post("/login", data={"email": "viewer@example.com", "password": "viewer-password-1"},
                           headers=ORIGIN, follow_redirects=False).status_code == 303
        html = unescape(viewer.get("/traces").text)
        assert "refund order 42" not in html and "weather" not in html and MASK in html
        previews = {t["input_preview"] for t in viewer.get("/api/traces").json()["traces"]}
        assert previews <= {MASK, None} and MASK in previews


@pytest.mark.parametrize("params, message", [
    ({"min_cost": "cheap"}, "“Min cost” must be an amount in USD like 0.05."),
    ({"min_duration": "fast"}, "“Min duration” must be a duration like 1.5s, 200ms or 2m."),
    ({"range": "2y"}, "Range must be one of 15m, 1h, 24h, 7d, 30d."),
    ({"provider": "open\x00ai"}, "“Provider” must not contain NUL characters."),
    ({"error_class": "x\x00"}, "“Error class” must not contain NUL characters."),
])
def test_an_invalid_filter_shows_its_error_and_no_runs(client, seeded, runs, params, message):
    login(client, seeded)
    for path, headers in (("/traces", {}), ("/traces/rows", HX)):
        response = client.get(path, params=params, headers=headers)
        assert response.status_code == 200 and message in unescape(response.text)
        assert listed(response.text, runs) == set() and 'role="alert"' in response.text
        assert "No traces match" not in response.text and "run-totals" not in response.text


@pytest.mark.parametrize("params, field", [
    ({"min_cost": "cheap"}, "min_cost"), ({"min_duration": "-1s"}, "min_duration"), ({"range": "2y"}, "range"),
])
def test_the_json_twin_refuses_an_invalid_filter_with_a_message(client, seeded, runs, params, field):
    login(client, seeded)
    response = client.get("/api/traces", params=params)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["query", field] and problem["msg"]


def test_new_filters_walk_the_start_index_and_probe_spans_by_primary_key(session, seeded, runs):
    """The list walks ix_traces_project_start (newest first, stops at the page) and checks
    provider / error class per candidate run through the spans primary key, never a scan."""
    pid, base = seeded.project.id, datetime.now(timezone.utc) - timedelta(days=1)
    for i in range(300):  # enough rows that the statistics say what a real project looks like
        tid = os.urandom(16)
        root = make_span(pid, tid, name="run", start_ms=i, duration_ms=5, base=base)
        store(session, [root, *(make_span(pid, tid, name="step", start_ms=i, duration_ms=1, parent=root.span_id,
                                          base=base, provider="openai", category="llm") for _ in range(9))])
    session.execute(text("ANALYZE spans"))
    session.execute(text("ANALYZE traces"))
    f = RunFilters(provider="openai", error_class="timeout", min_cost=Decimal("0.01"),
                   min_duration=timedelta(seconds=1))
    query = filtered_runs((TraceRow.trace_id,), seeded.project.id, f).order_by(
        TraceRow.start_time.desc(), TraceRow.trace_id.desc()).limit(51)
    compiled = query.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
    session.execute(text("SET LOCAL enable_seqscan = off"))  # a tiny table: make the planner show its options
    plan = "\n".join(session.execute(text(f"EXPLAIN {compiled}")).scalars())
    used = indexes_used(session, plan)
    assert {"ix_traces_project_start", "pk_spans"} <= used and "SubPlan" in plan and "Seq Scan" not in plan, plan
    session.rollback()


def test_a_search_is_always_planned_for_its_words(session, seeded, runs):
    """psycopg prepares statements run often; a generic plan cannot tell a rare word from a
    common one (bench/pages.py measured 2.6 s instead of 10 ms): searches force custom plans."""
    from db.queries.traces import list_traces

    list_traces(session, seeded.project.id, search="refund", search_content=True)
    assert session.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
    session.rollback()
    list_traces(session, seeded.project.id, provider="openai")
    assert session.execute(text("SHOW plan_cache_mode")).scalar() == "auto"
    session.rollback()


def test_reading_the_matches_first_lists_the_same_runs(session, seeded, runs):
    """A rare word's matches are read first (MATERIALIZED CTE); the runs listed are the same."""
    from dataclasses import replace

    from db.queries.traces import list_traces

    for word in ("refund", "weather", "support", "zebra"):
        f = RunFilters(search=word, search_content=True)
        walked = [i.trace.trace_id for i in list_traces(session, seeded.project.id, filters=f, limit=2).items]
        first = [i.trace.trace_id for i in list_traces(session, seeded.project.id, filters=replace(
            f, search_first=True), limit=2).items]
        assert walked == first, word
    query = filtered_runs((TraceRow.trace_id,), seeded.project.id, RunFilters(search="x", search_first=True))
    assert "AS MATERIALIZED" in str(query.compile(session.get_bind()))
    session.rollback()
