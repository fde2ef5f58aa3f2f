"""Scores: writing them (idempotent by key), reading them per trace, listing and aggregating.

Aggregates join a span-level score to its span for the model and agent; a trace-level score
has neither (shown as "(trace)"). Days are UTC days of the score's creation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

import orjson
from sqlalchemy import and_, case, func, literal, select, text
from sqlalchemy.orm import Session

from core.scores import ScoreInput
from db.citus import routed_chunks
from db.models import Score, SpanRow

TRACE_LEVEL = "(trace)"
GROUPS = ("model", "agent", "day")


# One statement whatever the number of scores: the rows travel as one JSON text (bytea as hex),
# made by orjson in C. Arrays as parameters were dumped element by element in Python (escaping
# every text with a regex), which made the background evaluator's writes cost more than its checks.
_INSERT = """
INSERT INTO scores (project_id, score_key, trace_id, span_id, name, data_type, value, label, source, comment,
    created_at)
SELECT :project_id, decode(r->>0, 'hex'), decode(r->>1, 'hex'), decode(r->>2, 'hex'), r->>3, r->>4,
    CAST(r->>5 AS float8), r->>6, r->>7, r->>8, now()
FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS r
ON CONFLICT (project_id, trace_id, score_key) DO """
_KEEP = text(_INSERT + "NOTHING")
_REPLACE = text(_INSERT + """UPDATE SET data_type = excluded.data_type, value = excluded.value,
    label = excluded.label, comment = excluded.comment, created_at = excluded.created_at""")
# (now() travels through `excluded`: Citus runs no non-IMMUTABLE function in DO UPDATE SET.)


def insert_scores(session: Session, project_id: int, scores: Sequence[ScoreInput], *, replace: bool = False) -> int:
    """Store these scores; one already stored under the same key is kept (or, with `replace`,
    overwritten: an evaluator's re-run). Returns how many rows were written. Does not commit."""
    if not scores:
        return 0
    unique = list({s.key: s for s in scores}.values())  # one key twice in a batch: the last wins
    runs: dict[bytes, list[tuple]] = {}
    for s in unique:
        runs.setdefault(s.trace_id, []).append((
            s.key.hex(), s.trace_id.hex(), s.span_id.hex() if s.span_id is not None else None, s.name,
            s.data_type, s.value, s.label, s.source, s.comment))
    written = 0
    for chunk in routed_chunks(session, list(runs.values())):  # one run at a time on Citus
        rows = [row for run in chunk for row in run]
        written += session.execute(_REPLACE if replace else _KEEP,
                                   {"project_id": project_id, "rows": orjson.dumps(rows).decode()}).rowcount
    return written


def trace_scores(session: Session, project_id: int, trace_id: bytes, span_id: bytes | None = None,
                 limit: int = 1000) -> list[Score]:
    """The scores of one trace (trace-level first, then by span), or of one of its spans."""
    query = select(Score).where(Score.project_id == project_id, Score.trace_id == trace_id)
    if span_id is not None:
        query = query.where(Score.span_id == span_id)
    return list(session.scalars(query.order_by(Score.span_id.is_not(None), Score.span_id, Score.name,
                                               Score.created_at, Score.score_key).limit(limit)))


def list_scores(session: Session, project_id: int, *, trace_id: bytes | None = None, name: str | None = None,
                source: str | None = None, since: datetime | None = None, until: datetime | None = None,
                limit: int = 100) -> list[Score]:
    """Newest first."""
    query = select(Score).where(Score.project_id == project_id)
    if trace_id is not None:
        query = query.where(Score.trace_id == trace_id)
    if name:
        query = query.where(Score.name == name)
    if source:
        query = query.where(Score.source == source)
    if since is not None:
        query = query.where(Score.created_at >= since)
    if until is not None:
        query = query.where(Score.created_at < until)
    return list(session.scalars(query.order_by(Score.created_at.desc(), Score.score_key).limit(limit)))


def scored_traces(project_id: int, *, name: str | None = None, min_value: float | None = None):
    """A subquery of trace ids with a score named `name` (any, when None) of at least `min_value`
    (booleans count as 0/1; a category-only score has no value and never passes a minimum).
    For the trace list's filter (db/queries/traces.list_traces); served by ix_scores_trace."""
    query = select(Score.trace_id).where(Score.project_id == project_id)
    if name:
        query = query.where(Score.name == name)
    if min_value is not None:
        query = query.where(Score.value >= min_value)
    return query


@dataclass(frozen=True)
class ScoreGroup:
    name: str
    group: str  # the model, agent or day (ISO date)
    count: int
    mean: float | None  # of numeric and boolean scores (the pass rate of a boolean)
    minimum: float | None
    maximum: float | None
    labels: dict[str, int]  # category counts


def score_aggregates(session: Session, project_id: int, *, by: str, since: datetime, until: datetime,
                     name: str | None = None, limit: int = 500) -> list[ScoreGroup]:
    """Scores created in [since, until) per score name and per model, agent or day."""
    if by not in GROUPS:
        raise ValueError(f"by must be one of {', '.join(GROUPS)}")
    span_join = and_(SpanRow.project_id == Score.project_id, SpanRow.trace_id == Score.trace_id,
                     SpanRow.span_id == Score.span_id)
    if by == "day":
        group = func.to_char(func.date_trunc("day", func.timezone("UTC", Score.created_at)), "YYYY-MM-DD")
    elif by == "model":
        group = case((Score.span_id.is_(None), literal(TRACE_LEVEL)),
                     else_=func.coalesce(SpanRow.response_model, SpanRow.request_model, literal("")))
    else:
        group = case((Score.span_id.is_(None), literal(TRACE_LEVEL)), else_=func.coalesce(SpanRow.agent_name, literal("")))
    group = group.label("grp")
    where = [Score.project_id == project_id, Score.created_at >= since, Score.created_at < until]
    if name:
        where.append(Score.name == name)
    base = select(Score.name, group, Score.value, Score.label).select_from(Score)
    if by != "day":
        base = base.outerjoin(SpanRow, span_join)
    sub = base.where(*where).subquery()
    numbers = select(sub.c.name, sub.c.grp, func.count().label("n"), func.avg(sub.c.value).label("mean"),
                     func.min(sub.c.value).label("lo"), func.max(sub.c.value).label("hi")
                     ).group_by(sub.c.name, sub.c.grp).order_by(sub.c.name, sub.c.grp).limit(limit)
    labels = select(sub.c.name, sub.c.grp, sub.c.label, func.count().label("n")).where(
        sub.c.label.is_not(None)).group_by(sub.c.name, sub.c.grp, sub.c.label)
    counted: dict[tuple[str, str], dict[str, int]] = {}
    for row in session.execute(labels):
        counted.setdefault((row.name, row.grp), {})[row.label] = row.n
    return [ScoreGroup(row.name, row.grp or "", row.n, _float(row.mean), _float(row.lo), _float(row.hi),
                       dict(sorted(counted.get((row.name, row.grp), {}).items(), key=lambda kv: -kv[1])[:10]))
            for row in session.execute(numbers)]


def score_names(session: Session, project_id: int, limit: int = 100) -> list[str]:
    return list(session.scalars(select(Score.name).where(Score.project_id == project_id).distinct()
                                .order_by(Score.name).limit(limit)))


def _float(value) -> float | None:
    return None if value is None else float(value)


__all__ = ["GROUPS", "ScoreGroup", "insert_scores", "list_scores", "score_aggregates", "score_names",
           "scored_traces", "trace_scores"]
