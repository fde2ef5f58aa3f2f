"""Storing the content of GenAI log events (core/otlp_logs.py), and reading it per span."""

from __future__ import annotations

from typing import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.otlp_logs import ContentRecord
from db.models import GenaiLogRecord


def insert_log_records(session: Session, project_id: int, records: Sequence[ContentRecord]) -> int:
    """Insert what is new (a redelivered record is skipped by its key); returns how many were.
    Does not commit."""
    if not records:
        return 0
    rows = [{
        "project_id": project_id, "trace_id": r.trace_id, "span_id": r.span_id, "record_key": r.key,
        "time_ns": r.time_ns, "seq": r.seq, "event_name": r.event_name, "input": r.input, "output": r.output,
    } for r in records]
    # executemany: SQLAlchemy sends the rows in batches of multi-row INSERTs (no parameter limit).
    result = session.execute(insert(GenaiLogRecord).on_conflict_do_nothing().returning(GenaiLogRecord.record_key),
                             rows)
    return len(result.all())


def log_content(
    session: Session, project_id: int, trace_id: bytes, span_ids: Iterable[bytes] | None = None,
) -> dict[bytes, list[tuple[list | None, list | None]]]:
    """(input, output) messages of each span's log records, in time order; one trace, all of its
    spans or only `span_ids` (the primary key's prefix serves both)."""
    query = select(GenaiLogRecord.span_id, GenaiLogRecord.input, GenaiLogRecord.output).where(
        GenaiLogRecord.project_id == project_id, GenaiLogRecord.trace_id == trace_id)
    if span_ids is not None:
        query = query.where(GenaiLogRecord.span_id.in_(list(span_ids)))
    query = query.order_by(GenaiLogRecord.span_id, GenaiLogRecord.time_ns, GenaiLogRecord.seq,
                           GenaiLogRecord.record_key)
    found: dict[bytes, list[tuple[list | None, list | None]]] = {}
    for span_id, messages_in, messages_out in session.execute(query):
        found.setdefault(span_id, []).append((messages_in, messages_out))
    return found
