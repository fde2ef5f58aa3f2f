"""Scores per workflow step: a span-level score counts under the nearest workflow step around
the span it scores (core.normalize.step_name, the rule of the cost breakdown and the Routing
page); "(none)" outside any step, "(trace)" for a score on a whole run. The newest MAX_SCORES
scores of the window are read; each ancestor is a primary-key probe bounded by its run's times
(the `traces` row), at most MAX_DEPTH levels up. Citus runs no recursive CTE across shards: there
the walk goes one level per statement (as db/queries/lineage.py does), with the same result.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.normalize import step_name
from core.routing import NONE_LABEL
from db.citus import on_citus
from db.queries.scores import TRACE_LEVEL, ScoreGroup

MAX_SCORES = 20_000
MAX_DEPTH = 12

_SQL = f"""
WITH RECURSIVE sc AS (
    SELECT trace_id, span_id, name, value, label FROM scores
    WHERE project_id = :project_id AND created_at >= :since AND created_at < :until
    ORDER BY created_at DESC LIMIT :limit
), up AS (
    SELECT s.trace_id, s.span_id AS scored, s.span_id AS next_id, 0 AS depth, NULL::text AS category,
        NULL::text AS name, NULL::jsonb AS attrs, t.start_time AS t0, t.end_time AS t1
    FROM (SELECT DISTINCT trace_id, span_id FROM sc WHERE span_id IS NOT NULL) s
    JOIN traces t ON t.project_id = :project_id AND t.trace_id = s.trace_id
    UNION ALL
    SELECT u.trace_id, u.scored, p.parent_span_id, u.depth + 1, p.category, p.name,
        CASE WHEN p.category = 'workflow' THEN p.attributes END, u.t0, u.t1
    FROM up u JOIN spans p ON p.project_id = :project_id AND p.trace_id = u.trace_id AND p.span_id = u.next_id
        AND p.start_time >= u.t0 AND p.start_time <= u.t1
    WHERE u.depth < {MAX_DEPTH} AND u.next_id IS NOT NULL AND u.category IS DISTINCT FROM 'workflow'
), steps AS (  -- one row per scored span (a correlated subquery would scan `up` once per score)
    SELECT trace_id, scored, jsonb_build_array(name, attrs) AS step FROM up WHERE category = 'workflow'
)
SELECT sc.name, sc.value, sc.label, sc.span_id IS NULL AS on_trace, st.step
FROM sc LEFT JOIN steps st ON st.trace_id = sc.trace_id AND st.scored = sc.span_id
"""


def score_aggregates_by_step(session: Session, project_id: int, *, since: datetime, until: datetime,
                             limit: int = MAX_SCORES) -> list[ScoreGroup]:
    """Like db.queries.scores.score_aggregates, grouped by workflow step."""
    acc: dict[tuple[str, str], dict] = {}
    params = {"project_id": project_id, "since": since, "until": until, "limit": limit}
    rows = _rows_level_by_level(session, params) if on_citus(session) else session.execute(text(_SQL), params)
    for row in rows:
        if row.on_trace:
            group = TRACE_LEVEL
        elif row.step:
            group = step_name(row.step[1] or {}, row.step[0] or "")
        else:
            group = NONE_LABEL
        a = acc.setdefault((row.name, group), {"n": 0, "values": [], "labels": {}})
        a["n"] += 1
        if row.value is not None:
            a["values"].append(float(row.value))
        if row.label is not None:
            a["labels"][row.label] = a["labels"].get(row.label, 0) + 1
    out = []
    for (name, group), a in sorted(acc.items()):
        values = a["values"]
        out.append(ScoreGroup(name, group, a["n"], sum(values) / len(values) if values else None,
                              min(values) if values else None, max(values) if values else None,
                              dict(sorted(a["labels"].items(), key=lambda kv: -kv[1])[:10])))
    return out


class _Row(NamedTuple):
    name: str
    value: float | None
    label: str | None
    on_trace: bool
    step: list | None


_SCORES = """SELECT trace_id, span_id, name, value, label FROM scores
WHERE project_id = :project_id AND created_at >= :since AND created_at < :until
ORDER BY created_at DESC LIMIT :limit"""
_LEVEL = """SELECT trace_id, span_id, parent_span_id, category, name,
    CASE WHEN category = 'workflow' THEN attributes END AS attrs
FROM spans WHERE project_id = :project_id AND trace_id = ANY(CAST(:traces AS bytea[]))
    AND span_id = ANY(CAST(:spans AS bytea[]))"""
_CHUNK = 1000


def _rows_level_by_level(session: Session, params: dict) -> list[_Row]:
    scores = session.execute(text(_SCORES), params).all()
    # each scored span -> the span looked at now (itself first, then its parents)
    at = {(s.trace_id, s.span_id): s.span_id for s in scores if s.span_id is not None}
    steps: dict[tuple[bytes, bytes], list] = {}
    for _ in range(MAX_DEPTH + 1):
        if not at:
            break
        wanted = sorted({(trace, span) for (trace, _), span in at.items()})
        seen = {}
        for i in range(0, len(wanted), _CHUNK):
            chunk = wanted[i:i + _CHUNK]
            for r in session.execute(text(_LEVEL), {"project_id": params["project_id"],
                                                    "traces": [t for t, _ in chunk], "spans": [s for _, s in chunk]}):
                seen[(r.trace_id, r.span_id)] = r
        following = {}
        for key, span in at.items():
            r = seen.get((key[0], span))
            if r is None:
                continue
            if r.category == "workflow":
                steps[key] = [r.name, r.attrs]
            elif r.parent_span_id is not None:
                following[key] = r.parent_span_id
        at = following
    return [_Row(s.name, s.value, s.label, s.span_id is None, steps.get((s.trace_id, s.span_id))) for s in scores]


__all__ = ["score_aggregates_by_step"]
