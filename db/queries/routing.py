"""The facts behind the Routing page (core/routing.py): model calls with the spans above them,
routing decisions, and the scores on those calls, for one project and window.

Read from `spans`, not the rollups: the step a call ran in (its nearest workflow ancestor), the
routing decision it was made under and the model a fallback replaced are not rollup columns.
The calls come from ix_spans_project_start (partitions pruned by the window); each ancestor is
one primary-key probe bounded to the day before the call (so only one or two partitions), at
most MAX_DEPTH levels up, stopping at the first workflow step. At most MAX_CALLS calls (the
newest) are read; the page says when the window held more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.routing import Ancestor, CallFact, Decision, decision_from
from core.span import MODEL_CALL_CATEGORIES

MAX_CALLS = 100_000
MAX_DEPTH = 12
_MODEL_CALL = "s.category IN (" + ", ".join(f"'{c}'" for c in MODEL_CALL_CATEGORIES) + ")"

CALLS_SQL = f"""
WITH RECURSIVE calls AS (
    SELECT s.trace_id, s.span_id, s.parent_span_id, s.start_time,
        COALESCE(NULLIF(s.request_model, ''), NULLIF(s.response_model, ''), '(unknown)') AS model,
        s.status = 'error' AS failed, s.error_class, s.duration_ns,
        CASE WHEN s.cost_source = 'unpriced' THEN NULL ELSE COALESCE(s.cost_usd, 0) END AS cost_usd,
        s.agent_name, s.retry_kind
    FROM spans s
    WHERE s.project_id = :project_id AND s.start_time >= :since AND s.start_time < :until AND {_MODEL_CALL}
      AND NOT EXISTS (SELECT 1 FROM span_duplicates d
                      WHERE d.project_id = s.project_id AND d.trace_id = s.trace_id AND d.span_id = s.span_id)
    ORDER BY s.start_time DESC
    LIMIT :limit
), up AS (
    SELECT c.trace_id, c.span_id AS call_id, c.parent_span_id AS next_id, c.start_time AS t, 0 AS depth,
        NULL::bytea AS span_id, NULL::text AS category, NULL::text AS name, NULL::jsonb AS attrs,
        NULL::text AS agent_name
    FROM calls c
    UNION ALL
    SELECT u.trace_id, u.call_id, p.parent_span_id, u.t, u.depth + 1, p.span_id, p.category, p.name,
        CASE WHEN p.category = 'workflow' THEN p.attributes END, p.agent_name
    FROM up u JOIN spans p ON p.project_id = :project_id AND p.trace_id = u.trace_id AND p.span_id = u.next_id
        AND p.start_time <= u.t AND p.start_time >= u.t - interval '1 day'
    WHERE u.depth < {MAX_DEPTH} AND u.category IS DISTINCT FROM 'workflow'
), chains AS (  -- one row per call (a correlated subquery would scan `up` once per call)
    SELECT trace_id, call_id, jsonb_agg(jsonb_build_array(encode(span_id, 'hex'), category, name, attrs, agent_name)
                                        ORDER BY depth) AS ancestors
    FROM up WHERE depth > 0 GROUP BY trace_id, call_id
)
SELECT c.trace_id, c.span_id, c.model, c.failed, c.error_class, c.duration_ns, c.cost_usd, c.agent_name,
    tr.root_name, fb.model AS fallback_from, COALESCE(ch.ancestors, '[]'::jsonb) AS ancestors
FROM calls c
LEFT JOIN chains ch ON ch.trace_id = c.trace_id AND ch.call_id = c.span_id
LEFT JOIN traces tr ON tr.project_id = :project_id AND tr.trace_id = c.trace_id
LEFT JOIN LATERAL (
    SELECT COALESCE(NULLIF(l.request_model, ''), NULLIF(l.response_model, ''), '(unknown)') AS model
    FROM span_edges e JOIN spans l ON l.project_id = e.project_id AND l.trace_id = e.linked_trace_id
        AND l.span_id = e.linked_span_id AND l.start_time <= c.start_time
        AND l.start_time >= c.start_time - interval '1 day'
    WHERE c.retry_kind = 'fallback' AND e.project_id = :project_id AND e.trace_id = c.trace_id
        AND e.span_id = c.span_id AND e.relation = 'fallback_of'
    LIMIT 1) fb ON true
"""

DECISIONS_SQL = """
SELECT s.trace_id, s.span_id, s.name,
    jsonb_build_object('causeline.route.router', s.attributes -> 'causeline.route.router',
                       'causeline.route.candidates', s.attributes -> 'causeline.route.candidates',
                       'causeline.route.chosen', s.attributes -> 'causeline.route.chosen',
                       'causeline.route.reason', s.attributes -> 'causeline.route.reason',
                       'causeline.route.policy', s.attributes -> 'causeline.route.policy') AS attrs
FROM spans s
WHERE s.project_id = :project_id AND s.start_time >= :since AND s.start_time < :until AND s.category = 'routing'
ORDER BY s.start_time DESC
LIMIT :limit
"""

SCORES_SQL = """
SELECT trace_id, span_id, name, value FROM scores
WHERE project_id = :project_id AND trace_id = ANY(:traces) AND span_id IS NOT NULL AND value IS NOT NULL
"""


@dataclass(frozen=True)
class RoutingFacts:
    calls: list[CallFact]
    decisions: list[Decision]
    scores: list[tuple[bytes, bytes, str, float]]
    truncated: bool  # the window held more than MAX_CALLS model calls: the newest were read


def routing_facts(session: Session, project_id: int, since: datetime, until: datetime, *,
                  limit: int = MAX_CALLS) -> RoutingFacts:
    params = {"project_id": project_id, "since": since, "until": until, "limit": limit + 1}
    calls = []
    for row in session.execute(text(CALLS_SQL), params):
        ancestors = tuple(Ancestor(bytes.fromhex(a[0]), a[1] or "", a[2] or "", a[3] or {}, a[4])
                          for a in row.ancestors)
        calls.append(CallFact(bytes(row.trace_id), bytes(row.span_id), row.model, bool(row.failed), row.error_class,
                              int(row.duration_ns), None if row.cost_usd is None else Decimal(row.cost_usd),
                              row.agent_name, row.root_name, ancestors, row.fallback_from))
    truncated = len(calls) > limit
    calls = calls[:limit]
    decisions = [decision_from(bytes(r.trace_id), bytes(r.span_id), r.name, r.attrs or {})
                 for r in session.execute(text(DECISIONS_SQL), params)]
    traces = list({c.trace_id for c in calls})
    scores = [(bytes(r.trace_id), bytes(r.span_id), r.name, float(r.value))
              for r in session.execute(text(SCORES_SQL), {"project_id": project_id, "traces": traces})] if traces else []
    return RoutingFacts(calls, decisions, scores, truncated)


__all__ = ["CALLS_SQL", "MAX_CALLS", "RoutingFacts", "routing_facts"]
