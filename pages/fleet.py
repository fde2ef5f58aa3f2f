"""Across traces, from the hourly rollups: costs, provider health, anomalies (docs/fleet.md).

The data of the Costs and Providers pages and of /api/costs, /api/health/providers and
/api/anomalies: one builder each, rendered as HTML by web/ and as JSON by api/.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from core.latency import MAX_RELATIVE_ERROR, quantile_ms, quantiles_ms
from db.queries.costs import MAX_GROUPS, CostGroup, costs
from db.queries.fleet import FilterError, Filters, align_window, exact_window
from db.queries.health import Point, find_anomalies, merged, provider_health
from pages.fleet_schemas import (
    AnomaliesOut, AnomalyOut, Baseline, CostGroupOut, CostsOut, ErrorClassCount, HealthPoint, Latency,
    ModelHealth, ProviderHealthOut, ServedModel, ServedModelChangeOut, Window,
)
from pages.params import InvalidQuery
from pages.schemas import TokenCounts, money

LATENCY_METHOD = (f"Percentiles from merged fixed log-scale histograms (4 buckets per doubling from 1 ms); "
                  f"relative error below {MAX_RELATIVE_ERROR:.1%} between 1 ms and 741 s.")
ANOMALY_METHOD = ("Robust z-score of each bucket against the median and MAD of the previous 24 buckets "
                  "with enough calls (>= 20, >= 6 of them); flagged at |z| >= 4 with a minimum change: "
                  "error rate +5 points, p95 latency +50% and +100 ms, cost per priced call +-50%.")

COST_GROUPINGS = ("model", "provider", "agent", "tool", "service", "session", "user", "day", "hour")
ANOMALY_METRICS = ("error_rate", "latency_p95_ms", "cost_per_call_usd")


def fleet_filters(project_id: int, since: datetime | None, until: datetime | None, service: str | None = None,
                  agent: str | None = None, model: str | None = None, provider: str | None = None, *,
                  exact: bool = False) -> Filters:
    """The one builder of the across-traces filters: the window aligned to the rollups' hours,
    or kept `exact` (costs, whose partial edge hours are read from spans)."""
    try:
        since, until = (exact_window if exact else align_window)(since, until)
    except ValueError as exc:
        raise InvalidQuery("until", str(exc)) from None
    return Filters(project_id, since, until, service or None, agent or None, model or None, provider or None)


def _window(f: Filters) -> Window:
    return Window(since=f.since, until=f.until, service=f.service, agent=f.agent, model=f.model, provider=f.provider)


def _key(value) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _cost_group(g: CostGroup) -> CostGroupOut:
    tokens = None
    if g.input_tokens is not None:
        tokens = TokenCounts(input=g.input_tokens, output=g.output_tokens, cache_read=g.cache_read_tokens,
                             cache_write=g.cache_write_tokens, reasoning=g.reasoning_tokens)
    return CostGroupOut(
        key=_key(g.key), calls=g.calls, errors=g.errors, unpriced_calls=g.unpriced_calls, retries=g.retries,
        fallbacks=g.fallbacks, traces=g.traces, tokens=tokens, cost_usd=money(g.cost_usd),
        cost_complete=g.unpriced_calls == 0 and g.cost_usd is not None,
        served_models=None if g.served is None else [
            ServedModel(model=m, calls=n) for m, n in sorted(g.served.items(), key=lambda kv: (-kv[1], kv[0]))],
    )


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _latency(point: Point) -> Latency:
    count = sum(point.histogram)
    return Latency(
        p50_ms=quantile_ms(point.histogram, 0.5), p90_ms=quantile_ms(point.histogram, 0.9),
        p95_ms=quantile_ms(point.histogram, 0.95), p99_ms=quantile_ms(point.histogram, 0.99),
        mean_ms=round(point.duration_ns / count / 1e6, 3) if count else None,
    )


def series_bucket(filters: Filters) -> str:
    return "hour" if (filters.until - filters.since).total_seconds() <= 48 * 3600 else "day"


def cost_data(session: Session, filters: Filters, group_by: str, limit: int) -> CostsOut:
    """The groups asked for, and the cost over time (hour or day) of the same window and filters."""
    bucket = series_bucket(filters)
    try:
        report = costs(session, filters, group_by, limit=limit)
        series = report if group_by == bucket else costs(session, filters, bucket, limit=MAX_GROUPS)
    except FilterError as exc:
        raise InvalidQuery("group_by", str(exc)) from None
    return CostsOut(window=_window(filters), group_by=group_by, source=report.source,
                    groups=[_cost_group(g) for g in report.groups], groups_total=report.groups_total,
                    total=_cost_group(report.total), series_bucket=bucket,
                    series=[_cost_group(g) for g in series.groups])



def cost_groups(session: Session, filters: Filters, group_by: str, limit: int) -> tuple[list[CostGroupOut], CostGroupOut]:
    """The groups and the total of a breakdown, without cost_data's series over time (one
    statement fewer: the Overview's most expensive agents show no series)."""
    report = costs(session, filters, group_by, limit=limit)
    return [_cost_group(g) for g in report.groups], _cost_group(report.total)


