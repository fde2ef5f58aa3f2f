"""Failures across traces: the data of the Failures page and of /api/failures (docs/forensics.md)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy.orm import Session

from core.window import DEFAULT_RANGE, quick_bounds
from db.queries import failure_rollups
from db.queries.failures import (
    DIMENSIONS, TREND_BUCKETS, FailureGroup, FailureTotals, failure_groups_by, failure_totals,
)
from db.queries.fleet import MAX_WINDOW
from pages.forensics_schemas import FailuresOut, failure_group_out, failure_totals_out
from pages.params import InvalidQuery

DEFAULT_WINDOW = timedelta(days=1)


def totals_and_groups(
    session: Session, project_id: int, dims: list[str], *, since: datetime, until: datetime, limit: int,
    filters: dict, failed_runs: int | None = None, runs: int | None = None,
) -> tuple[FailureTotals | None, dict[str, list[FailureGroup]]]:
    """The window's failure totals and the top groups of each dimension: from failure_rollups when
    the answer is exact from whole hours (failure_rollups.serves), else from trace_failures.
    A caller that counted the window's runs passes `runs` (used on the rollup path, which then
    does not count them again). A caller that counted its failed runs passes `failed_runs` (the
    groups' share of them): on the trace_failures path the totals are then not read, and None is
    returned for them."""
    if failure_rollups.serves(since, until, **filters):
        return failure_rollups.failures_from_rollups(session, project_id, dims, since=since, until=until,
                                                     limit=limit, runs=runs)
    totals = None
    if failed_runs is None:
        totals = failure_totals(session, project_id, since=since, until=until, **filters)
        failed_runs = totals.failed_runs
    return totals, failure_groups_by(session, project_id, dims, since=since, until=until, limit=limit,
                                     total_failed_runs=failed_runs, **filters)


def failures_data(session: Session, project_id: int, *, since: datetime | None, until: datetime | None,
                  group_by: str | None = None, limit: int = 20, service: str | None = None,
                  agent: str | None = None, model: str | None = None, provider: str | None = None) -> FailuresOut:
    """Root causes grouped by each dimension (or only `group_by`), with totals. Raises InvalidQuery."""
    if since is None and until is None:
        # The page's default window (ending with the hour: served from failure_rollups).
        since, until = quick_bounds(DEFAULT_RANGE, datetime.now(timezone.utc))
    until = until or datetime.now(timezone.utc)
    since = since or until - DEFAULT_WINDOW
    if since >= until:
        raise InvalidQuery("until", "until must be later than since")
    if until - since > MAX_WINDOW:
        raise InvalidQuery("since", f"the window is limited to {MAX_WINDOW.days} days")
    filters = {k: v for k, v in dict(service=service, agent=agent, model=model, provider=provider).items() if v}
    dims = [group_by] if group_by else list(DIMENSIONS)
    totals, found = totals_and_groups(session, project_id, dims, since=since, until=until, limit=limit,
                                      filters=filters)
    groups = {dim: [failure_group_out(g) for g in found[dim]] for dim in dims}
    step = (until - since) / TREND_BUCKETS
    return FailuresOut(since=since, until=until, filters=filters, totals=failure_totals_out(totals),
                       trend_starts=[since + step * i for i in range(TREND_BUCKETS)], groups=groups)

