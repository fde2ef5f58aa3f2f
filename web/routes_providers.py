"""The Providers page: per provider and model over time (calls, error rate by class, latency
p50/p95/p99, retries, fallbacks), with served-model changes and anomalies as markers on
each model's timeline (pages/providers.py)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request

from core.charts import Line, Marker, Point, line_chart, time_series
from pages.fleet import fleet_filters
from pages.params import has_nul
from pages.providers import providers_data
from web.auth import CurrentViewer, DbSession
from web.page import render_page, twin
from web.render import keep_query
from web.window_form import parse_window_form

router = APIRouter()
FILTERS = ("provider", "model", "service", "agent")


def _ms(v: float) -> str:
    return f"{v / 1000:.1f} s" if v >= 1000 else f"{v:.0f} ms"


def _model_view(m, data, window_q: dict) -> dict:
    health = data.health
    since, until = health.window.since, health.window.until
    step = timedelta(hours=1) if health.bucket == "hour" else timedelta(days=1)
    if health.bucket == "day":  # day buckets start at midnight, before an hour-aligned window
        since = since.replace(hour=0)
    markers = [Marker(c.first_seen, f"Served model changed: {c.request_model} now answered by {c.new_model} "
                                    f"(before: {', '.join(c.previous_models) or 'none'}) at {c.first_seen:%Y-%m-%d %H:%M} UTC",
                      "M", css="chart-change")
               for c in health.served_model_changes if c.provider == m.provider and c.request_model == m.model]
    markers += [Marker(a.time, f"Anomaly: {a.metric} {a.direction} at {a.time:%Y-%m-%d %H:%M} UTC — {a.evidence}",
                       "!", css="chart-anomaly")
                for a in data.anomalies.anomalies if a.provider == m.provider and a.model in (None, m.model)]
    calls = time_series([Point(p.time, p.calls, title=f"{p.time:%Y-%m-%d %H:%M} UTC: {p.calls:,} calls, {p.errors:,} errors")
                         for p in m.series], label=f"Calls per {health.bucket}", since=since, until=until,
                        markers=markers, height=120, bucket=step)
    errors = time_series([Point(p.time, p.error_rate * 100, title=(
        f"{p.time:%Y-%m-%d %H:%M} UTC: {p.error_rate:.1%} errors"
        + "".join(f", {k} {n}" for k, n in p.errors_by_class.items())),
        href=f"/traces?{keep_query({}, since=p.time.isoformat(), status='error', model=m.model)}")
        for p in m.series], label=f"Error rate per {health.bucket}", since=since, until=until, css="chart-error",
        fmt=lambda v: f"{v:.0f}%", markers=markers, height=120, bucket=step)
    latency = line_chart([Line(name, [(p.time, getattr(p, attr)) for p in m.series], css=f"chart-{name}")
                          for name, attr in (("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms"))],
                         label=f"Latency per {health.bucket}", since=since, until=until, fmt=_ms, markers=markers,
                         height=120)
    retries = time_series([Point(p.time, (p.retry_rate + p.fallback_rate) * 100, title=(
        f"{p.time:%Y-%m-%d %H:%M} UTC: retries {p.retry_rate:.1%}, fallbacks {p.fallback_rate:.1%}"))
        for p in m.series], label=f"Retry + fallback rate per {health.bucket}", since=since, until=until,
        css="chart-warn", fmt=lambda v: f"{v:.0f}%", markers=markers, height=120, bucket=step)
    return {"m": m, "charts": [("Calls", calls), ("Error rate", errors), ("Latency p50 / p95 / p99", latency),
                               ("Retries + fallbacks", retries)], "markers": markers,
            "changes": [c for c in health.served_model_changes if c.provider == m.provider and c.request_model == m.model],
            "anomalies": [a for a in data.anomalies.anomalies if a.provider == m.provider and a.model in (None, m.model)],
            "anchor": f"{m.provider}/{m.model}"}


@router.get("/providers")
def providers_page(request: Request, viewer: CurrentViewer, session: DbSession, range: str = "", since: str = "",
                   until: str = "", provider: str = "", model: str = "", service: str = "", agent: str = ""):
    form = parse_window_form(range, since, until)
    raw = {"provider": provider, "model": model, "service": service, "agent": agent}
    errors = [f"“{name.capitalize()}” must not contain NUL characters." for name, v in raw.items() if has_nul(v)]
    chosen = {k: ("" if has_nul(v) else v.strip()) for k, v in raw.items()}
    filters = fleet_filters(viewer.project_id, form.window.since, form.window.until, chosen["service"],
                            chosen["agent"], chosen["model"], chosen["provider"])
    data = providers_data(session, filters)
    w = form.query()
    return render_page(request, "providers.html", {
        "viewer": viewer, "form": form, "errors": errors, "data": data, "chosen": chosen,
        "keep": chosen, "action": "/providers", "w": w, "wc": {**w, **chosen},
        "models": [_model_view(m, data, w) for m in data.health.models], "ms": _ms,
        "unmatched": [a for a in data.anomalies.anomalies
                      if not any(a.provider == m.provider and a.model in (None, m.model) for m in data.health.models)],
    }, json_href=twin("/api/providers", {**w, **chosen}))
