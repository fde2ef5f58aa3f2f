"""Failures across traces: the data of the Failures page and of /api/failures (docs/forensics.md)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy.orm import Session

from db.queries import failure_rollups
from db.queries.failures import DIMENSIONS, TREND_BUCKETS, failure_groups_by, failure_totals
from db.queries.fleet import MAX_WINDOW
from pages.forensics_schemas import FailuresOut, failure_group_out, failure_totals_out
from pages.params import InvalidQuery

DEFAULT_WINDOW = timedelta(days=1)


def failures_data(session: Session, project_id: int, *, since: datetime | None, until: datetime | None,
                  group_by: str | None = None, limit: int = 20, service: str | None = None,
                  agent: str | None = None, model: str | None = None, provider: str | None = None) -> FailuresOut:
    """Root causes grouped by each dimension (or only `group_by`), with totals. Raises InvalidQuery."""
    until = until or datetime.now(timezone.utc)
    since = since or until - DEFAULT_WINDOW
    if since >= until:
        raise InvalidQuery("until", "until must be later than since")
    if until - since > MAX_WINDOW:
        raise InvalidQuery("since", f"the window is limited to {MAX_WINDOW.days} days")
    filters = {k: v for k, v in dict(service=service, agent=agent, model=model, provider=provider).items() if v}
    dims = [group_by] if group_by else list(DIMENSIONS)
    if failure_rollups.serves(since, until, **filters):
        totals, found = failure_rollups.failures_from_rollups(session, project_id, dims, since=since, until=until,
                                                              limit=limit)
    else:
        totals = failure_totals(session, project_id, since=since, until=until, **filters)
        found = failure_groups_by(session, project_id, dims, since=since, until=until, limit=limit,
                                  total_failed_runs=totals.failed_runs, **filters)
    groups = {dim: [failure_group_out(g) for g in found[dim]] for dim in dims}
    step = (until - since) / TREND_BUCKETS
    return FailuresOut(since=since, until=until, filters=filters, totals=failure_totals_out(totals),
                       trend_starts=[since + step * i for i in range(TREND_BUCKETS)], groups=groups)

