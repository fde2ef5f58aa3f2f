"""failure_rollups: /api/failures from an hourly rollup of trace_failures, kept exact by the attributor.

Written: `apply_traces(session, project_id, trace_ids, sign)` journals (+1) or takes back (-1) what
runs' trace_failures rows contribute; the attributor takes back a run's old rows before it
deletes them and adds the new ones after it inserts them (db/queries/forensics.py), so a
re-attribution leaves the rollup equal to a rebuild from trace_failures. The journal
(failure_rollup_deltas) is insert-only: attributors of several collectors never wait on each other
for the rollup rows they share (an hour's 'total' row); `fold` moves it into failure_rollups
after each batch, and readers add what is not folded yet.

Read (`failures_from_rollups`): when `serves(...)` says the answer is exact from hours — no filter
needing a run's services/agents/models (the `traces` arrays) or a provider (which would split a
run's count per provider), a window on whole hours whose trend slices are whole hours too — the
groups and totals are summed from the rollup; the rest is read per window from trace_failures,
bounded by the rollup: root causes seen only from a linked run (partial index
ix_trace_failures_linked), and each shown group's exact first/last seen and example runs from
the few hours the rollup points at. Otherwise db/queries/failures.py answers from trace_failures.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.queries.failures import (
    DIMENSIONS, EXAMPLES, MAX_GROUPS, TREND_BUCKETS, FailureGroup, FailureTotals, mean_confidence, pending_run_count,
    run_count,
)

TOTAL = "total"  # the rollup's dimension holding the totals, in one group ''
HOUR = timedelta(hours=1)
_INTEGERS = ("failures", "recovered", "tokens_burned", "runs", "failed_runs", "failed_runs_tokens")
_SUMS = ("failures", "recovered", "tokens_burned", "cost_burned_usd", "cost_recovered_usd", "confidence_sum",
         "runs", "failed_runs", "failed_runs_cost_usd", "failed_runs_tokens")


def serves(since: datetime, until: datetime, *, buckets: int = TREND_BUCKETS, **filters) -> bool:
    """Whether failure_rollups answers /api/failures exactly for this window and these filters
    (the one rule: every reader asks it)."""
    if any(filters.values()):
        return False
    span_s = (until - since).total_seconds()
    on_hour = all(t.minute == 0 and t.second == 0 and t.microsecond == 0 for t in (since, until))
    return on_hour and span_s > 0 and span_s % (3600 * buckets) == 0


def _groups_sql() -> str:
    # Dimension expressions come from DIMENSIONS (the old path's), so both paths group alike.
    values = ", ".join(f"('{d}', COALESCE({expr}, ''))" for d, expr in DIMENSIONS.items())
    return f"{values}, ('{TOTAL}', '')"


def contribution_sql(where: str) -> str:
    """What the trace_failures rows matching `where` (alias tf) add to failure_rollups, per
    (project_id, hour, dim, grp). A run counts once per group; a root cause only in its own run."""
    return f"""
SELECT project_id, hour, dim, grp,
       sum(failures) AS failures, sum(recovered) AS recovered, sum(tokens_burned) AS tokens_burned,
       sum(cost_burned_usd) AS cost_burned_usd, sum(cost_recovered_usd) AS cost_recovered_usd,
       sum(confidence_sum) AS confidence_sum, count(*) AS runs, count(*) FILTER (WHERE failed) AS failed_runs,
       COALESCE(sum(run_cost) FILTER (WHERE failed), 0) AS failed_runs_cost_usd,
       COALESCE(sum(run_tokens) FILTER (WHERE failed), 0) AS failed_runs_tokens
