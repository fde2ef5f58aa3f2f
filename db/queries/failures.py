"""Failures across traces: materialized root causes (`trace_failures`) grouped by a dimension.

Definitions (also in docs/forensics.md):
- runs in scope: traces of the project that started in [since, until), narrowed by
  `service` (any span of the run in that service), `agent` (the agent took part) and
  `model` (a model call used it) — the `traces` rollup arrays;
- failures: distinct root causes (root trace id, root span id) materialized for those
  runs; `provider` narrows the root causes (traces carry no provider list). A root
  cause seen from two linked runs counts once (its own trace's row wins);
- a failed run: a run whose top span failed (`trace_failed`); `share_of_failed_runs` of
  a group = failed runs holding one of its root causes / all failed runs in scope;
- cost: `burned` sums what the failures themselves burned (root cause and failed
  re-attempts, with their sub-spans), split into recovered and not; `failed_runs_cost`
  sums the whole cost of the failed runs (traces.cost_usd, priced spans only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

DIMENSIONS: dict[str, str] = {
    "error_class": "tf.error_class",
    "provider": "tf.provider",
    "model": "COALESCE(tf.response_model, tf.request_model)",
    "tool": "tf.tool_name",
    "agent": "tf.agent_name",
    "step": "COALESCE(tf.step_name, tf.span_name)",
}
MAX_GROUPS = 100
EXAMPLES = 3
TREND_BUCKETS = 24


def mean_confidence(confidence_sum: float, failures: int) -> float:
    """The mean to two places, the same whatever order the floats were summed in (the rollup
    and trace_failures add them in different orders): the sum is cut to 6 places first, so
    0.7249999999 and 0.7250000001 both give 0.73."""
    mean = Decimal(repr(round(float(confidence_sum), 6))) / failures
    return float(mean.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class FailureGroup:
    key: str | None
    failures: int
    recovered: int
    runs: int
    failed_runs: int
    share_of_failed_runs: float | None
    first_seen: datetime
    last_seen: datetime
    example_traces: list[bytes]
    tokens_burned: int
    cost_burned_usd: Decimal
    cost_burned_recovered_usd: Decimal
    failed_runs_cost_usd: Decimal
    failed_runs_tokens: int
    mean_confidence: float
    trend: list[int]  # failures per equal slice of the window (TREND_BUCKETS), oldest first


@dataclass(frozen=True)
class FailureTotals:
    runs: int
    runs_with_failures: int
    failed_runs: int
    failures: int
    recovered: int
    tokens_burned: int
    cost_burned_usd: Decimal
    cost_burned_recovered_usd: Decimal
    failed_runs_cost_usd: Decimal
    failed_runs_tokens: int
    pending_traces: int  # runs in scope whose attribution is not up to date yet


def _scope(service, agent, model, provider) -> tuple[str, str, dict]:
    run_filters, root_filters, params = [], [], {}
    if service:
        run_filters.append("(t.service_name = :service OR t.services @> ARRAY[CAST(:service AS text)])")
        params["service"] = service
    if agent:
        run_filters.append("t.agents @> ARRAY[CAST(:agent AS text)]")
        params["agent"] = agent
    if model:
        run_filters.append("t.models @> ARRAY[CAST(:model AS text)]")
        params["model"] = model
    if provider:
        root_filters.append("tf.provider = :provider")
        params["provider"] = provider
    return "".join(f" AND {f}" for f in run_filters), "".join(f" AND {f}" for f in root_filters), params


def _ctes(dimension_sql: str, run_where: str, root_where: str) -> str:
    # Driven from trace_failures (indexed by project and trace start), so a grouping touches
    # the few failed runs of the window, not every run in it. traces is joined by its primary
    # key only: a time predicate on it lets a planner with stale statistics pick the time index
    # as the inner side of a nested loop (seen: 15M rows filtered, 9 s).
    return f"""
