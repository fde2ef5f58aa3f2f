"""Runs for the Routing page: a `classify-intent` step routed between gpt-4o-mini (cheap, as
reliable) and gpt-4o, a `draft` step whose gpt-4o calls fall back to claude, scores on the calls,
and hostile text in a step name and a routing reason."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from core.scores import parse_score
from db.queries.scores import insert_scores
from tests.api.seed import XSS, link, make_span, store

HOSTILE_STEP = f"summarize {XSS}"
HOSTILE_REASON = f"because {XSS}"


def seed_routing(session, project_id: int, *, mini: int = 200, big: int = 60, base: datetime | None = None) -> None:
    base = base or datetime.now(timezone.utc) - timedelta(hours=3)
    scores = []
    for i in range(mini + big):
        model, cost = ("gpt-4o-mini", "0.0004") if i < mini else ("gpt-4o", "0.006")
        tid = os.urandom(16)
        at = base + timedelta(seconds=i)
        root = make_span(project_id, tid, name="invoke_agent triage", start_ms=0, duration_ms=900, category="agent",
                         base=at, agent_name="triage")
        step = make_span(project_id, tid, name="invoke_workflow classify-intent", start_ms=1, duration_ms=800,
                         parent=root.span_id, category="workflow", base=at, agent_name="triage",
                         attributes={"gen_ai.workflow.name": "classify-intent"})
        route = make_span(project_id, tid, name="route model-router", start_ms=2, duration_ms=700,
                          parent=step.span_id, category="routing", base=at, agent_name="triage",
                          attributes={"causeline.route.router": "model-router",
                                      "causeline.route.candidates": ["gpt-4o-mini", "gpt-4o"],
                                      "causeline.route.chosen": model,
                                      "causeline.route.reason": HOSTILE_REASON if i == 0 else "cheapest that meets the SLA"})
        failed = (i < mini and i % 100 == 5) or i == mini + 5  # 1% of the cheap calls, one of the dear ones
        call = make_span(project_id, tid, name=f"chat {model}", start_ms=3, duration_ms=300 if i < mini else 900,
                         parent=route.span_id, category="llm", base=at, agent_name="triage", provider="openai",
                         request_model=model, response_model=model, cost_usd=Decimal(cost), cost_source="table",
                         input_tokens=400, output_tokens=20, status="error" if failed else "ok",
                         error_class="rate_limit" if failed else None, error_type="RateLimitError" if failed else None)
        spans = [root, step, route, call]
        if i < 4:  # a hostile step name, and a fallback from gpt-4o to claude in it
            draft = make_span(project_id, tid, name="invoke_workflow draft", start_ms=500, duration_ms=300,
                              parent=root.span_id, category="workflow", base=at, attributes={"gen_ai.workflow.name": HOSTILE_STEP})
            first = make_span(project_id, tid, name="chat gpt-4o", start_ms=501, duration_ms=100, parent=draft.span_id,
                              category="llm", base=at, provider="openai", request_model="gpt-4o", status="error",
                              error_class="timeout", cost_usd=Decimal(0), cost_source="table")
            second = make_span(project_id, tid, name="chat claude-sonnet-4-5", start_ms=602, duration_ms=150,
                               parent=draft.span_id, category="llm", base=at, provider="anthropic",
                               request_model="claude-sonnet-4-5", cost_usd=Decimal("0.01"), cost_source="table",
                               retry_kind="fallback", links=[link(tid, first.span_id, "fallback_of")])
            spans += [draft, first, second]
        store(session, spans)
        scores.append({"trace_id": tid.hex(), "span_id": call.span_id.hex(), "name": "relevance",
                       "value": 0.8 if i % 2 else 0.9})
    insert_scores(session, project_id, [parse_score(s) for s in scores])
    session.commit()
