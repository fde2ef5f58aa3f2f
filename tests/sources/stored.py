"""What a source's run left in PostgreSQL, read back for the per-source tests."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from core.attribution import TraceAttribution
from db.models import SpanEdge, SpanRow, TraceRow
from db.queries.forensics import trace_attribution


def spans(session, project_id: int) -> list[SpanRow]:
    return list(session.scalars(select(SpanRow).where(SpanRow.project_id == project_id)
                                .order_by(SpanRow.start_ns, SpanRow.span_id)))


def named(rows: list[SpanRow], name: str) -> list[SpanRow]:
    found = [row for row in rows if row.name == name]
    assert found, f"no span named {name!r} in {sorted({r.name for r in rows})}"
    return found


def model_calls(rows: list[SpanRow]) -> list[SpanRow]:
    return [row for row in rows if row.category in ("llm", "embedding")]


def tokens(row: SpanRow) -> dict[str, int | None]:
    return {"input": row.input_tokens, "output": row.output_tokens, "cache_read": row.cache_read_tokens,
            "reasoning": row.reasoning_tokens}


def edges(session, project_id: int, rows: list[SpanRow]) -> Counter:
    """(span name, relation, linked span name) -> how many."""
    names = {(row.trace_id, row.span_id): row.name for row in rows}
    found = session.scalars(select(SpanEdge).where(SpanEdge.project_id == project_id))
    return Counter((names.get((e.trace_id, e.span_id)), e.relation, names.get((e.linked_trace_id, e.linked_span_id)))
                   for e in found)


def traces(session, project_id: int) -> list[TraceRow]:
    return list(session.scalars(select(TraceRow).where(TraceRow.project_id == project_id)
                                .order_by(TraceRow.start_time)))


def verdict(session, project_id: int, trace_id: bytes) -> TraceAttribution:
    result = trace_attribution(session, project_id, trace_id)
    assert result is not None
    return result.attribution
