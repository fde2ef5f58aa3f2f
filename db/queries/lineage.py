"""Load a trace together with the traces linked to it, for lineage and attribution.

Which traces: a recursive CTE over `span_edges`, following cross-trace edges in both
directions (edges declared by a trace's spans, and edges from other traces into it),
at most `max_depth` hops, with PostgreSQL's `CYCLE ... SET is_cycle USING path` so a
cycle in untrusted link data ends the walk instead of looping. The walk is breadth
first and the outer query reads at most `MAX_WALK_ROWS` rows (PostgreSQL stops a
recursive CTE once the outer LIMIT is met), so a dense web of links stays bounded too.
Every statement is scoped by project_id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import bindparam, or_, select, text
from sqlalchemy.dialects.postgresql import BYTEA
from sqlalchemy.orm import Session

from core.forensics_view import EdgeView, SpanView
from core.lineage import DEFAULT_DEPTH, DEFAULT_MAX_TRACES, MAX_DEPTH
from core.span import Tokens
from db.citus import on_citus
from db.models import SpanEdge, SpanRow, TraceRow
from db.queries.traces import within_runs

MAX_WALK_ROWS = 10_000
MAX_SPANS = 50_000  # spans loaded across all linked traces of one request

_REACH = text("""
WITH RECURSIVE reach(trace_id, depth) AS (
    SELECT CAST(:trace_id AS bytea), 0
  UNION
    SELECT CASE WHEN e.trace_id = r.trace_id THEN e.linked_trace_id ELSE e.trace_id END, r.depth + 1
    FROM reach r
    JOIN span_edges e
      ON e.project_id = :project_id
     AND (e.trace_id = r.trace_id OR e.linked_trace_id = r.trace_id)
     AND e.trace_id <> e.linked_trace_id
    WHERE r.depth < :max_depth
) CYCLE trace_id SET is_cycle USING path
SELECT trace_id, depth FROM reach WHERE NOT is_cycle LIMIT :max_rows
""").bindparams(bindparam("trace_id", type_=BYTEA))

_SPAN_COLUMNS = (
    SpanRow.trace_id, SpanRow.span_id, SpanRow.parent_span_id, SpanRow.name, SpanRow.category,
    SpanRow.start_ns, SpanRow.duration_ns, SpanRow.status, SpanRow.error_type, SpanRow.error_class,
    SpanRow.status_message, SpanRow.service_name, SpanRow.agent_name, SpanRow.tool_name, SpanRow.provider,
    SpanRow.request_model, SpanRow.response_model, SpanRow.input_tokens, SpanRow.output_tokens,
    SpanRow.cache_read_tokens, SpanRow.cache_write_tokens, SpanRow.reasoning_tokens, SpanRow.cost_usd,
    SpanRow.cost_source, SpanRow.attributes, SpanRow.events, SpanRow.duplicate_of,
)

# An edge as EdgeView takes it; a graph's edges are read in this order.
_EDGE_COLUMNS = (SpanEdge.trace_id, SpanEdge.span_id, SpanEdge.relation, SpanEdge.linked_trace_id,
                 SpanEdge.linked_span_id)


@dataclass(frozen=True)
class Loaded:
    """A trace and its spans (SpanRow or rows with the same columns) already read by the caller."""
    trace: TraceRow
    spans: Sequence
    truncated: bool = False  # the caller read only part of the trace's spans


@dataclass(frozen=True)
class TraceGraph:
    trace: TraceRow
    trace_depths: dict[bytes, int]  # the trace (0) and linked traces reached, with their hop count
    spans: list[SpanView]
    edges: list[EdgeView]
    truncated: bool                 # a depth, row or span bound cut the walk


def linked_traces(session: Session, project_id: int, trace_id: bytes, *, max_depth: int = DEFAULT_DEPTH,
                  max_traces: int = DEFAULT_MAX_TRACES) -> tuple[dict[bytes, int], bool]:
    max_depth = max(0, min(max_depth, MAX_DEPTH))
    if on_citus(session):
        rows, truncated = _reach_by_levels(session, project_id, trace_id, max_depth)
    else:
        rows = session.execute(_REACH, {
            "trace_id": trace_id, "project_id": project_id, "max_depth": max_depth, "max_rows": MAX_WALK_ROWS,
        }).all()
        truncated = len(rows) >= MAX_WALK_ROWS
    depths: dict[bytes, int] = {}
    for tid, depth in rows:
        tid = bytes(tid)
        if tid not in depths or depth < depths[tid]:
            depths[tid] = depth
    if len(depths) > max_traces:
        keep = sorted(depths.items(), key=lambda item: (item[1], item[0]))[:max_traces]
        depths, truncated = dict(keep), True
    depths[trace_id] = 0
    return depths, truncated


_LEVEL = text("""
SELECT trace_id, linked_trace_id FROM span_edges
WHERE project_id = :project_id AND trace_id <> linked_trace_id
  AND (trace_id = ANY(CAST(:frontier AS bytea[])) OR linked_trace_id = ANY(CAST(:frontier AS bytea[])))
