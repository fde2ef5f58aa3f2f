"""Settings > Evaluation (and its JSON twin /api/evaluators): the judge's configuration, today's
judge calls, tokens and cost against the budget, failures by kind, and llm_rubric rules; the
trace page shows the judge call behind each LLM-as-judge verdict."""

from __future__ import annotations

import html
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.scores import ScoreInput
from core.settings import Settings
from db.models import AuditEvent
from db.queries.judge_calls import record_call
from db.queries.scores import insert_scores
from tests.api.seed import XSS
from tests.web.conftest import ORIGIN, login


@pytest.fixture
def settings(database_url) -> Settings:
    return Settings(database_url=database_url, demo="off", judge_base_url="http://127.0.0.1:9/v1",
                    judge_model="gpt-4o-mini", judge_sample_rate=0.25, judge_evaluators="faithfulness,consistency",
                    judge_daily_tokens=10_000, judge_daily_usd=1.0)


def test_trace_page_shows_the_judge_call_behind_a_verdict(client, session, seeded):
    trace = seeded.trace
    span = trace.spans["fallback"]
    record_call(session, project_id=seeded.project.id, purpose="evaluator", name="relevance", model="gpt-4o-mini",
                prompt_version="relevance@1", trace_id=trace.trace_id, span_id=span, input_tokens=1200,
                output_tokens=34, cost_usd=Decimal("0.0002004"), latency_ms=812.0)
    insert_scores(session, seeded.project.id, [ScoreInput(b"k" * 16, trace.trace_id, span, "relevance", "numeric",
                                                          0.75, "4/5", "judge:relevance@1", f"on topic {XSS}")])
    session.commit()
    login(client, seeded)
    page = client.get(f"/traces/{trace.hex}").text
    assert "judge:relevance@1" in page and "gpt-4o-mini · 1,234 tokens · $0.0002004" in page
    assert XSS not in page
    twin = client.get(f"/api/traces/{trace.hex}").json()["scores"]
    assert twin[0]["judge"] == {"model": "gpt-4o-mini", "prompt_version": "relevance@1", "input_tokens": 1200,
                                "output_tokens": 34, "cost_usd": "0.0002004", "latency_ms": 812.0}
    detail = client.get(f"/traces/{trace.hex}/spans/{span.hex()}", headers={"HX-Request": "true"}).text
    assert "1,234 tokens" in detail


def test_evaluation_page_shows_todays_judge_costs_and_failures(client, session, seeded):
    pid = seeded.project.id
    for name, outcome, tokens, cost in (("faithfulness", "ok", 900, "0.0003"), ("faithfulness", "ok", 1100, "0.0005"),
                                        ("relevance", "timeout", None, None), ("relevance", "garbage", 300, "0.0001")):
        record_call(session, project_id=pid, purpose="evaluator", name=name, model="gpt-4o-mini", outcome=outcome,
                    input_tokens=tokens, output_tokens=0 if tokens else None,
                    cost_usd=Decimal(cost) if cost else None)
    record_call(session, project_id=pid, purpose="replay", name="gpt-4o", model="gpt-4o", input_tokens=50_000,
                output_tokens=0, cost_usd=Decimal("1"))  # not budgeted
    session.commit()
    login(client, seeded)
    response = client.get("/settings/evaluation")
    assert response.status_code == 200
    assert response.headers["link"] == '</api/evaluators>; rel="alternate"; type="application/json"'
    page = " ".join(html.unescape(response.text).split())
    assert "judges 25% of new runs" in page and "faithfulness" in page and "consistency" in page
    assert "2,300 of 10,000 (23.0%)" in page and "$0.0009 of $1 (0.1%)" in page
    assert "timeout 1" in page and "garbage 1" in page
    data = client.get("/api/evaluators").json()
    assert data["judge"] == {"configured": True, "model": "gpt-4o-mini", "sample_rate": 0.25,
                             "judges": ["faithfulness", "consistency"], "daily_tokens": 10_000, "daily_usd": "1"}
    usage = data["usage_today"]
    assert (usage["calls"], usage["tokens"], usage["cost_usd"], usage["failures"]) == (
        4, 2300, "0.0009", {"garbage": 1, "timeout": 1})
    rows = {(r["purpose"], r["name"], r["outcome"]): r for r in usage["rows"]}
    assert rows[("evaluator", "faithfulness", "ok")]["calls"] == 2
    assert rows[("evaluator", "relevance", "timeout")]["unpriced_calls"] == 1
    assert rows[("replay", "gpt-4o", "ok")]["cost_usd"] == "1"


def test_rubric_rules_from_the_page_and_the_api(client, session, seeded):
    login(client, seeded)
    saved = client.post("/settings/evaluation/rules", headers=ORIGIN, follow_redirects=False, data={
        "name": "polite", "kind": "llm_rubric", "rubric": f"Thanks the customer {XSS}", "model": "gpt-4o*"})
    assert saved.status_code == 303, saved.text
    page = client.get("/settings/evaluation").text
    assert "polite" in page and XSS not in page and "Thanks the customer &lt;script&gt;" in page
    refused = client.post("/settings/evaluation/rules", headers=ORIGIN,
                          data={"name": "empty", "kind": "llm_rubric", "rubric": "  "})
    assert refused.status_code == 400 and "needs a rubric" in refused.text
    cross_site = client.post("/settings/evaluation/rules", headers={"Origin": "https://evil.example"},
                             data={"name": "x", "kind": "llm_rubric", "rubric": "y"})
    assert cross_site.status_code == 403
    put = client.put("/api/evaluators/concise", headers=ORIGIN,
                     json={"kind": "llm_rubric", "config": {"rubric": "At most three sentences."}})
    assert put.status_code == 200, put.text
    rules = {r["name"]: r for r in client.get("/api/evaluators").json()["rules"]}
    assert rules["polite"]["config"] == {"rubric": f"Thanks the customer {XSS}", "model": "gpt-4o*"}
    assert rules["concise"]["kind"] == "llm_rubric" and "empty" not in rules and "x" not in rules
    removed = client.post("/settings/evaluation/rules/polite/remove", headers=ORIGIN, follow_redirects=False)
    assert removed.status_code == 303
    assert "polite" not in {r["name"] for r in client.get("/api/evaluators").json()["rules"]}
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.target.in_(["polite", "concise"]))).all()
    assert sorted(actions) == ["evaluator_rule.delete", "evaluator_rule.save", "evaluator_rule.save"]


def test_unconfigured_and_read_only(database_url, engine, session, seeded):
    from fastapi.testclient import TestClient

    from db.queries.auth import add_membership, create_user
    from server.app import create_app

    viewer = create_user(session, "viewer@example.com", "viewer password!")
    add_membership(session, viewer.id, seeded.project.id, "viewer")
    session.commit()
    app = create_app(Settings(database_url=database_url, demo="off"), engine=engine, parts=("api", "web"))
    with TestClient(app, base_url="http://testserver") as client:
        client.post("/login", data={"email": "viewer@example.com", "password": "viewer password!"}, headers=ORIGIN)
        page = " ".join(client.get("/settings/evaluation").text.split())
        assert "No model endpoint is configured" in page and "Save rule" not in page
        data = client.get("/api/evaluators").json()
        assert data["judge"]["configured"] is False and data["can_manage"] is False
        assert data["usage_today"]["calls"] == 0 and data["usage_today"]["rows"] == []
        refused = client.post("/settings/evaluation/rules", headers=ORIGIN, follow_redirects=False,
                              data={"name": "x", "kind": "llm_rubric", "rubric": "y"})
        assert refused.status_code == 403