WITH fr AS (
    SELECT tf.*, t.cost_usd AS run_cost, t.input_tokens + t.output_tokens AS run_tokens,
           COALESCE({dimension_sql}, '') AS grp
    FROM trace_failures tf
    JOIN traces t ON t.project_id = tf.project_id AND t.trace_id = tf.trace_id
    WHERE tf.project_id = :project_id AND tf.trace_start >= :since AND tf.trace_start < :until{run_where}{root_where}
),
fd AS (
    SELECT DISTINCT ON (root_trace_id, root_span_id) *
    FROM fr ORDER BY root_trace_id, root_span_id, (trace_id = root_trace_id) DESC, trace_id
),
per_run AS (
    SELECT grp, trace_id, bool_or(trace_failed) AS failed, max(run_cost) AS run_cost,
           max(run_tokens) AS run_tokens, max(trace_start) AS trace_start
    FROM fr GROUP BY grp, trace_id
)"""


# A run whose attribution is not up to date (the predicate of the partial index ix_traces_unattributed).
_PENDING = "(t.attributed_at IS NULL OR t.attributed_at < t.updated_at)"
# The project's runs started in the window (parameters :project_id, :since, :until).
_IN_WINDOW = "t.project_id = :project_id AND t.start_time >= :since AND t.start_time < :until"
_RUNS = """,
runs AS (
    SELECT """ + _PENDING + """ AS pending
    FROM traces t
    WHERE """ + _IN_WINDOW + """{run_where}
)"""


def failure_groups_by(
    session: Session, project_id: int, dimensions: list[str], *, since: datetime, until: datetime,
    service: str | None = None, agent: str | None = None, model: str | None = None,
    provider: str | None = None, limit: int = 20, total_failed_runs: int | None = None,
    buckets: int = TREND_BUCKETS,
) -> dict[str, list[FailureGroup]]:
    """Top groups of each dimension by failures, in one statement: the failures of the window
    are joined and de-duplicated once, then aggregated per dimension (six separate queries
    each redid that work), with each group's trend (failures per 1/`buckets` of the window)
    from the same rows. `total_failed_runs` (from failure_totals) saves a query."""
    unknown = [d for d in dimensions if d not in DIMENSIONS]
    if unknown or not dimensions:
        raise ValueError(f"dimension must be one of {', '.join(DIMENSIONS)}")
    run_where, root_where, params = _scope(service, agent, model, provider)
    total_failed = total_failed_runs
    if total_failed is None:
        total_failed = failure_totals(session, project_id, since=since, until=until, service=service,
                                      agent=agent, model=model, provider=provider).failed_runs
    # Dimension names and expressions come from DIMENSIONS only, never from the request.
    group_cols = ", ".join(f"COALESCE({DIMENSIONS[d]}, '') AS g_{d}" for d in dimensions)
    per_root = " UNION ALL ".join(
        f"SELECT '{d}' AS dim, g_{d} AS grp, recovered, trace_start, tokens_burned, cost_burned_usd, confidence FROM fd"
        for d in dimensions)
    per_row = " UNION ALL ".join(
        f"SELECT '{d}' AS dim, g_{d} AS grp, trace_id, trace_failed, run_cost, run_tokens, trace_start FROM fr"
        for d in dimensions)
    sql = f"""