FROM (
    SELECT tf.project_id, date_trunc('hour', tf.trace_start, 'UTC') AS hour, g.dim, g.grp, tf.trace_id,
           count(*) FILTER (WHERE tf.root_trace_id = tf.trace_id) AS failures,
           count(*) FILTER (WHERE tf.root_trace_id = tf.trace_id AND tf.recovered) AS recovered,
           COALESCE(sum(tf.tokens_burned) FILTER (WHERE tf.root_trace_id = tf.trace_id), 0) AS tokens_burned,
           COALESCE(sum(tf.cost_burned_usd) FILTER (WHERE tf.root_trace_id = tf.trace_id), 0) AS cost_burned_usd,
           COALESCE(sum(tf.cost_burned_usd) FILTER (WHERE tf.root_trace_id = tf.trace_id AND tf.recovered), 0)
               AS cost_recovered_usd,
           COALESCE(sum(tf.confidence) FILTER (WHERE tf.root_trace_id = tf.trace_id), 0) AS confidence_sum,
           bool_or(tf.trace_failed) AS failed, max(tf.rolled_run_cost_usd) AS run_cost,
           max(tf.rolled_run_tokens) AS run_tokens
    FROM trace_failures tf CROSS JOIN LATERAL (VALUES {_groups_sql()}) AS g(dim, grp)
    WHERE {where}
    GROUP BY 1, 2, 3, 4, 5
) per_run
GROUP BY 1, 2, 3, 4"""


_RUNS_CONTRIBUTION = text(contribution_sql("tf.project_id = :p AND tf.trace_id = ANY(CAST(:ts AS bytea[]))"))
_COLUMNS = ", ".join(_SUMS)
_JOURNAL = text(f"""
INSERT INTO failure_rollup_deltas (project_id, id, hour, dim, grp, {_COLUMNS})
VALUES (:project_id, gen_random_uuid(), :hour, :dim, :grp, {", ".join(":" + c for c in _SUMS)})""")


def apply_traces(session: Session, project_id: int, trace_ids: list[bytes], sign: int) -> None:
    """Add (sign=1) or subtract (sign=-1) these runs' current trace_failures rows, as rows of the
    insert-only journal (no row another attributor could hold). Never commits."""
    if not trace_ids:
        return
    rows = session.execute(_RUNS_CONTRIBUTION, {"p": project_id, "ts": trace_ids}).mappings().all()
    if rows:
        session.execute(_JOURNAL, [{**row, **{c: row[c] * sign for c in _SUMS}} for row in rows])


# Folds a project's journal into failure_rollups in one statement (rows inserted meanwhile by
# uncommitted attributions are not seen, so not deleted: they wait for the next fold), then
# removes the groups left with no run. A router query on Citus (both tables by project_id).
_FOLD = text(f"""
WITH moved AS (
    DELETE FROM failure_rollup_deltas WHERE project_id = :p RETURNING project_id, hour, dim, grp, {_COLUMNS}
)
INSERT INTO failure_rollups (project_id, hour, dim, grp, {_COLUMNS})
SELECT project_id, hour, dim, grp, {", ".join(f"sum({c})" for c in _SUMS)} FROM moved
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
ON CONFLICT (project_id, hour, dim, grp) DO UPDATE SET
{", ".join(f"{c} = failure_rollups.{c} + excluded.{c}" for c in _SUMS)}
RETURNING hour, runs""")
_EMPTY = text("DELETE FROM failure_rollups WHERE project_id = :p AND hour = ANY(:hours) AND runs = 0")
_PROJECTS = text("SELECT DISTINCT project_id FROM failure_rollup_deltas")


def fold(session: Session) -> int:
    """Fold every project's journal into failure_rollups; returns the rollup rows touched. Run in
    its own short transaction (the attributor's, after each batch): two folds of one project
    serialize on its rollup rows, in key order. Never commits."""
    touched = 0
    for project_id in session.execute(_PROJECTS).scalars().all():
        rows = session.execute(_FOLD, {"p": project_id}).all()
        empty = sorted({r.hour for r in rows if r.runs == 0})
        if empty:
            session.execute(_EMPTY, {"p": project_id, "hours": empty})
        touched += len(rows)
    return touched


def _summed(column: str) -> str:
    # sum(bigint) is numeric: cast back, so counts stay ints and money stays Decimal.
    return f"sum({column})::bigint AS {column}" if column in _INTEGERS else f"sum({column}) AS {column}"


# Summed per group in SQL (a month of hours is ~11k rows at 1M spans: summing them in Python
# cost more than the old query), with each group's failures per trend slice and the hours
# holding its first and last failure of its own run.
# The rollup and its journal not folded yet, netted per hour and group.
_HOURLY = f"""
hourly AS (
    SELECT dim, grp, hour, {", ".join(_summed(c) for c in _SUMS)} FROM (
        SELECT dim, grp, hour, {_COLUMNS} FROM failure_rollups
        WHERE project_id = :p AND hour >= :since AND hour < :until AND dim = ANY(CAST(:dims AS text[]))
        UNION ALL
        SELECT dim, grp, hour, {_COLUMNS} FROM failure_rollup_deltas
        WHERE project_id = :p AND hour >= :since AND hour < :until AND dim = ANY(CAST(:dims AS text[]))
    ) both_ GROUP BY 1, 2, 3 HAVING sum(runs) <> 0
)"""
_GROUPS = text(f"""
WITH {_HOURLY},
per_slice AS (
    SELECT dim, grp, LEAST(floor(extract(epoch FROM hour - :since) / :bucket_s)::int, :buckets - 1) AS b,
           {", ".join(_summed(c) for c in _SUMS)},
           min(hour) FILTER (WHERE failures > 0) AS first_h, max(hour) FILTER (WHERE failures > 0) AS last_h
    FROM hourly GROUP BY 1, 2, 3
)
SELECT dim, grp, {", ".join(_summed(c) for c in _SUMS)}, min(first_h) AS first_h, max(last_h) AS last_h,
       array_agg(b ORDER BY b) AS bs, array_agg(failures ORDER BY b) AS ns
FROM per_slice GROUP BY 1, 2""")
# A shown group's latest hours until they hold EXAMPLES runs (where its example runs are).
_LATEST_HOURS = text(f"""
WITH {_HOURLY}
SELECT DISTINCT hour FROM (
    SELECT hour, runs, sum(runs) OVER (PARTITION BY fr.dim, fr.grp ORDER BY hour DESC) AS upto
    FROM hourly fr
    JOIN unnest(CAST(:shown_dims AS text[]), CAST(:grps AS text[])) AS g(dim, grp) ON g.dim = fr.dim AND g.grp = fr.grp
) x WHERE upto - runs < :examples""")


_GROUP_COLS = ", ".join(f"COALESCE({DIMENSIONS[d]}, '') AS g_{d}" for d in DIMENSIONS)


def _linked_sql() -> str:
    return f"""
SELECT tf.trace_id, tf.root_trace_id, tf.root_span_id, tf.trace_start, tf.recovered, tf.tokens_burned,
       tf.cost_burned_usd, tf.confidence, {_GROUP_COLS}
FROM trace_failures tf
WHERE tf.project_id = :p AND tf.trace_start >= :since AND tf.trace_start < :until AND tf.root_trace_id <> tf.trace_id"""


_LINKED = text(_linked_sql())
# Which of those root causes their own run holds in the window (then that row already counts).
_OWNED = text("""
SELECT root_trace_id, root_span_id FROM trace_failures
WHERE project_id = :p AND trace_id = ANY(:roots) AND root_trace_id = trace_id
  AND trace_start >= :since AND trace_start < :until""")


def _in_hours(session: Session, project_id: int, hours: list[datetime]) -> list:
    """trace_failures rows of these hours: one index range each (an OR of ranges, not a join
    with unnest(), which Citus would not push down to the shards)."""
    ranges = " OR ".join(f"(tf.trace_start >= :h{i} AND tf.trace_start < :e{i})" for i in range(len(hours)))
    params = {"p": project_id, **{f"h{i}": h for i, h in enumerate(hours)},
              **{f"e{i}": h + HOUR for i, h in enumerate(hours)}}
    return session.execute(text(f"""
        SELECT tf.trace_id, tf.root_trace_id, tf.trace_start, {_GROUP_COLS} FROM trace_failures tf
        WHERE tf.project_id = :p AND ({ranges})"""), params).all()


def _linked_failures(session: Session, project_id: int, since: datetime, until: datetime) -> list:
    """Root causes of the window seen only from runs other than their own: one row each (the
    lowest run id, as db/queries/failures.py's DISTINCT ON), unless their own run's row is in
    the window (the rollup counts that one)."""
    params = {"p": project_id, "since": since, "until": until}
    rows = session.execute(_LINKED, params).all()
    if not rows:
        return []
    owned = {(bytes(r.root_trace_id), bytes(r.root_span_id)) for r in session.execute(
        _OWNED, {**params, "roots": sorted({bytes(r.root_trace_id) for r in rows})})}
    first: dict[tuple[bytes, bytes], object] = {}
    for row in sorted(rows, key=lambda r: bytes(r.trace_id)):
        key = (bytes(row.root_trace_id), bytes(row.root_span_id))
        if key not in owned and key not in first:
            first[key] = row
    return list(first.values())


class _Group:
    __slots__ = ("sums", "trend", "first_h", "last_h")

    def __init__(self, buckets: int, row=None):
        self.sums: dict[str, object] = {c: getattr(row, c) if row is not None else 0 for c in _SUMS}
        self.trend = [0] * buckets
        self.first_h = row.first_h if row is not None else None
        self.last_h = row.last_h if row is not None else None
        if row is not None:
            for b, n in zip(row.bs, row.ns):
                self.trend[b] += int(n)


def failures_from_rollups(
    session: Session, project_id: int, dimensions: list[str], *, since: datetime, until: datetime,
    limit: int = 20, buckets: int = TREND_BUCKETS, runs: int | None = None,
) -> tuple[FailureTotals, dict[str, list[FailureGroup]]]:
    """The totals and the top groups of each dimension, equal to failure_totals and
    failure_groups_by of db/queries/failures.py on a window `serves()` accepts. A caller that
    counted the window's runs itself passes `runs`."""
    unknown = [d for d in dimensions if d not in DIMENSIONS]
    if unknown or not dimensions:
        raise ValueError(f"dimension must be one of {', '.join(DIMENSIONS)}")
    bucket_s = (until - since).total_seconds() / buckets
    window = {"p": project_id, "since": since, "until": until}
    wanted = [*dimensions, TOTAL]
    acc: dict[tuple[str, str], _Group] = {
        (row.dim, row.grp): _Group(buckets, row) for row in session.execute(
            _GROUPS, {**window, "dims": wanted, "bucket_s": bucket_s, "buckets": buckets})}
    linked = _linked_failures(session, project_id, since, until)
    for row in linked:
        for dim in wanted:
            grp = "" if dim == TOTAL else getattr(row, f"g_{dim}")
            a = acc.get((dim, grp)) or acc.setdefault((dim, grp), _Group(buckets))
            a.sums["failures"] += 1
            a.sums["recovered"] += int(row.recovered)
            a.sums["tokens_burned"] += row.tokens_burned or 0
            a.sums["cost_burned_usd"] += row.cost_burned_usd or 0
            if row.recovered:
                a.sums["cost_recovered_usd"] += row.cost_burned_usd or 0
            a.sums["confidence_sum"] += row.confidence
            a.trend[min(int((row.trace_start - since).total_seconds() // bucket_s), buckets - 1)] += 1

    if runs is None:
        runs = run_count(session, project_id, since=since, until=until)
    pending = pending_run_count(session, project_id, since=since, until=until)
    t = acc.get((TOTAL, ""), _Group(buckets)).sums
    totals = FailureTotals(
        runs=runs, runs_with_failures=int(t["runs"]), failed_runs=int(t["failed_runs"]),
        failures=int(t["failures"]), recovered=int(t["recovered"]), tokens_burned=int(t["tokens_burned"]),
        cost_burned_usd=Decimal(t["cost_burned_usd"]), cost_burned_recovered_usd=Decimal(t["cost_recovered_usd"]),
        failed_runs_cost_usd=Decimal(t["failed_runs_cost_usd"]), failed_runs_tokens=int(t["failed_runs_tokens"]),
        pending_traces=pending)

    top: dict[str, list[tuple[str, _Group]]] = {}
    for dim in dimensions:
        found = [(grp, a) for (d, grp), a in acc.items() if d == dim and a.sums["failures"] > 0]
        found.sort(key=lambda ga: (-ga[1].sums["failures"], -ga[1].sums["failed_runs"], ga[0]))
        top[dim] = found[:min(limit, MAX_GROUPS)]
    seen, examples = _seen_and_examples(session, window, top, linked)
    total_failed = totals.failed_runs
    groups: dict[str, list[FailureGroup]] = {}
    for dim, found in top.items():
        groups[dim] = []
        for grp, a in found:
            s = a.sums
            first_seen, last_seen = seen[(dim, grp)]
            groups[dim].append(FailureGroup(
                key=grp or None, failures=int(s["failures"]), recovered=int(s["recovered"]), runs=int(s["runs"]),
                failed_runs=int(s["failed_runs"]),
                share_of_failed_runs=round(s["failed_runs"] / total_failed, 4) if total_failed else None,
                first_seen=first_seen, last_seen=last_seen, example_traces=examples[(dim, grp)],
                tokens_burned=int(s["tokens_burned"]), cost_burned_usd=Decimal(s["cost_burned_usd"]),
                cost_burned_recovered_usd=Decimal(s["cost_recovered_usd"]),
                failed_runs_cost_usd=Decimal(s["failed_runs_cost_usd"]),
                failed_runs_tokens=int(s["failed_runs_tokens"]),
                mean_confidence=mean_confidence(s["confidence_sum"], s["failures"]), trend=a.trend))
    return totals, groups


def _seen_and_examples(session: Session, window: dict, top: dict[str, list[tuple[str, _Group]]],
                       linked: list) -> tuple[dict, dict]:
    """Each shown group's first and last failure and its latest runs, exact, from the hours
    that hold them: the group's first and last hour with a failure of its own run, and its
    latest hours until they hold EXAMPLES runs."""
    shown = [(dim, grp) for dim, found in top.items() for grp, _ in found]
    if not shown:
        return {}, {}
    hours = {h for found in top.values() for _, a in found for h in (a.first_h, a.last_h) if h is not None}
    hours.update(session.execute(_LATEST_HOURS, {
        **window, "dims": sorted(top), "shown_dims": [d for d, _ in shown], "grps": [g for _, g in shown],
        "examples": EXAMPLES}).scalars())
    by_group: dict[tuple[str, str], list] = defaultdict(list)
    for r in _in_hours(session, window["p"], sorted(hours)):
        for dim in top:
            by_group[(dim, getattr(r, f"g_{dim}"))].append(r)
    seen, examples = {}, {}
    for dim, grp in shown:
        mine = by_group.get((dim, grp), [])
        times = [r.trace_start for r in mine if bytes(r.root_trace_id) == bytes(r.trace_id)]
        times += [r.trace_start for r in linked if getattr(r, f"g_{dim}") == grp]
        seen[(dim, grp)] = (min(times), max(times))
        latest: dict[bytes, datetime] = {}
        for r in mine:
            latest[bytes(r.trace_id)] = r.trace_start
        # Latest first, then by run id (as the old query's ORDER BY): two sorts, as a float
        # timestamp cannot tell microseconds apart at today's epoch.
        ordered = sorted(sorted(latest.items()), key=lambda kv: kv[1], reverse=True)
        examples[(dim, grp)] = [tid for tid, _ in ordered[:EXAMPLES]]
    return seen, examples
