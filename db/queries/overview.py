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