LIMIT :max_rows""")


def _reach_by_levels(session: Session, project_id: int, trace_id: bytes,
                     max_depth: int) -> tuple[list[tuple[bytes, int]], bool]:
    """_REACH one hop per statement, for Citus (it runs a recursive CTE only within one shard, and
    a trace's links lead to other shards): a breadth-first walk, so each trace gets its least
    depth, as there; bounded by MAX_WALK_ROWS edge rows in all."""
    depths = {trace_id: 0}
    frontier, read = [trace_id], 0
    for depth in range(1, max_depth + 1):
        if not frontier or read >= MAX_WALK_ROWS:
            break
        edges = session.execute(_LEVEL, {"project_id": project_id, "frontier": frontier,
                                         "max_rows": MAX_WALK_ROWS - read}).all()
        read += len(edges)
        current, frontier = set(frontier), []
        for a, b in edges:
            a, b = bytes(a), bytes(b)
            for end in ((b,) if a in current else ()) + ((a,) if b in current else ()):
                if end not in depths:
                    depths[end] = depth
                    frontier.append(end)
    return list(depths.items()), read >= MAX_WALK_ROWS


def load_trace_graph(session: Session, project_id: int, trace_id: bytes, *, max_depth: int = DEFAULT_DEPTH,
                     max_traces: int = DEFAULT_MAX_TRACES, max_spans: int = MAX_SPANS,
                     loaded: Loaded | None = None) -> TraceGraph | None:
    """The trace, its linked traces' spans (at most `max_spans`, earliest first) and every edge
    touching them; None if not in this project. With `loaded` (the caller already read the
    trace and its spans), only the linked traces' spans are read."""
    if loaded is not None:
        trace = loaded.trace
    else:
        trace = session.scalars(
            select(TraceRow).where(TraceRow.project_id == project_id, TraceRow.trace_id == trace_id)
        ).one_or_none()
    if trace is None:
        return None
    depths, truncated = linked_traces(session, project_id, trace_id, max_depth=max_depth, max_traces=max_traces)
    ids = list(depths)
    cap = min(max_spans, MAX_SPANS)
    own: list = []
    if loaded is not None:
        own, truncated = list(loaded.spans[:cap]), truncated or loaded.truncated or len(loaded.spans) > cap
        ids = [i for i in ids if i != trace_id]
    rows = session.execute(
        select(*_SPAN_COLUMNS)
        .where(SpanRow.project_id == project_id, SpanRow.trace_id.in_(ids))
        .order_by(SpanRow.start_ns, SpanRow.span_id).limit(cap - len(own) + 1)
    ).all() if ids and len(own) < cap else []
    if len(rows) > cap - len(own):
        rows, truncated = rows[:cap - len(own)], True
    if ids and len(own) >= cap:
        truncated = True  # linked traces' spans did not fit
    if own:
        rows = sorted([*own, *rows], key=lambda r: (r.start_ns, r.span_id))
    ids = list(depths)
    edges = session.execute(
        select(*_EDGE_COLUMNS)
        .where(SpanEdge.project_id == project_id,
               or_(SpanEdge.trace_id.in_(ids), SpanEdge.linked_trace_id.in_(ids)))
        .order_by(*_EDGE_COLUMNS)
    ).all()
    edge_views = [EdgeView(*row) for row in edges]
    # Every trace an edge names is reached unless a bound stopped the walk short of it.
    truncated = truncated or any(
        e.trace_id not in depths or e.linked_trace_id not in depths for e in edge_views)
    return TraceGraph(
        trace=trace, trace_depths=depths, spans=[span_view(row) for row in rows],
        edges=edge_views, truncated=truncated,
    )


def load_unlinked_graphs(session: Session, project_id: int, traces: Sequence[TraceRow], *,
                         max_spans: int = MAX_SPANS) -> dict[bytes, TraceGraph]:
    """The graphs of runs the caller knows have no edge to or from another run, read together:
    one statement for all their spans (bounded by their times, so the daily partitions outside
    them are pruned) and one for their edges. Each graph is the one load_trace_graph returns
    for its run alone; the background attributor reads its small failed runs this way."""
    if not traces:
        return {}
    ids = [t.trace_id for t in traces]
    spans: dict[bytes, list] = {t.trace_id: [] for t in traces}
    for row in session.execute(
        select(*_SPAN_COLUMNS)
        .where(SpanRow.project_id == project_id, SpanRow.trace_id.in_(ids), *within_runs(traces))
        .order_by(SpanRow.trace_id, SpanRow.start_ns, SpanRow.span_id)
    ):
        spans[row.trace_id].append(row)
    edges: dict[bytes, list[EdgeView]] = {t.trace_id: [] for t in traces}
    for row in session.execute(
        select(*_EDGE_COLUMNS)
        .where(SpanEdge.project_id == project_id, SpanEdge.trace_id.in_(ids))
        .order_by(*_EDGE_COLUMNS)
    ):
        edges[row.trace_id].append(EdgeView(*row))
    cap = min(max_spans, MAX_SPANS)
    return {
        t.trace_id: TraceGraph(
            trace=t, trace_depths={t.trace_id: 0}, spans=[span_view(row) for row in spans[t.trace_id][:cap]],
            edges=edges[t.trace_id], truncated=len(spans[t.trace_id]) > cap,
        )
        for t in traces
    }


def span_view(row) -> SpanView:
    return SpanView(
        trace_id=row.trace_id, span_id=row.span_id, parent_span_id=row.parent_span_id, name=row.name,
        category=row.category, start_ns=row.start_ns, end_ns=row.start_ns + row.duration_ns, status=row.status,
        error_type=row.error_type, error_class=row.error_class, status_message=row.status_message,
        service_name=row.service_name, agent_name=row.agent_name, tool_name=row.tool_name,
        provider=row.provider, request_model=row.request_model, response_model=row.response_model,
        tokens=Tokens(row.input_tokens, row.output_tokens, row.cache_read_tokens, row.cache_write_tokens,
                      row.reasoning_tokens),
        cost_usd=row.cost_usd, cost_source=row.cost_source,
        attributes=row.attributes if isinstance(row.attributes, dict) else {},
        events=tuple(row.events) if isinstance(row.events, list) else (),
        duplicate_of=row.duplicate_of,
    )
