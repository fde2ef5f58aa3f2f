"""What a source's run left in PostgreSQL, read back for the per-source tests."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from core.attribution import TraceAttribution
from core.forensics_view import EdgeView
from core.handoffs import derived_handoff_edges
from db.models import SpanEdge, SpanRow, TraceRow
from db.queries.forensics import trace_attribution
from db.queries.lineage import span_view


def spans(session, project_id: int) -> list[SpanRow]:
    return list(session.scalars(select(SpanRow).where(SpanRow.project_id == project_id)
                                .order_by(SpanRow.start_ns, SpanRow.span_id)))


def named(rows: list[SpanRow], name: str) -> list[SpanRow]:
    found = [row for row in rows if row.name == name]
    assert found, f"no span named {name!r} in {sorted({r.name for r in rows})}"
    return found


def by_trace(rows: list[SpanRow]) -> dict[bytes, list[SpanRow]]:
    grouped: dict[bytes, list[SpanRow]] = {}
    for row in rows:
        grouped.setdefault(row.trace_id, []).append(row)
    return grouped


def failed_call_trace(rows: list[SpanRow]) -> tuple[bytes, SpanRow]:
    """(trace id, the refused model call) of the run whose model call the fake server refused."""
    (call,) = [r for r in rows if r.category == "llm" and r.error_class == "rate_limited"]
    return call.trace_id, call


def summary(rows: list[SpanRow]) -> set[tuple]:
    """(name, category, agent, tool, status, error class) of every span."""
    return {(r.name, r.category, r.agent_name, r.tool_name, r.status, r.error_class) for r in rows}


def edges(session, project_id: int, rows: list[SpanRow]) -> Counter:
    """(span name, relation, linked span name) -> how many, over the edges the attribution reads:
    the stored ones and the handoff links derived at read time. A handoff and the agent run it
    starts may reach the collector in different exports (a BatchSpanProcessor flushes every 5 s),
    and then only the read-time derivation links them."""
    names = {(row.trace_id, row.span_id): row.name for row in rows}
    found = [EdgeView(*row) for row in session.execute(
        select(SpanEdge.trace_id, SpanEdge.span_id, SpanEdge.relation, SpanEdge.linked_trace_id,
               SpanEdge.linked_span_id).where(SpanEdge.project_id == project_id))]
    found += derived_handoff_edges([span_view(row) for row in rows], found)
    return Counter((names.get((e.trace_id, e.span_id)), e.relation, names.get((e.linked_trace_id, e.linked_span_id)))
                   for e in found)


def traces(session, project_id: int) -> list[TraceRow]:
    return list(session.scalars(select(TraceRow).where(TraceRow.project_id == project_id)
                                .order_by(TraceRow.start_time)))


def verdict(session, project_id: int, trace_id: bytes) -> TraceAttribution:
    result = trace_attribution(session, project_id, trace_id)
    assert result is not None
    return result.attribution
