"""Trace list and trace detail, always scoped by project_id.

The list reads only the `traces` rollup (plus the root span's status by primary
key), so it never scans `spans`. Pagination is keyset, not OFFSET: a cursor names
the last row seen as (start_time, trace_id), so pages stay stable while new traces
arrive and deep pages cost the same as the first one.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import LargeBinary, Row, and_, cast, func, literal, or_, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from core.content import with_log_content
from db.engine import plain_rows
from db.genai_logs import log_content
from db.models import SpanEdge, SpanRow, TraceFailure, TraceRow
from db.queries.run_filters import RunFilters, filtered_runs, plan_for_values

MAX_LIMIT = 500

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_CURSOR_VERSION = 1
# version byte, start_time in microseconds since the epoch (timestamptz precision), trace id.
_CURSOR = struct.Struct(">Bq16s")


class InvalidCursor(ValueError):
    """The cursor was not produced by encode_cursor (tampered, truncated or from another version)."""


def encode_cursor(start_time: datetime, trace_id: bytes) -> str:
    micros = (start_time - _EPOCH) // timedelta(microseconds=1)
    raw = _CURSOR.pack(_CURSOR_VERSION, micros, trace_id)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> tuple[datetime, bytes]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, micros, trace_id = _CURSOR.unpack(raw)
        if version != _CURSOR_VERSION:
            raise InvalidCursor(f"unknown cursor version {version}")
        return _EPOCH + timedelta(microseconds=micros), trace_id
    except (binascii.Error, struct.error, ValueError, OverflowError) as exc:
        raise InvalidCursor(str(exc)) from exc


def trace_status(error_count: int, root_status: str | None) -> str:
    """A trace is `error` when any span failed; otherwise it carries its root span's status
    (`ok` only when the root says so explicitly, as OTel leaves most successes `unset`)."""
    if error_count > 0:
        return "error"
    return "ok" if root_status == "ok" else "unset"


@dataclass(frozen=True)
class TraceListItem:
    trace: TraceRow
    status: str


@dataclass(frozen=True)
class TracePage:
    items: list[TraceListItem]
    next_cursor: str | None


@dataclass(frozen=True)
class TraceDetail:
    trace: TraceRow
    status: str
    spans: list[SpanRow]  # ordered by start_ns; the earliest max_spans only
    edges: list[SpanEdge]  # edges of this trace's spans, plus edges from other traces into it
    truncated: bool = False  # more spans are stored than `spans` holds


def list_traces(session: Session, project_id: int, *, limit: int = 50, cursor: str | None = None,
                filters: RunFilters | None = None, **kwargs) -> TracePage:
    """Traces that started in [since, until), newest first, with the filters of `filters` (or
    RunFilters(**kwargs)). Raises InvalidCursor / ValueError."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    f = filters if filters is not None else RunFilters(**kwargs)
    plan_for_values(session, f)
    query = filtered_runs((TraceRow,), project_id, f)
    if cursor:
        after_start, after_id = decode_cursor(cursor)
        # Row comparison matches the (project_id, start_time, trace_id) index scanned backwards.
        query = query.where(tuple_(TraceRow.start_time, TraceRow.trace_id) < tuple_(after_start, after_id))
    query = query.order_by(TraceRow.start_time.desc(), TraceRow.trace_id.desc()).limit(limit + 1)

    rows = list(session.scalars(query))
    roots = root_statuses(session, project_id, rows[:limit])
    items = [TraceListItem(t, trace_status(t.error_count, roots.get(t.trace_id))) for t in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:  # one extra row fetched: there is a next page
        last = items[-1].trace
        next_cursor = encode_cursor(last.start_time, last.trace_id)
    return TracePage(items, next_cursor)


def root_statuses(session: Session, project_id: int, traces: list[TraceRow]) -> dict[bytes, str]:
    """The root span's status of each of these runs (a page of the list), by primary key."""
    keyed = [t for t in traces if t.root_span_id is not None and t.error_count == 0]
    if not keyed:
        return {}
    # Bounded like _spans_of, by the page's earliest start and latest end: the partitions
    # outside the page's time are pruned, not probed for every key (the list's largest read).
    rows = session.execute(select(SpanRow.trace_id, SpanRow.status).where(
        SpanRow.project_id == project_id, tuple_(SpanRow.trace_id, SpanRow.span_id).in_(
            [(t.trace_id, t.root_span_id) for t in keyed]), *within_runs(keyed)))
    return {trace_id: status for trace_id, status in rows}


@dataclass(frozen=True)
class RootCause:
    span_name: str
    error_class: str
    recovered: bool


def root_causes(session: Session, project_id: int, trace_ids: list[bytes]) -> dict[bytes, RootCause]:
    """The root cause to show for each of these traces (from trace_failures): an unrecovered
    one first, then the most confident."""
    if not trace_ids:
        return {}
    rows = session.execute(
        select(TraceFailure.trace_id, TraceFailure.span_name, TraceFailure.error_class, TraceFailure.recovered)
        .where(TraceFailure.project_id == project_id, TraceFailure.trace_id.in_(trace_ids))
        .order_by(TraceFailure.trace_id, TraceFailure.recovered, TraceFailure.confidence.desc(),
                  TraceFailure.root_span_id)
    )
    found: dict[bytes, RootCause] = {}
    for row in rows:
        found.setdefault(row.trace_id, RootCause(row.span_name, row.error_class, row.recovered))
    return found


def trace_row(session: Session, project_id: int, trace_id: bytes) -> TraceRow | None:
    return session.scalars(
        select(TraceRow).where(TraceRow.project_id == project_id, TraceRow.trace_id == trace_id)
    ).one_or_none()


def within_runs(traces) -> tuple:
    """Bounds on the start of the spans of these runs (their `traces` rows). Every span starts at
    or after its trace row's start_time (the minimum of its spans') and at or before its end_time
    (the maximum of their ends; ingest refuses a span that ends before it starts), so the bounds
    prune the daily partitions before and after them (docs/scaling.md): a trace of last week is
    not probed for in the days since."""
    return (SpanRow.start_time >= min(t.start_time for t in traces),
            SpanRow.start_time <= max(t.end_time for t in traces))


def _spans_of(trace: TraceRow) -> tuple:
    """The spans of a trace, bounded by its times (within_runs)."""
    return (SpanRow.project_id == trace.project_id, SpanRow.trace_id == trace.trace_id, *within_runs([trace]))


def get_trace(session: Session, project_id: int, trace_id: bytes, *,
              max_spans: int | None = None, trace: TraceRow | None = None) -> TraceDetail | None:
    """The trace with its spans, the earliest `max_spans` of them when given (a trace has no
    size limit at ingest; this bounds what one read loads). Edges are those of every span.
    `trace`: its row, when the caller has read it already."""
    trace = trace or trace_row(session, project_id, trace_id)
    if trace is None:
        return None
    query = (
        select(SpanRow)
        .where(*_spans_of(trace))
        .order_by(SpanRow.start_ns, SpanRow.span_id)
    )
    if max_spans is not None:
        query = query.limit(max_spans + 1)  # one more: tells whether the trace was cut
    spans = list(session.scalars(query))
    truncated = max_spans is not None and len(spans) > max_spans
    if truncated:
        spans = spans[:max_spans]
    edges = list(session.scalars(
        select(SpanEdge)
        .where(
            SpanEdge.project_id == project_id,
            # Outgoing: the primary key; incoming from other traces: ix_span_edges_linked.
            or_(SpanEdge.trace_id == trace_id, SpanEdge.linked_trace_id == trace_id),
        )
        .order_by(SpanEdge.trace_id, SpanEdge.span_id, SpanEdge.relation,
                  SpanEdge.linked_trace_id, SpanEdge.linked_span_id)
    ))
    _merge_log_content(session, project_id, trace_id, spans)
    root_status = next((s.status for s in spans if s.span_id == trace.root_span_id), None)
    if root_status is None and truncated and trace.root_span_id is not None:
        root_status = session.scalar(select(SpanRow.status).where(
            *_spans_of(trace), SpanRow.span_id == trace.root_span_id))
    return TraceDetail(trace, trace_status(trace.error_count, root_status), spans, edges, truncated)


# What a span tree row shows of a span: no content, attributes or events (the detail panel
# reads those for one span), and no parent (the skeleton has it).
OUTLINE_COLUMNS = (
    SpanRow.trace_id, SpanRow.span_id, SpanRow.name, SpanRow.category,
    SpanRow.start_ns, SpanRow.duration_ns, SpanRow.status, SpanRow.error_class, SpanRow.status_message,
    SpanRow.request_model, SpanRow.response_model, SpanRow.input_tokens, SpanRow.output_tokens,
    SpanRow.cost_usd, SpanRow.cost_source, SpanRow.duplicate_of, SpanRow.duplicate_reason,
)


def _lineage_edges(session: Session, trace: TraceRow) -> list[SpanEdge]:
    """The trace's edges other than `parent` (spans.parent_span_id has those), both directions.
    One read per direction, each through its partial index of non-parent edges (schema 0030):
    under one OR the planner would read one of them on the project alone. `parent` is written in
    the statement, not bound, so that a cached generic plan can still use those indexes."""
    not_parent = SpanEdge.relation != literal("parent", literal_execute=True)
    found: dict[int, SpanEdge] = {}
    for column in (SpanEdge.trace_id, SpanEdge.linked_trace_id):
        for edge in session.scalars(select(SpanEdge).where(
                SpanEdge.project_id == trace.project_id, not_parent, column == trace.trace_id)):
            found[id(edge)] = edge  # an edge inside the trace comes twice, as one object (identity map)
    return sorted(found.values(), key=lambda e: (e.trace_id, e.span_id, e.relation, e.linked_trace_id,
                                                 e.linked_span_id))


# What the tree's shape needs of every span: the page reads these for all of a large trace's
# spans and the OUTLINE_COLUMNS only for the rows it renders (a few hundred), not for 10,000.
SKELETON_COLUMNS = (SpanRow.span_id, SpanRow.parent_span_id, SpanRow.start_ns, SpanRow.duration_ns)
SpanSkeleton = namedtuple("SpanSkeleton", [c.key for c in SKELETON_COLUMNS])


def trace_skeleton(session: Session, project_id: int, trace_id: bytes, *,
                   max_spans: int | None = None, trace: TraceRow | None = None) -> TraceDetail | None:
    """get_trace for the span tree of a large trace: SpanSkeleton rows (plain named tuples, as
    the tree walks them all in Python) and the lineage edges only (a `parent` edge repeats
    spans.parent_span_id); the columns of the rows rendered come from outline_rows. The spans
    come in no particular order unless the trace has more than `max_spans` (then the earliest)."""
    trace = trace or trace_row(session, project_id, trace_id)
    if trace is None:
        return None
    query = select(*SKELETON_COLUMNS).where(*_spans_of(trace))
    # Plain tuples from the driver: SQLAlchemy's rows took as long as the query for 10,000 spans.
    # Unsorted when the trace row counts no more than max_spans: the tree sorts each span's
    # children itself, and the database's sort was a fifth of the read's time.
    spans = None
    if max_spans is None or trace.span_count <= max_spans:
        spans = list(map(SpanSkeleton._make, plain_rows(session, query)))
    if spans is None or (max_spans is not None and len(spans) > max_spans):
        ordered = query.order_by(SpanRow.start_ns, SpanRow.span_id)
        if max_spans is not None:
            ordered = ordered.limit(max_spans + 1)
        spans = list(map(SpanSkeleton._make, plain_rows(session, ordered)))
    truncated = max_spans is not None and len(spans) > max_spans
    if truncated:
        spans = spans[:max_spans]
    root_status = None
    if trace.root_span_id is not None:
        root_status = session.scalar(select(SpanRow.status).where(
            *_spans_of(trace), SpanRow.span_id == trace.root_span_id).order_by(SpanRow.start_time).limit(1))
    return TraceDetail(trace, trace_status(trace.error_count, root_status), spans, _lineage_edges(session, trace),
                       truncated)


def outline_rows(session: Session, trace: TraceRow, span_ids: list[bytes]) -> dict[tuple[bytes, int], Row]:
    """The OUTLINE_COLUMNS of these spans, by (span_id, start_ns): a span id sent twice with
    another start time is two rows."""
    if not span_ids:
        return {}
    rows = session.execute(
        select(*OUTLINE_COLUMNS)
        .where(*_spans_of(trace), SpanRow.span_id == func.any(cast(span_ids, ARRAY(LargeBinary)))))
    return {(r.span_id, r.start_ns): r for r in rows}


def get_span(session: Session, project_id: int, trace_id: bytes, span_id: bytes) -> SpanRow | None:
    span = session.scalars(
        select(SpanRow).where(
            SpanRow.project_id == project_id, SpanRow.trace_id == trace_id, SpanRow.span_id == span_id,
        ).order_by(SpanRow.start_time).limit(1)  # one span id sent again with another start time is kept twice
    ).first()
    if span is not None:
        _merge_log_content(session, project_id, trace_id, [span], [span_id])
    return span


def _merge_log_content(session: Session, project_id: int, trace_id: bytes, spans: list[SpanRow],
                       span_ids: list[bytes] | None = None) -> None:
    """Fill in the content that GenAI log events carried for these spans (core.content.with_log_content).

    Set as the loaded value, not as a change: the rows read are never written back."""
    if not spans or all(s.input is not None and s.output is not None for s in spans):
        return
    found = log_content(session, project_id, trace_id, span_ids)
    for span in spans:
        records = found.get(span.span_id)
        if records:
            merged_in, merged_out = with_log_content(span.input, span.output, records)
            set_committed_value(span, "input", merged_in)
            set_committed_value(span, "output", merged_out)


def span_edges(session: Session, project_id: int, trace_id: bytes, span_id: bytes) -> list[SpanEdge]:
    """Edges touching one span, either direction (for the span detail panel)."""
    return list(session.scalars(
        select(SpanEdge).where(
            SpanEdge.project_id == project_id,
            or_(
                and_(SpanEdge.trace_id == trace_id, SpanEdge.span_id == span_id),
                and_(SpanEdge.linked_trace_id == trace_id, SpanEdge.linked_span_id == span_id),
            ),
        ).order_by(SpanEdge.relation, SpanEdge.trace_id, SpanEdge.span_id)
    ))


def span_names(session: Session, project_id: int, keys: list[tuple[bytes, bytes]]) -> dict[tuple[bytes, bytes], str]:
    """Names of the given (trace_id, span_id) spans that exist, to label lineage edges.

    The keys travel as two arrays joined through unnest, not as an IN list of pairs: a
    trace with thousands of edges would otherwise make a statement too complex to plan."""
    if not keys:
        return {}
    wanted = select(
        func.unnest(cast([t for t, _ in keys], ARRAY(LargeBinary))).label("trace_id"),
        func.unnest(cast([s for _, s in keys], ARRAY(LargeBinary))).label("span_id"),
    ).subquery("wanted")
    rows = session.execute(
        select(SpanRow.trace_id, SpanRow.span_id, SpanRow.name).join(
            wanted, and_(SpanRow.trace_id == wanted.c.trace_id, SpanRow.span_id == wanted.c.span_id),
        ).where(SpanRow.project_id == project_id)
    )
    return {(r.trace_id, r.span_id): r.name for r in rows}


def child_spans(session: Session, project_id: int, trace_id: bytes, parent_id: bytes, *, offset: int = 0,
                limit: int = 100) -> tuple[list[SpanRow], bool]:
    """One page of a span's children in start order, and whether more follow (the lazily
    expanded span tree). No log content: the tree rows never show it."""
    rows = list(session.scalars(
        select(SpanRow)
        .where(SpanRow.project_id == project_id, SpanRow.trace_id == trace_id, SpanRow.parent_span_id == parent_id)
        .order_by(SpanRow.start_ns, SpanRow.span_id).offset(offset).limit(limit + 1)
    ))
    return rows[:limit], len(rows) > limit


def parents_among(session: Session, project_id: int, trace_id: bytes, span_ids: list[bytes]) -> set[bytes]:
    """Which of these spans have at least one child, in one statement."""
    if not span_ids:
        return set()
    return set(session.scalars(
        select(SpanRow.parent_span_id).distinct().where(
            SpanRow.project_id == project_id, SpanRow.trace_id == trace_id,
            SpanRow.parent_span_id == func.any(cast(span_ids, ARRAY(LargeBinary))),
        )
    ))


# A preview needs the start of a run's input only; a longer text is cut before it leaves the database.
PREVIEW_READ_CHARS = 20_000


def run_inputs(session: Session, project_id: int, trace_ids: list[bytes]) -> dict[bytes, str]:
    """Each run's input: that of its earliest span holding one (the root's, or the first model
    call's), cut to PREVIEW_READ_CHARS. Probed by the spans primary key, per listed run."""
    if not trace_ids:
        return {}
    rows = session.execute(
        select(SpanRow.trace_id, func.left(SpanRow.input, PREVIEW_READ_CHARS))
        .where(SpanRow.project_id == project_id, SpanRow.trace_id == func.any(cast(trace_ids, ARRAY(LargeBinary))),
               SpanRow.input.is_not(None))
        .ext(distinct_on(SpanRow.trace_id))
        .order_by(SpanRow.trace_id, SpanRow.start_ns, SpanRow.span_id)
    )
    return {trace_id: text for trace_id, text in rows}
