"""The Overview: the project's health for a window at a glance (docs/fleet.md).

Built from the rollups and `trace_failures` only (never `spans`), so 30 days answer as fast
as 15 minutes: runs by outcome from `traces` + `trace_failures` (db.queries.overview), root
causes from `trace_failures`, providers, anomalies and costs from the hourly usage rollups
through the Providers and Costs pages' own builders.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from core.window import Window, parse_window
from db.queries.failures import failure_groups_by
from db.queries.fleet import MAX_WINDOW
from db.queries.overview import recent_failed_runs, runs_by_outcome
from pages.fleet import anomaly_data, cost_data, fleet_filters, health_data
from pages.forensics_schemas import failure_group_out
from pages.params import InvalidQuery
from pages.overview_schemas import FailedRunOut, ModelInTrouble, OverviewOut, OverviewWindow, RunPoint, RunTotals
from pages.schemas import money

STEPS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1),
         timedelta(hours=6), timedelta(days=1))
MAX_BUCKETS = 48
ROOT_CAUSE_DIMENSIONS = ("error_class", "step")
TOP = 5


def step_for(span: timedelta) -> timedelta:
    """The finest bucket giving at most MAX_BUCKETS points (15 m -> 1 min, 24 h -> 1 h, 30 d -> 1 day)."""
    return next((s for s in STEPS if span / s <= MAX_BUCKETS), STEPS[-1])


def overview_window(range_: str, since: str, until: str, now: datetime) -> tuple[Window, list[str]]:
    """The window of the page and of the API (one rule): quick range or custom, at most MAX_WINDOW."""
    return parse_window(range_, since, until, now, max_span=MAX_WINDOW)


def window_from_query(range_: str | None, since: datetime | None, until: datetime | None,
                      now: datetime) -> Window:
    """The same rule for the JSON API's typed parameters; raises InvalidQuery."""
    window, errors = overview_window(range_ or "", since.isoformat() if since else "",
                                     until.isoformat() if until else "", now)
    if errors:
        raise InvalidQuery("since" if since or until else "range", errors[0])
    return window


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def overview_data(session: Session, project_id: int, window: Window) -> OverviewOut:
    step = step_for(window.span)
    found = {b.time: b for b in runs_by_outcome(session, project_id, since=window.since, until=window.until,
                                                step=step)}
    series, runs, failed, recovered, tokens, cost = [], 0, 0, 0, 0, Decimal(0)
    t = window.since
    while t < window.until:
        b = found.get(t)
        n, f, r = (b.runs, b.failed_runs, b.recovered_runs) if b else (0, 0, 0)
        c, k = (b.cost_usd, b.tokens) if b else (Decimal(0), 0)
        series.append(RunPoint(time=t, runs=n, failed_runs=f, recovered_runs=r, failure_rate=_rate(f, n),
                               cost_usd=money(c), tokens=k))
        runs, failed, recovered, tokens, cost = runs + n, failed + f, recovered + r, tokens + k, cost + c
        t += step
    totals = RunTotals(runs=runs, failed_runs=failed, recovered_runs=recovered,
                       ok_runs=max(0, runs - failed - recovered), failure_rate=_rate(failed, runs),
                       cost_usd=money(cost), tokens=tokens)

    groups = failure_groups_by(session, project_id, list(ROOT_CAUSE_DIMENSIONS), since=window.since,
                               until=window.until, limit=TOP, total_failed_runs=failed)

    fleet = fleet_filters(project_id, window.since, window.until)  # widened to whole hours
    health = health_data(session, fleet, None)
    trouble = sorted((m for m in health.models if m.errors), key=lambda m: (-m.error_rate, -m.errors, m.provider, m.model))
    anomalies = anomaly_data(session, fleet, "hour", None).anomalies
    agents = cost_data(session, fleet, "agent", TOP)
    return OverviewOut(
        window=OverviewWindow(since=window.since, until=window.until, range=window.range,
                              step_seconds=int(step.total_seconds())),
        totals=totals, series=series,
        recent_failed_runs=[FailedRunOut(
            trace_id=r.trace_id.hex(), started=r.started, root_name=r.root_name, service=r.service,
            error_class=r.error_class, span_name=r.span_name, provider=r.provider, model=r.model,
            root_causes=r.root_causes,
        ) for r in recent_failed_runs(session, project_id, since=window.since, until=window.until)],
        root_causes={d: [failure_group_out(g) for g in groups[d]] for d in ROOT_CAUSE_DIMENSIONS},
        fleet_window=health.window,
        models_in_trouble=[ModelInTrouble(
            provider=m.provider, model=m.model, calls=m.calls, errors=m.errors, error_rate=m.error_rate,
            top_error_class=m.errors_by_class[0].error_class if m.errors_by_class else None,
            retry_rate=m.retry_rate, fallback_rate=m.fallback_rate,
            error_rates=[p.error_rate for p in m.series],
        ) for m in trouble[:TOP]],
        anomalies=sorted(anomalies, key=lambda a: a.time, reverse=True)[:10],
        served_model_changes=sorted(health.served_model_changes, key=lambda c: c.first_seen, reverse=True)[:10],
        expensive_agents=[g for g in agents.groups if g.cost_usd is not None][:TOP],
        total_cost_usd=agents.total.cost_usd,
    )
