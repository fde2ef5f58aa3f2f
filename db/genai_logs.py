"""Storing the content of GenAI log events (core/otlp_logs.py), and reading it per span."""

from __future__ import annotations

from typing import Iterable, Sequence

import orjson
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.otlp_logs import ContentRecord
from db.models import GenaiLogRecord


# One statement whatever the number of records: each column travels as one array.
_INSERT = text("""
INSERT INTO genai_log_records (project_id, trace_id, span_id, record_key, time_ns, seq, event_name, input, output)
SELECT :project_id, t, s, k, tn, sq, e, i::jsonb, o::jsonb
FROM unnest(CAST(:trace_ids AS bytea[]), CAST(:span_ids AS bytea[]), CAST(:keys AS bytea[]),
            CAST(:times AS int8[]), CAST(:seqs AS int4[]), CAST(:names AS text[]),
            CAST(:inputs AS text[]), CAST(:outputs AS text[])) AS u(t, s, k, tn, sq, e, i, o)
ON CONFLICT DO NOTHING
""")


def insert_log_records(session: Session, project_id: int, records: Sequence[ContentRecord]) -> int:
    """Insert what is new (a redelivered record is skipped by its key); returns how many were.
    Does not commit."""
    if not records:
        return 0
    result = session.execute(_INSERT, {
        "project_id": project_id,
        "trace_ids": [r.trace_id for r in records], "span_ids": [r.span_id for r in records],
        "keys": [r.key for r in records], "times": [r.time_ns for r in records], "seqs": [r.seq for r in records],
        "names": [r.event_name for r in records],
        "inputs": [_json(r.input) for r in records], "outputs": [_json(r.output) for r in records],
    })
    return result.rowcount


def _json(value: list | None) -> str | None:
    # orjson, as on the span write path (db/ingest.py); default=str covers bytes-like oddities.
    return None if value is None else orjson.dumps(value, default=str).decode()


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
