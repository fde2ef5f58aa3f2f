"""Runs over time by outcome, from the `traces` rollup and `trace_failures` (never `spans`).

A run's outcome is decided by failure attribution (docs/forensics.md):
- failed: one of its root causes made the run fail (`trace_failed`);
- recovered: it has root causes, none of which made it fail (retried, fell back...);
- ok: no root cause at all.
A run counts in the bucket where it started, like everywhere else on the read side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.citus import on_citus


@dataclass(frozen=True)
class RunBucket:
    time: datetime
    runs: int
    failed_runs: int
    recovered_runs: int
    cost_usd: Decimal
    tokens: int  # input + output


# Both sides are grouped per bucket before the join, so the statement reads each run once
# (ix_traces_project_start) and each root cause once (ix_trace_failures_project_start).
_SQL = """
WITH runs AS (
    SELECT date_bin(:step, start_time, :since) AS b, count(*) AS runs,
           COALESCE(sum(cost_usd), 0) AS cost, COALESCE(sum(input_tokens + output_tokens), 0) AS tokens
    FROM traces
    WHERE project_id = :project_id AND start_time >= :since AND start_time < :until
    GROUP BY 1
),
outcome AS (
    SELECT min(trace_start) AS started, bool_or(trace_failed) AS failed
    FROM trace_failures
    WHERE project_id = :project_id AND trace_start >= :since AND trace_start < :until
    GROUP BY trace_id
),
o AS (
    SELECT date_bin(:step, started, :since) AS b, count(*) FILTER (WHERE failed) AS failed,
           count(*) FILTER (WHERE NOT failed) AS recovered
    FROM outcome GROUP BY 1
)
SELECT COALESCE(runs.b, o.b) AS b, COALESCE(runs.runs, 0) AS runs, COALESCE(o.failed, 0) AS failed,
       COALESCE(o.recovered, 0) AS recovered, COALESCE(runs.cost, 0) AS cost, COALESCE(runs.tokens, 0) AS tokens
FROM runs FULL JOIN o ON o.b = runs.b
ORDER BY 1
"""


def runs_by_outcome(session: Session, project_id: int, *, since: datetime, until: datetime,
                    step: timedelta) -> list[RunBucket]:
    """Buckets of `step` from `since` (only those holding runs), oldest first."""
    rows = session.execute(text(_SQL), {"project_id": project_id, "since": since, "until": until, "step": step}).all()
    return [RunBucket(time=r.b, runs=r.runs, failed_runs=r.failed, recovered_runs=r.recovered,
                      cost_usd=r.cost, tokens=int(r.tokens)) for r in rows]


@dataclass(frozen=True)
class FailedRun:
    trace_id: bytes
    started: datetime
    root_name: str | None
    service: str | None
    error_class: str
    span_name: str
    provider: str | None
    model: str | None
    root_causes: int


def recent_failed_runs(session: Session, project_id: int, *, since: datetime, until: datetime,
                       limit: int = 5) -> list[FailedRun]:
    """The latest runs a root cause made fail, each with its most confident root cause (then
    the widest blast radius). Reads only the window's failed runs' root causes."""
    if on_citus(session):
        return _recent_failed_runs_in_two_steps(session, project_id, since=since, until=until, limit=limit)
    rows = session.execute(text("""
        WITH failed AS (
            SELECT trace_id, max(trace_start) AS started, count(*) AS causes
            FROM trace_failures
            WHERE project_id = :project_id AND trace_start >= :since AND trace_start < :until AND trace_failed
            GROUP BY trace_id ORDER BY started DESC, trace_id LIMIT :limit
        )
        SELECT f.trace_id, f.started, f.causes, t.root_name, t.service_name, c.error_class, c.span_name, c.provider,
               COALESCE(c.response_model, c.request_model) AS model
        FROM failed f
        JOIN traces t ON t.project_id = :project_id AND t.trace_id = f.trace_id
        CROSS JOIN LATERAL (
            SELECT error_class, span_name, provider, response_model, request_model
            FROM trace_failures tf
            WHERE tf.project_id = :project_id AND tf.trace_id = f.trace_id AND tf.trace_failed
            ORDER BY tf.confidence DESC, tf.blast_radius DESC, tf.root_span_id LIMIT 1
        ) c
        ORDER BY f.started DESC, f.trace_id"""),
        {"project_id": project_id, "since": since, "until": until, "limit": limit}).all()
    return [FailedRun(trace_id=bytes(r.trace_id), started=r.started, root_name=r.root_name, service=r.service_name,
                      error_class=r.error_class, span_name=r.span_name, provider=r.provider, model=r.model,
                      root_causes=r.causes) for r in rows]


_FAILED = text("""
    SELECT trace_id, max(trace_start) AS started, count(*) AS causes
    FROM trace_failures
    WHERE project_id = :project_id AND trace_start >= :since AND trace_start < :until AND trace_failed
    GROUP BY trace_id ORDER BY started DESC, trace_id LIMIT :limit""")
# Each run's most confident root cause, with its trace: co-located on trace_id, so one pushed-down query.
_TOP_CAUSE = text("""
    SELECT DISTINCT ON (tf.trace_id) tf.trace_id, t.root_name, t.service_name, tf.error_class, tf.span_name,
           tf.provider, COALESCE(tf.response_model, tf.request_model) AS model
    FROM trace_failures tf JOIN traces t ON t.project_id = tf.project_id AND t.trace_id = tf.trace_id
    WHERE tf.project_id = :project_id AND tf.trace_id = ANY(:ids) AND tf.trace_failed
    ORDER BY tf.trace_id, tf.confidence DESC, tf.blast_radius DESC, tf.root_span_id""")


def _recent_failed_runs_in_two_steps(session: Session, project_id: int, *, since: datetime, until: datetime,
                                     limit: int) -> list[FailedRun]:
    """recent_failed_runs for Citus, which cannot join the limited CTE laterally: the runs first,
    then their top causes by trace id."""
    failed = session.execute(_FAILED, {"project_id": project_id, "since": since, "until": until,
                                       "limit": limit}).all()
    if not failed:
        return []
    top = {bytes(r.trace_id): r for r in session.execute(
        _TOP_CAUSE, {"project_id": project_id, "ids": [bytes(f.trace_id) for f in failed]})}
    runs = []
    for f in failed:
        c = top.get(bytes(f.trace_id))
        if c is not None:  # the plain query's inner join drops a run whose trace row is gone
            runs.append(FailedRun(trace_id=bytes(f.trace_id), started=f.started, root_name=c.root_name,
                                  service=c.service_name, error_class=c.error_class, span_name=c.span_name,
                                  provider=c.provider, model=c.model, root_causes=f.causes))
    return runs