WITH fr AS MATERIALIZED (
    SELECT tf.root_trace_id, tf.root_span_id, tf.trace_id, tf.trace_start, tf.recovered, tf.trace_failed,
           tf.tokens_burned, tf.cost_burned_usd, tf.confidence,
           t.cost_usd AS run_cost, t.input_tokens + t.output_tokens AS run_tokens, {group_cols}
    FROM trace_failures tf
    -- One primary-key lookup per failure (OFFSET 0 keeps the planner from flattening it into a
    -- hash join that reads every run of the window: 1M spans/30 days, ~80 ms -> ~40 ms).
    CROSS JOIN LATERAL (
        SELECT cost_usd, input_tokens, output_tokens, service_name, services, agents, models FROM traces r
        WHERE r.project_id = tf.project_id AND r.trace_id = tf.trace_id OFFSET 0
    ) t
    WHERE tf.project_id = :project_id AND tf.trace_start >= :since AND tf.trace_start < :until{run_where}{root_where}
),
fd AS MATERIALIZED (
    SELECT DISTINCT ON (root_trace_id, root_span_id) *
    FROM fr ORDER BY root_trace_id, root_span_id, (trace_id = root_trace_id) DESC, trace_id
),
roots AS (
    {per_root}
),
tb AS (
    SELECT dim, grp, LEAST(floor(extract(epoch FROM trace_start - :since) / :bucket_s)::int, :buckets - 1) AS b,
           count(*) AS n
    FROM roots GROUP BY 1, 2, 3
),
trend AS (
    SELECT dim, grp, array_agg(b ORDER BY b) AS bs, array_agg(n ORDER BY b) AS ns FROM tb GROUP BY 1, 2
),
d AS (
    SELECT dim, grp, count(*) AS failures, count(*) FILTER (WHERE recovered) AS recovered,
           min(trace_start) AS first_seen, max(trace_start) AS last_seen,
           COALESCE(sum(tokens_burned), 0) AS tokens_burned, COALESCE(sum(cost_burned_usd), 0) AS cost_burned,
           COALESCE(sum(cost_burned_usd) FILTER (WHERE recovered), 0) AS cost_recovered,
           sum(confidence) AS confidence_sum
    FROM roots GROUP BY dim, grp
),
per_run AS (
    SELECT dim, grp, trace_id, bool_or(trace_failed) AS failed, max(run_cost) AS run_cost,
           max(run_tokens) AS run_tokens, max(trace_start) AS trace_start
    FROM ({per_row}) y GROUP BY dim, grp, trace_id
),
r AS (
    SELECT dim, grp, count(*) AS runs, count(*) FILTER (WHERE failed) AS failed_runs,
           COALESCE(sum(run_cost) FILTER (WHERE failed), 0) AS failed_cost,
           COALESCE(sum(run_tokens) FILTER (WHERE failed), 0) AS failed_tokens,
           (array_agg(trace_id ORDER BY trace_start DESC, trace_id))[1:{EXAMPLES}] AS examples
    FROM per_run GROUP BY dim, grp
)
SELECT * FROM (
    SELECT d.dim, d.grp, d.failures, d.recovered, d.first_seen, d.last_seen, d.tokens_burned, d.cost_burned,
           d.cost_recovered, d.confidence_sum, r.runs, r.failed_runs, r.failed_cost, r.failed_tokens, r.examples,
           trend.bs, trend.ns,
           row_number() OVER (PARTITION BY d.dim ORDER BY d.failures DESC, r.failed_runs DESC, d.grp) AS rank
    FROM d JOIN r ON r.dim = d.dim AND r.grp = d.grp JOIN trend ON trend.dim = d.dim AND trend.grp = d.grp
) ranked
WHERE rank <= :limit
ORDER BY dim, rank"""
    rows = session.execute(text(sql), {
        **params, "project_id": project_id, "since": since, "until": until, "limit": min(limit, MAX_GROUPS),
        "buckets": buckets, "bucket_s": (until - since).total_seconds() / buckets,
    }).all()
    groups: dict[str, list[FailureGroup]] = {d: [] for d in dimensions}
    for row in rows:
        groups[row.dim].append(FailureGroup(
            key=row.grp or None, failures=row.failures, recovered=row.recovered, runs=row.runs,
            failed_runs=row.failed_runs,
            share_of_failed_runs=round(row.failed_runs / total_failed, 4) if total_failed else None,
            first_seen=row.first_seen, last_seen=row.last_seen,
            example_traces=[bytes(t) for t in row.examples or []], tokens_burned=int(row.tokens_burned),
            cost_burned_usd=row.cost_burned, cost_burned_recovered_usd=row.cost_recovered,
            failed_runs_cost_usd=row.failed_cost, failed_runs_tokens=int(row.failed_tokens),
            mean_confidence=mean_confidence(row.confidence_sum, row.failures), trend=_dense(row.bs, row.ns, buckets),
        ))
    return groups


def _dense(indexes: list[int], counts: list[int], size: int) -> list[int]:
    trend = [0] * size
    for i, n in zip(indexes, counts):
        trend[i] += int(n)
    return trend


def run_count(session: Session, project_id: int, *, since: datetime, until: datetime) -> int:
    """Runs started in the window (no filter): an index-only scan of ix_traces_project_start."""
    return session.execute(text("SELECT count(*) FROM traces t WHERE " + _IN_WINDOW),
                           {"project_id": project_id, "since": since, "until": until}).scalar_one()


def pending_run_count(session: Session, project_id: int, *, since: datetime, until: datetime) -> int:
    """Runs started in the window whose attribution is not up to date: read through the partial
    index of such runs (few), not the window's runs (all of them)."""
    return session.execute(text("SELECT count(*) FROM traces t WHERE " + _IN_WINDOW + " AND " + _PENDING),
                           {"project_id": project_id, "since": since, "until": until}).scalar_one()


def failure_totals(
    session: Session, project_id: int, *, since: datetime, until: datetime, service: str | None = None,
    agent: str | None = None, model: str | None = None, provider: str | None = None,
) -> FailureTotals:
    run_where, root_where, params = _scope(service, agent, model, provider)
    sql = _ctes("NULL", run_where, root_where) + _RUNS.format(run_where=run_where) + """
SELECT
    (SELECT count(*) FROM runs) AS runs,
    (SELECT count(*) FROM runs WHERE pending) AS pending,
    (SELECT count(*) FROM per_run) AS runs_with_failures,
    (SELECT count(*) FROM per_run WHERE failed) AS failed_runs,
    (SELECT COALESCE(sum(run_cost), 0) FROM per_run WHERE failed) AS failed_cost,
    (SELECT COALESCE(sum(run_tokens), 0) FROM per_run WHERE failed) AS failed_tokens,
    (SELECT count(*) FROM fd) AS failures,
    (SELECT count(*) FROM fd WHERE recovered) AS recovered,
    (SELECT COALESCE(sum(tokens_burned), 0) FROM fd) AS tokens_burned,
    (SELECT COALESCE(sum(cost_burned_usd), 0) FROM fd) AS cost_burned,
    (SELECT COALESCE(sum(cost_burned_usd), 0) FROM fd WHERE recovered) AS cost_recovered
"""
    row = session.execute(text(sql), {**params, "project_id": project_id, "since": since, "until": until}).one()
    return FailureTotals(
        runs=row.runs, runs_with_failures=row.runs_with_failures, failed_runs=row.failed_runs,
        failures=row.failures, recovered=row.recovered, tokens_burned=int(row.tokens_burned),
        cost_burned_usd=row.cost_burned, cost_burned_recovered_usd=row.cost_recovered,
        failed_runs_cost_usd=row.failed_cost, failed_runs_tokens=int(row.failed_tokens),
        pending_traces=row.pending,
    )