def health_data(session: Session, filters: Filters, bucket: str | None) -> ProviderHealthOut:
    bucket = bucket or ("hour" if (filters.until - filters.since).total_seconds() <= 48 * 3600 else "day")
    data = provider_health(session, filters, bucket)
    models = []
    for (prov, req_model), points in data.series.items():
        total = merged(list(points.values()))
        series = []
        for t in sorted(points):
            p = points[t]
            p50, p95, p99 = quantiles_ms(p.histogram, (0.5, 0.95, 0.99))
            series.append(HealthPoint(
                time=t, calls=p.calls, errors=p.errors, error_rate=_rate(p.errors, p.calls),
                errors_by_class=dict(sorted(p.errors_by_class.items())),
                retry_rate=_rate(p.retries, p.calls), fallback_rate=_rate(p.fallbacks, p.calls),
                p50_ms=p50, p95_ms=p95, p99_ms=p99, served_models=dict(sorted(p.served.items())),
            ))
        models.append(ModelHealth(
            provider=prov, model=req_model, calls=total.calls, errors=total.errors,
            error_rate=_rate(total.errors, total.calls),
            errors_by_class=[ErrorClassCount(error_class=c, errors=n, rate=_rate(n, total.calls))
                             for c, n in sorted(total.errors_by_class.items(), key=lambda kv: (-kv[1], kv[0]))],
            retries=total.retries, retry_rate=_rate(total.retries, total.calls),
            fallbacks=total.fallbacks, fallback_rate=_rate(total.fallbacks, total.calls),
            latency=_latency(total),
            served_models=[ServedModel(model=m, calls=n)
                           for m, n in sorted(total.served.items(), key=lambda kv: (-kv[1], kv[0]))],
            series=series,
        ))
    models.sort(key=lambda m: (-m.calls, m.provider, m.model))
    changes = [ServedModelChangeOut(provider=c.provider, request_model=c.request_model,
                                    previous_models=c.previous, new_model=c.new_model,
                                    first_seen=c.first_seen, calls_since=c.calls_after)
               for c in data.changes]
    return ProviderHealthOut(window=_window(filters), bucket=bucket, latency_method=LATENCY_METHOD,
                             models=models, served_model_changes=changes)



def anomaly_data(session: Session, filters: Filters, bucket: str, metric: str | None) -> AnomaliesOut:
    metrics = (metric,) if metric else ANOMALY_METRICS
    found = find_anomalies(session, filters, bucket, metrics=metrics)
    return AnomaliesOut(window=_window(filters), bucket=bucket, method=ANOMALY_METHOD, anomalies=[
        AnomalyOut(
            provider=f.provider, model=f.model, metric=a.metric, time=a.time, value=round(a.value, 9),
            direction=a.direction,
            baseline=Baseline(median=round(a.baseline_median, 9), mad=round(a.baseline_mad, 9),
                              points=a.baseline_points, since=a.baseline_from, until=a.baseline_to),
            z=round(a.z, 3), change=round(a.change, 9),
            relative_change=None if a.relative_change is None else round(a.relative_change, 6),
            calls=a.volume, evidence=a.evidence,
        ) for f in found for a in (f.anomaly,)
    ])

