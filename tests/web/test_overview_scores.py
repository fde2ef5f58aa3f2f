"""Scores in the Overview: per model, agent, workflow step and day (JSON twin and page), each
linking to the runs with that score; a score on a whole run counts as "(trace)"."""

from __future__ import annotations

import html
import os
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from core.scores import parse_score
from db.queries.scores import insert_scores
from tests.api.seed import XSS, make_span, store
from tests.web.conftest import login
from tests.web.routing_seed import seed_routing


def test_overview_scores_per_model_agent_step_and_day(client, session, seeded):
    seed_routing(session, seeded.project.id, mini=30, big=10)
    tid = os.urandom(16)
    base = datetime.now(timezone.utc) - timedelta(hours=1)
    step = make_span(seeded.project.id, tid, name="invoke_workflow x", start_ms=0, duration_ms=10, category="workflow",
                     base=base, attributes={"gen_ai.workflow.name": f"step {XSS}"})  # the workflow span scored itself
    store(session, [step])
    insert_scores(session, seeded.project.id, [parse_score(s) for s in (
        {"trace_id": tid.hex(), "span_id": step.span_id.hex(), "name": "relevance", "value": 0.1},
        {"trace_id": tid.hex(), "name": "resolved", "value": True})])
    session.commit()
    login(client, seeded)
    scores = client.get("/api/overview").json()["scores"]
    by_step = {(g["name"], g["group"]): g for g in scores["by_step"]}
    assert by_step[("relevance", "classify-intent")]["count"] == 40
    assert by_step[("relevance", f"step {XSS}")]["mean"] == 0.1
    assert by_step[("resolved", "(trace)")]["mean"] == 1.0
    by_model = {(g["name"], g["group"]): g for g in scores["by_model"]}
    assert by_model[("relevance", "gpt-4o-mini")]["count"] == 30 and by_model[("relevance", "gpt-4o")]["count"] == 10
    assert {(g["name"], g["group"]) for g in scores["by_agent"]} >= {("relevance", "triage")}
    assert sum(g["count"] for g in scores["by_day"] if g["name"] == "relevance") == 41

    page = client.get("/overview").text
    assert "Evaluation scores" in page and XSS not in page
    section = page[page.index('aria-labelledby="scores-h"'):]
    hrefs = html.unescape(section)
    assert "score_name=relevance&model=gpt-4o-mini" in hrefs and "score_name=relevance&agent=triage" in hrefs
    # Every score was made today: no chart of lone dots, each score's day and mean in a sentence.
    day = session.execute(text("SELECT created_at FROM scores WHERE name = 'resolved'")).scalar_one()
    assert "Mean score per day" not in section
    assert f"All scores in this window were made on {day.astimezone(timezone.utc):%Y-%m-%d}" in section
    # Two scores, each of another single day: each one's day and mean.
    session.execute(text("UPDATE scores SET created_at = created_at - interval '1 day' WHERE name = 'resolved'"))
    session.commit()
    section = client.get("/overview?range=7d").text
    section = section[section.index('aria-labelledby="scores-h"'):]
    assert "Mean score per day" not in section and "resolved 1 on " in section and "relevance " in section
    # One score over two days: a chart.
    session.execute(text("UPDATE scores SET created_at = created_at - interval '1 day' "
                         "WHERE name = 'relevance' AND value = 0.1"))
    session.execute(text("UPDATE scores SET created_at = created_at + interval '1 day' WHERE name = 'resolved'"))
    session.commit()
    section = client.get("/overview?range=7d").text
    section = section[section.index('aria-labelledby="scores-h"'):]
    assert "Mean score per day" in section and "for a daily chart" not in section


def test_overview_without_scores_says_so(client, session, seeded):
    login(client, seeded)
    assert client.get("/api/overview").json()["scores"]["by_model"] == []
    assert "No scores in this window" in client.get("/overview").text


def test_the_level_by_level_walk_of_citus_finds_the_same_steps(session, seeded):
    """db/queries/score_steps.py walks up one level per statement on Citus (no recursive CTE
    across shards): on the same data it must give what the recursive query gives."""
    from db.queries.score_steps import _SQL, _rows_level_by_level

    seed_routing(session, seeded.project.id, mini=12, big=5)
    tid = os.urandom(16)
    step = make_span(seeded.project.id, tid, name="invoke_workflow y", start_ms=0, duration_ms=10, category="workflow",
                     base=datetime.now(timezone.utc) - timedelta(hours=1), attributes={"gen_ai.workflow.name": "y"})
    store(session, [step])
    insert_scores(session, seeded.project.id, [parse_score(s) for s in (
        {"trace_id": tid.hex(), "span_id": step.span_id.hex(), "name": "relevance", "value": 0.5},
        {"trace_id": tid.hex(), "name": "resolved", "value": True})])
    session.commit()
    now = datetime.now(timezone.utc)
    params = {"project_id": seeded.project.id, "since": now - timedelta(days=1), "until": now, "limit": 1000}
    recursive = sorted((r.name, r.value, r.label, r.on_trace, repr(r.step)) for r in session.execute(text(_SQL), params))
    walked = sorted((r.name, r.value, r.label, r.on_trace, repr(r.step)) for r in _rows_level_by_level(session, params))
    assert walked == recursive and len(walked) == 19 and sum(r[4] != "None" for r in walked) >= 18
