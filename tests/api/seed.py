"""Seed realistic traces straight through the SQLAlchemy models (no collector needed).

`seed_agent_trace` builds one agent run the way the collector would store it:
agent -> routing -> llm (timeout) -> llm fallback (ok) -> tool -> handoff to a second
agent, plus a late span whose parent never arrived. The fallback's input carries a
<script> tag so the UI tests can prove that content is escaped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy.orm import Session

from db.models import SpanEdge, SpanRow, TraceRow
from db.queries.auth import CreatedKey, create_api_key, create_project

XSS = "<script>alert(1)</script>"
BASE_TIME = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def ns_of(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000


def time_of(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


@dataclass
class SeededProject:
    id: int
    slug: str
    read_key: CreatedKey
    ingest_key: CreatedKey


def seed_project(session: Session, slug: str) -> SeededProject:
    project = create_project(session, slug)
    read = create_api_key(session, project.id, name=f"{slug}-read", scopes=["read"])
    ingest = create_api_key(session, project.id, name=f"{slug}-ingest", scopes=["ingest"])
    return SeededProject(project.id, slug, read, ingest)


def make_span(
    project_id: int, trace_id: bytes, *, name: str, start_ms: float, duration_ms: float,
    parent: bytes | None = None, span_id: bytes | None = None, base: datetime = BASE_TIME,
    category: str = "other", status: str = "unset", **fields,
) -> SpanRow:
    start_ns = ns_of(base) + int(start_ms * 1_000_000)
    duration_ns = int(duration_ms * 1_000_000)
    values = dict(
        project_id=project_id, trace_id=trace_id, span_id=span_id or os.urandom(8),
        parent_span_id=parent, name=name, kind=fields.pop("kind", 1), category=category,
        start_time=time_of(start_ns), end_time=time_of(start_ns + duration_ns),
        start_ns=start_ns, duration_ns=duration_ns, status=status,
        attributes=fields.pop("attributes", {}), events=fields.pop("events", []),
        links=fields.pop("links", []), resource=fields.pop("resource", {"service.name": fields.get("service_name")}),
    )
    values.update(fields)
    return SpanRow(**values)


def rollup(spans: list[SpanRow]) -> TraceRow:
    """What the batch writer maintains: one row per trace from the spans really stored."""
    roots = sorted((s for s in spans if s.parent_span_id is None), key=lambda s: s.start_ns)
    root = roots[0] if roots else None
    model_calls = [s for s in spans if s.category in ("llm", "embedding")]

    def total(attr: str) -> int:
        return sum(getattr(s, attr) or 0 for s in spans)

    def distinct(attr: str) -> list[str]:
        return sorted({getattr(s, attr) for s in spans if getattr(s, attr)})

    return TraceRow(
        project_id=spans[0].project_id, trace_id=spans[0].trace_id,
        root_span_id=root.span_id if root else None, root_name=root.name if root else None,
        service_name=root.service_name if root else None,
        start_time=min(s.start_time for s in spans), end_time=max(s.end_time for s in spans),
        span_count=len(spans), error_count=sum(s.status == "error" for s in spans),
        llm_calls=len(model_calls), unpriced_calls=sum(s.cost_source == "unpriced" for s in model_calls),
        input_tokens=total("input_tokens"), output_tokens=total("output_tokens"),
        cache_read_tokens=total("cache_read_tokens"), cache_write_tokens=total("cache_write_tokens"),
        reasoning_tokens=total("reasoning_tokens"),
        cost_usd=sum((s.cost_usd for s in spans if s.cost_usd is not None), Decimal(0)),
        agents=distinct("agent_name"),
        models=sorted({s.response_model or s.request_model for s in model_calls if s.response_model or s.request_model}),
        services=distinct("service_name"),
        session_id=next((s.session_id for s in spans if s.session_id), None),
        user_id=next((s.user_id for s in spans if s.user_id), None),
    )


def edges_of(spans: list[SpanRow]) -> list[SpanEdge]:
    edges = []
    for s in spans:
        if s.parent_span_id is not None:
            edges.append(SpanEdge(project_id=s.project_id, trace_id=s.trace_id, span_id=s.span_id,
                                  relation="parent", linked_trace_id=s.trace_id, linked_span_id=s.parent_span_id))
        for link in s.links:
            edges.append(SpanEdge(
                project_id=s.project_id, trace_id=s.trace_id, span_id=s.span_id,
                relation=link["relation"],
                linked_trace_id=bytes.fromhex(link["trace_id"]), linked_span_id=bytes.fromhex(link["span_id"]),
            ))
    return edges


def store(session: Session, spans: list[SpanRow]) -> TraceRow:
    trace = rollup(spans)
    session.add_all([*spans, trace, *edges_of(spans)])
    session.flush()
    return trace


def link(trace_id: bytes, span_id: bytes, relation: str) -> dict:
    # The shape db.ingest stores in spans.links.
    return {"trace_id": trace_id.hex(), "span_id": span_id.hex(), "relation": relation,
            "attributes": {"causeline.link.type": relation}}


@dataclass
class AgentTrace:
    trace_id: bytes
    spans: dict[str, bytes] = field(default_factory=dict)  # short name -> span id

    @property
    def hex(self) -> str:
        return self.trace_id.hex()


def seed_agent_trace(session: Session, project_id: int, *, base: datetime = BASE_TIME) -> AgentTrace:
    t = AgentTrace(os.urandom(16))
    ids = {k: os.urandom(8) for k in ("agent", "route", "llm", "fallback", "tool", "handoff", "billing_llm", "orphan")}
    t.spans = ids
    common = dict(service_name="support-api", session_id="sess-42", user_id="user-7", base=base)
    mk = lambda **kw: make_span(project_id, t.trace_id, **common, **kw)  # noqa: E731
    spans = [
        mk(name="invoke_agent triage", span_id=ids["agent"], start_ms=0, duration_ms=4200, category="agent",
           operation="invoke_agent", agent_name="triage", status="ok",
           attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage"}),
        mk(name="route model", span_id=ids["route"], parent=ids["agent"], start_ms=5, duration_ms=2600,
           category="routing", operation="route", agent_name="triage",
           attributes={"gen_ai.operation.name": "route", "causeline.route.candidates": ["gpt-4o", "claude-sonnet-4"],
                       "causeline.route.chosen": "gpt-4o", "causeline.route.reason": "lowest latency"}),
        mk(name="chat gpt-4o", span_id=ids["llm"], parent=ids["route"], start_ms=10, duration_ms=2000,
           category="llm", operation="chat", provider="openai", request_model="gpt-4o", agent_name="triage",
           status="error", status_message="Request timed out after 2.0s", error_type="timeout",
           error_class="timeout", input_tokens=None, cost_usd=None, cost_source="unpriced",
           input="Where is my order #1234?",
           attributes={"gen_ai.request.model": "gpt-4o", "error.type": "timeout", "causeline.attempt": 1},
           events=[{"name": "exception", "time_ns": ns_of(base) + 2_010_000_000,
                    "attributes": {"exception.type": "openai.APITimeoutError",
                                   "exception.message": "Request timed out."}}]),
        mk(name="chat claude-sonnet-4", span_id=ids["fallback"], parent=ids["route"], start_ms=2020,
           duration_ms=560, category="llm", operation="chat", provider="anthropic",
           request_model="claude-sonnet-4", response_model="claude-sonnet-4-20250514", agent_name="triage",
           status="ok", input_tokens=1200, output_tokens=310, cache_read_tokens=800,
           cost_usd=Decimal("0.0081"), cost_source="genai-prices 0.0.30",
           input=f"User: Where is my order #1234? {XSS}", output="Let me look that up for you.",
           attributes={"gen_ai.request.model": "claude-sonnet-4", "causeline.attempt": 2,
                       "note": f"attr {XSS}"},
           links=[link(t.trace_id, ids["llm"], "fallback_of")]),
        mk(name="execute_tool lookup_order", span_id=ids["tool"], parent=ids["agent"], start_ms=2620,
           duration_ms=180, category="tool", operation="execute_tool", tool_name="lookup_order",
           agent_name="triage", status="ok", input='{"order_id": 1234}', output='{"status": "shipped"}',
           links=[link(t.trace_id, ids["fallback"], "data_from")]),
        mk(name="invoke_agent billing", span_id=ids["handoff"], parent=ids["agent"], start_ms=2820,
           duration_ms=1350, category="agent", operation="invoke_agent", agent_name="billing",
           attributes={"gen_ai.transfer.from": "triage"},
           links=[link(t.trace_id, ids["agent"], "handoff_from")]),
        mk(name="chat local-llama", span_id=ids["billing_llm"], parent=ids["handoff"], start_ms=2850,
           duration_ms=1250, category="llm", operation="chat", provider="ollama", request_model="local-llama",
           agent_name="billing", status="ok", input_tokens=400, output_tokens=90,
           cost_usd=None, cost_source="unpriced"),
        # Late arrival: its parent span was never received.
        mk(name="retrieval search_kb", span_id=ids["orphan"], parent=os.urandom(8), start_ms=3000,
           duration_ms=120, category="retrieval", operation="retrieval"),
    ]
    store(session, spans)
    return t


def seed_simple_traces(
    session: Session, project_id: int, count: int, *, service: str = "svc", agent: str = "bot",
    model: str = "gpt-4o-mini", every: timedelta = timedelta(minutes=1), base: datetime = BASE_TIME,
    ties: int = 1, error_every: int = 0,
) -> list[bytes]:
    """`count` one-span traces; `ties` consecutive traces share a start time (keyset tie-breaks)."""
    trace_ids = []
    for i in range(count):
        trace_id = os.urandom(16)
        start = base + every * (i // ties)
        failed = error_every and i % error_every == 0
        span = make_span(project_id, trace_id, name=f"job {i}", start_ms=0, duration_ms=50 + i, base=start,
                         category="llm", status="error" if failed else "ok", service_name=service,
                         agent_name=agent, request_model=model, input_tokens=10, output_tokens=5,
                         cost_usd=Decimal("0.0001"), cost_source="genai-prices 0.0.30")
        store(session, [span])
        trace_ids.append(trace_id)
    return trace_ids
