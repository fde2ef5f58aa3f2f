"""What audit reports read: span rows as stored (for their manifests), runs in a window, and
guardrail spans. Query functions take a session and never commit."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Iterable, Iterator

from sqlalchemy import func, inspect, select, tuple_
from sqlalchemy.orm import Session

from db.models import SpanRow, TraceRow

# Every stored field of a span row: what a report's manifest digests.
SPAN_FIELDS = tuple(attr.key for attr in inspect(SpanRow).column_attrs)
_COLUMNS = [getattr(SpanRow, k) for k in SPAN_FIELDS]
BATCH = 2000


def _record(row) -> dict:
    return dict(zip(SPAN_FIELDS, row))


def trace_span_records(session: Session, project_id: int, trace_ids: Iterable[bytes]) -> list[dict]:
    ids = list(trace_ids)
    rows = session.execute(select(*_COLUMNS).where(SpanRow.project_id == project_id, SpanRow.trace_id.in_(ids))
                           .order_by(SpanRow.start_ns, SpanRow.trace_id, SpanRow.span_id))
    return [_record(r) for r in rows]


def window_span_records(session: Session, project_id: int, since: datetime, until: datetime) -> Iterator[dict]:
    """Spans of runs that started in [since, until), streamed in keyset pages (bounded memory)."""
    runs = (select(TraceRow.trace_id).where(TraceRow.project_id == project_id, TraceRow.start_time >= since,
                                            TraceRow.start_time < until))
    after = (b"", b"")
    while True:
        rows = session.execute(
            select(*_COLUMNS).where(SpanRow.project_id == project_id, SpanRow.trace_id.in_(runs),
                                    tuple_(SpanRow.trace_id, SpanRow.span_id) > tuple_(*after))
            .order_by(SpanRow.trace_id, SpanRow.span_id).limit(BATCH)).all()
        if not rows:
            return
        for row in rows:
            yield _record(row)
        after = (rows[-1].trace_id, rows[-1].span_id)


def span_records_by_key(session: Session, project_id: int,
                        keys: Iterable[tuple[bytes, bytes]]) -> dict[tuple[str, str], dict]:
    """The spans now stored under (trace_id, span_id), keyed by hex ids."""
    keys = list(keys)
    found: dict[tuple[str, str], dict] = {}
    for i in range(0, len(keys), BATCH):
        rows = session.execute(select(*_COLUMNS).where(
            SpanRow.project_id == project_id, tuple_(SpanRow.trace_id, SpanRow.span_id).in_(keys[i:i + BATCH])))
        for row in rows:
            record = _record(row)
            found[(record["trace_id"].hex(), record["span_id"].hex())] = record
    return found


def runs_in_window(session: Session, project_id: int, since: datetime, until: datetime,
                   limit: int) -> tuple[list[tuple], dict]:
    """The first `limit` runs that started in the window (oldest first), and totals over all."""
    where = (TraceRow.project_id == project_id, TraceRow.start_time >= since, TraceRow.start_time < until)
    rows = session.execute(select(TraceRow.trace_id, TraceRow.root_name, TraceRow.start_time, TraceRow.end_time,
                                  TraceRow.span_count, TraceRow.error_count, TraceRow.cost_usd)
                           .where(*where).order_by(TraceRow.start_time, TraceRow.trace_id).limit(limit)).all()
    totals = session.execute(select(
        func.count(), func.coalesce(func.sum(TraceRow.span_count), 0), func.coalesce(func.sum(TraceRow.llm_calls), 0),
        func.coalesce(func.sum(TraceRow.input_tokens), 0), func.coalesce(func.sum(TraceRow.output_tokens), 0),
        func.coalesce(func.sum(TraceRow.cost_usd), Decimal(0)), func.coalesce(func.sum(TraceRow.unpriced_calls), 0),
    ).where(*where)).one()
    keys = ("runs", "spans", "model_calls", "tokens_in", "tokens_out", "cost_usd", "unpriced_calls")
    return ([(r.trace_id.hex(), r.root_name, r.start_time, r.end_time, r.span_count, r.error_count, r.cost_usd)
             for r in rows], dict(zip(keys, totals)))


def guardrail_spans(session: Session, project_id: int, since: datetime, until: datetime) -> list[tuple]:
    """(name, category, attributes) of guardrail spans in the window: whether one blocked is
    core.failure's rule, applied by the caller."""
    return [tuple(r) for r in session.execute(
        select(SpanRow.name, SpanRow.category, SpanRow.attributes).where(
            SpanRow.project_id == project_id, SpanRow.start_time >= since, SpanRow.start_time < until,
            (SpanRow.category == "guardrail") | SpanRow.attributes.has_key("causeline.guardrail.passed")
            | SpanRow.attributes.has_key("causeline.guardrail.action")))]
