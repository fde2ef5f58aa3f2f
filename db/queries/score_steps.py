"""Scores per workflow step: a span-level score counts under the nearest workflow step around
the span it scores (core.normalize.step_name, the rule of the cost breakdown and the Routing
page); "(none)" outside any step, "(trace)" for a score on a whole run. The newest MAX_SCORES
scores of the window are read; each ancestor is a primary-key probe bounded by its run's times
(the `traces` row), at most MAX_DEPTH levels up.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.normalize import step_name
from core.routing import NONE_LABEL
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
    for row in session.execute(text(_SQL), {"project_id": project_id, "since": since, "until": until, "limit": limit}):
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


__all__ = ["score_aggregates_by_step"]
