"""The Overview: the project's health for a window at a glance (docs/fleet.md).

Built from the rollups and `trace_failures` (the scores section aside), so 30 days answer as fast
as 15 minutes: runs by outcome from `traces` + `trace_failures` (db.queries.overview), root
causes from `trace_failures`, providers, anomalies and costs from the hourly usage rollups
with the Providers and Costs pages' own queries (provider series without latency
histograms; anomalies of the last 24 hours only). Scores come from `scores`, joined to the scored
spans (db.queries.scores, db.queries.score_steps).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from core.window import Window, parse_window
from db.queries.failures import pending_run_count
from db.queries.fleet import MAX_WINDOW, Filters
from db.queries.overview import recent_failed_runs, runs_by_outcome
from db.queries.health import Point as HealthPoint, fetch_series, served_model_changes
from pages.fleet import anomaly_data, cost_groups, fleet_filters
from pages.fleet_schemas import ServedModelChangeOut, Window as FleetWindow
from pages.failures import totals_and_groups
from pages.forensics_schemas import failure_group_out
from pages.overview_schemas import FailedRunOut, ModelInTrouble, OverviewOut, OverviewWindow, RunPoint, RunTotals
from pages.params import InvalidQuery
from pages.schemas import money
from pages.scores import overview_scores

STEPS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1),
         timedelta(hours=6), timedelta(days=1))
MAX_BUCKETS = 48
ROOT_CAUSE_DIMENSIONS = ("error_class",)  # one dimension: each more costs ~60 ms over 30 days
TOP = 5
ANOMALY_SPAN = timedelta(hours=24)


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


def _models_in_trouble(session: Session, fleet: Filters) -> list[ModelInTrouble]:
    """Models with errors, highest error rate first, from the provider-health series without
    their latency histograms (the Overview shows no latency)."""
    bucket = "hour" if fleet.until - fleet.since <= timedelta(hours=48) else "day"
    out = []
    for (provider, model), points in fetch_series(session, fleet, bucket, histograms=False).items():
        total = HealthPoint()
        for p in points.values():
            total.add(p)
        if not total.errors:
            continue
        classes = sorted(total.errors_by_class.items(), key=lambda kv: (-kv[1], kv[0]))
        out.append(ModelInTrouble(
            provider=provider, model=model, calls=total.calls, errors=total.errors,
            error_rate=_rate(total.errors, total.calls), top_error_class=classes[0][0] if classes else None,
            retry_rate=_rate(total.retries, total.calls), fallback_rate=_rate(total.fallbacks, total.calls),
            error_rates=[_rate(points[t].errors, points[t].calls) for t in sorted(points)],
        ))
    out.sort(key=lambda m: (-m.error_rate, -m.errors, m.provider, m.model))
    return out[:TOP]


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
    failure_totals, groups = totals_and_groups(session, project_id, list(ROOT_CAUSE_DIMENSIONS), since=window.since,
                                               until=window.until, limit=TOP, filters={}, failed_runs=failed,
                                               runs=runs)
    pending = (failure_totals.pending_traces if failure_totals is not None
               else pending_run_count(session, project_id, since=window.since, until=window.until))
    totals = RunTotals(runs=runs, failed_runs=failed, recovered_runs=recovered,
                       ok_runs=max(0, runs - failed - recovered), failure_rate=_rate(failed, runs),
                       cost_usd=money(cost), tokens=tokens, pending_runs=pending)

    fleet = fleet_filters(project_id, window.since, window.until)  # widened to whole hours
    trouble = _models_in_trouble(session, fleet)
    # Anomalies of the window's last day only: judging 30 days of hours would cost seconds.
    recent = replace(fleet, since=max(fleet.since, fleet.until - ANOMALY_SPAN))
    anomalies = anomaly_data(session, recent, "hour", None).anomalies
    changes = served_model_changes(session, fleet)
    agents, agents_total = cost_groups(session, fleet, "agent", TOP)
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
        fleet_window=FleetWindow(since=fleet.since, until=fleet.until),
        models_in_trouble=trouble,
        anomalies_since=recent.since,
        anomalies=sorted(anomalies, key=lambda a: a.time, reverse=True)[:10],
        served_model_changes=[ServedModelChangeOut(
            provider=c.provider, request_model=c.request_model, previous_models=c.previous, new_model=c.new_model,
            first_seen=c.first_seen, calls_since=c.calls_after,
        ) for c in sorted(changes, key=lambda c: c.first_seen, reverse=True)[:10]],
        expensive_agents=[g for g in agents if g.cost_usd is not None][:TOP],
        total_cost_usd=agents_total.cost_usd,
        scores=overview_scores(session, project_id, since=window.since, until=window.until),
    )
