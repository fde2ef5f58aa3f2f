"""The Routing page and its JSON twin: per step (agent, task) every model that served it, routing
decisions with how the chosen model fared, a suggestion with its numbers; links to the traces
behind the numbers; hostile step names and reasons inert; the calls read through the indexes."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from db.queries.routing import CALLS_SQL
from tests.api.seed import XSS, seed_project
from tests.plans import indexes_used
from tests.web.conftest import login
from tests.web.routing_seed import HOSTILE_REASON, HOSTILE_STEP, seed_routing


def test_routing_twin_groups_models_decisions_and_suggests(client, session, seeded):
    seed_routing(session, seeded.project.id)
    login(client, seeded)
    data = client.get("/api/routing").json()
    assert data["by"] == "step" and data["window"]["range"] == "24h"
    step = next(g for g in data["groups"] if g["group"] == "classify-intent")
    mini, big = step["models"]
    assert (mini["model"], mini["calls"], mini["failures"], mini["failures_by_class"]) == (
        "gpt-4o-mini", 200, 2, {"rate_limit": 2})
    assert (big["model"], big["calls"], big["failures"]) == ("gpt-4o", 60, 1)
    assert mini["cost_per_success_usd"].startswith("0.000404") and big["cost_per_success_usd"].startswith("0.0061")
    assert mini["scores"]["relevance"]["count"] == 200 and 0.84 < mini["scores"]["relevance"]["mean"] < 0.86
    assert 250 < mini["p50_ms"] < 350 and 750 < big["p50_ms"] < 1050
    draft = next(g for g in data["groups"] if g["group"] == HOSTILE_STEP)
    by_model = {m["model"]: m for m in draft["models"]}
    assert by_model["gpt-4o"]["fallbacks_to"] == {"claude-sonnet-4-5": 4}
    assert by_model["claude-sonnet-4-5"]["fallbacks_from"] == {"gpt-4o": 4}
    [suggestion] = data["suggestions"]
    assert (suggestion["cheaper"], suggestion["dearer"], suggestion["group"]) == ("gpt-4o-mini", "gpt-4o", "classify-intent")
    assert suggestion["text"].startswith("gpt-4o-mini served “classify-intent” 200 times with 1.0% failures at 1/15 the cost")
    assert suggestion["failure_difference_upper"] <= 0.05
    decisions = {(d["chosen"], d["reason"]): d for d in data["decisions"]}
    mini_d = decisions[("gpt-4o-mini", "cheapest that meets the SLA")]
    assert (mini_d["router"], mini_d["group"], mini_d["decisions"], mini_d["chosen_failed"], mini_d["gave_up"]) == (
        "model-router", "classify-intent", 199, 2, 2)
    assert mini_d["candidates"] == ["gpt-4o-mini", "gpt-4o"]
    assert decisions[("gpt-4o-mini", HOSTILE_REASON)]["decisions"] == 1

    agents = client.get("/api/routing", params={"by": "agent"}).json()
    assert {g["group"] for g in agents["groups"]} == {"triage", "(none)"}
    tasks = client.get("/api/routing", params={"by": "task", "range": "7d"}).json()
    assert [g["group"] for g in tasks["groups"]][0] == "invoke_agent triage"
    assert client.get("/api/routing", params={"by": "tool"}).status_code == 422


def test_routing_page_renders_escaped_with_links_and_twin(client, session, seeded):
    seed_routing(session, seeded.project.id)
    login(client, seeded)
    response = client.get("/routing")
    assert response.status_code == 200
    assert '</api/routing?range=24h&by=step>; rel="alternate"' in response.headers["link"]
    page = response.text
    assert XSS not in page and html.escape(HOSTILE_STEP) in page and html.escape(HOSTILE_REASON) in page
    assert 'href="/routing"' in page  # in the top navigation
    assert "Suggestions" in page and "Consider routing" in page
    links = [html.unescape(h) for h in re.findall(r'href="(/traces\?[^"]+)"', page)]
    assert any("model=gpt-4o-mini" in h and "status=error" in h for h in links)
    assert any("error_class=rate_limit" in h for h in links)
    assert any("score_name=relevance" in h for h in links)
    agent_page = client.get("/routing?by=agent").text
    assert "agent=triage" in html.unescape(agent_page)
    assert "must be one of" in client.get("/routing?by=nope").text


def test_scoped_to_the_project_and_open_to_read_keys(client, session, seeded):
    other = seed_project(session, "other")
    seed_routing(session, other.id)
    login(client, seeded)
    page = client.get("/routing").text
    assert "No model calls in this window" in page and "classify-intent" not in page
    assert client.get("/api/routing").json()["groups"] == []
    client.cookies.clear()
    by_key = client.get("/api/routing", headers={"Authorization": f"Bearer {other.read_key.secret}"}).json()
    assert by_key["groups"][0]["group"] == "classify-intent" and by_key["suggestions"]


def test_calls_walk_the_start_index_and_probe_ancestors_by_primary_key(session, seeded):
    seed_routing(session, seeded.project.id, mini=60, big=10)
    session.execute(text("ANALYZE spans"))
    session.execute(text("SET LOCAL enable_seqscan = off"))  # a tiny table: make the planner show its options
    now = datetime.now(timezone.utc)
    plan = "\n".join(session.execute(text("EXPLAIN " + CALLS_SQL), {
        "project_id": seeded.project.id, "since": now - timedelta(days=1), "until": now, "limit": 1000}).scalars())
    used = indexes_used(session, plan)
    assert {"ix_spans_project_start", "pk_spans"} <= used and "Seq Scan on spans" not in plan, plan
    session.rollback()
