"""Erasure on request: a data subject's captured content removed, the runs' skeleton kept.

The subject is found by user id or session id. Every trace in which one span (or the trace's
rollup row) carries that id is the subject's: content often sits on child model-call spans
that do not repeat the id. In those traces every span goes through core.erasure (content
gone, identifiers pseudonymized), the trace row's identifiers are pseudonymized, and the
GenAI log records (/v1/logs content) of the traces are deleted, and their scores' comments
(which may quote content) cleared. Runs in the caller's
transaction, never commits; batches of traces keep memory bounded.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select, tuple_, union, update
from sqlalchemy.orm import Session

from core.erasure import erase_attributes, erase_events, pseudonym
from db.models import GenaiLogRecord, JudgeAttribution, Score, SpanRow, TraceRow

BATCH_TRACES = 200


@dataclass
class ErasureCounts:
    traces: int = 0
    spans: int = 0
    log_records: int = 0


def erase_subject(session: Session, *, user_id: str | None = None, session_id: str | None = None,
                  project_id: int | None = None, skip_projects: frozenset[int] | set[int] = frozenset(),
                  ) -> dict[int, ErasureCounts]:
    """Counts per project touched (empty when nothing matched). Exactly one of user_id, session_id.
    Traces of `skip_projects` (projects on legal hold) are left as they are."""
    traces = [t for t in subject_traces(session, user_id=user_id, session_id=session_id, project_id=project_id)
              if t[0] not in skip_projects]
    key = secrets.token_bytes(32)  # never stored: pseudonyms cannot be traced back to the subject
    counts: dict[int, ErasureCounts] = {}
    for start in range(0, len(traces), BATCH_TRACES):
        _erase_traces(session, traces[start:start + BATCH_TRACES], key, counts)
    return counts


def subject_traces(session: Session, *, user_id: str | None = None, session_id: str | None = None,
                   project_id: int | None = None) -> list[tuple[int, bytes]]:
    """(project_id, trace_id) of every trace holding the subject, sorted."""
    if (user_id is None) == (session_id is None):
        raise ValueError("give exactly one of user_id, session_id")
    span_column, trace_column = ((SpanRow.user_id, TraceRow.user_id) if user_id is not None
                                 else (SpanRow.session_id, TraceRow.session_id))
    value = user_id if user_id is not None else session_id
    from_spans = select(SpanRow.project_id, SpanRow.trace_id).where(span_column == value)
    from_traces = select(TraceRow.project_id, TraceRow.trace_id).where(trace_column == value)
    if project_id is not None:
        from_spans = from_spans.where(SpanRow.project_id == project_id)
        from_traces = from_traces.where(TraceRow.project_id == project_id)
    return sorted(tuple(row) for row in session.execute(union(from_spans, from_traces)))


def _erase_traces(session: Session, traces: list[tuple[int, bytes]], key: bytes,
                  counts: dict[int, ErasureCounts]) -> None:
    spans = session.execute(
        select(SpanRow.project_id, SpanRow.trace_id, SpanRow.span_id, SpanRow.start_time, SpanRow.attributes,
               SpanRow.events,
               SpanRow.user_id, SpanRow.session_id)
        .where(tuple_(SpanRow.project_id, SpanRow.trace_id).in_(traces))
    ).all()
    if spans:
        session.execute(update(SpanRow), [
            {"project_id": s.project_id, "trace_id": s.trace_id, "span_id": s.span_id, "start_time": s.start_time,
             "input": None, "output": None,
             "attributes": erase_attributes(s.attributes, key), "events": erase_events(s.events, key),
             "user_id": pseudonym(s.user_id, key), "session_id": pseudonym(s.session_id, key)}
            for s in spans
        ])
    rows = session.execute(select(TraceRow.project_id, TraceRow.trace_id, TraceRow.user_id, TraceRow.session_id)
                           .where(tuple_(TraceRow.project_id, TraceRow.trace_id).in_(traces))).all()
    if rows:
        session.execute(update(TraceRow), [
            {"project_id": r.project_id, "trace_id": r.trace_id, "user_id": pseudonym(r.user_id, key),
             "session_id": pseudonym(r.session_id, key)}
            for r in rows
        ])
    logs = session.execute(
        delete(GenaiLogRecord).where(tuple_(GenaiLogRecord.project_id, GenaiLogRecord.trace_id).in_(traces))
        .returning(GenaiLogRecord.project_id)
    ).scalars().all()
    session.execute(update(Score).where(tuple_(Score.project_id, Score.trace_id).in_(traces), Score.comment.is_not(None))
                    .values(comment=None))
    # The judge's reasoning may quote the erased content.
    session.execute(update(JudgeAttribution).where(
        tuple_(JudgeAttribution.project_id, JudgeAttribution.trace_id).in_(traces)).values(reasoning=None))
    for project_id, _ in traces:
        counts.setdefault(project_id, ErasureCounts()).traces += 1
    for s in spans:
        counts[s.project_id].spans += 1
    for project_id in logs:
        counts[project_id].log_records += 1
