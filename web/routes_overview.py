"""The Overview page: runs by outcome, cost and tokens over time, top root causes, models in
trouble, anomalies, served-model changes and the most expensive agents (pages/overview.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from core.charts import Line, Point, line_chart, sparkline, time_series
from pages.overview import overview_data
from web.auth import CurrentViewer, DbSession
from web.page import render_page, twin
from web.window_form import WindowForm, parse_window_form

router = APIRouter()


def _q(**values) -> str:
    return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def _tiles(data, form: WindowForm) -> list[dict]:
    """The stat tiles: value, link to the list behind it, sparkline and a larger chart."""
    w = form.query()
    step = timedelta(seconds=data.window.step_seconds)
    series = data.series

    def chart(values, label, fmt, css="", status=""):
        points = [Point(p.time, v, href=f"/traces?{form.traces_query(p.time, min(p.time + step, data.window.until), status=status)}")
                  for p, v in zip(series, values)]
        return time_series(points, label=label, since=data.window.since, until=data.window.until, fmt=fmt,
                           css=css, width=260, height=72, ticks=2)

    t = data.totals
    spec = [
        ("runs", "Runs", f"{t.runs:,}", [p.runs for p in series], f"/traces?{form.traces_query()}", "", "",
         lambda v: f"{v:,.0f}"),
        ("failed", "Failed runs", f"{t.failed_runs:,}", [p.failed_runs for p in series],
         f"/traces?{form.traces_query(status='error')}", "chart-error", "error", lambda v: f"{v:,.0f}"),
        ("recovered", "Recovered runs", f"{t.recovered_runs:,}", [p.recovered_runs for p in series],
         f"/failures?{_q(**w)}", "chart-warn", "error", lambda v: f"{v:,.0f}"),
        ("failure-rate", "Failure rate", f"{t.failure_rate:.1%}", [p.failure_rate for p in series],
         f"/failures?{_q(**w)}", "chart-error", "error", lambda v: f"{v:.0%}"),
        ("cost", "Cost", _usd(Decimal(t.cost_usd)), [float(p.cost_usd) for p in series],
         f"/costs?{_q(group_by='day' if step >= timedelta(days=1) else 'hour', **w)}", "", "", lambda v: f"${v:,.2f}"),
        ("tokens", "Tokens (in + out)", _compact(t.tokens), [p.tokens for p in series],
         f"/costs?{_q(group_by='model', **w)}", "", "", _compact),
    ]
    return [{"key": key, "label": label, "value": value, "href": href,
             "spark": sparkline(values, label=f"{label} over time", css=css),
             "chart": chart(values, f"{label} per {_step_name(step)}", fmt, css, status)}
            for key, label, value, values, href, css, status, fmt in spec]


SCORE_ROWS = 5  # per dimension
SCORE_LINES = 4  # score names in the chart
_SCORE_CSS = ("chart-p50", "chart-p95", "chart-p99", "")


def _score_view(data, form: WindowForm) -> dict | None:
    """The scores panel: the most frequent groups per model, agent and step (each linking to the
    runs with that score, narrowed by model or agent where the trace list has the filter), and a
    chart of the daily mean per score name."""
    scores = data.scores
    if scores is None or not any((scores.by_model, scores.by_agent, scores.by_step, scores.by_day)):
        return None
    rows = []
    for dim, groups, field in (("model", scores.by_model, "model"), ("agent", scores.by_agent, "agent"),
                               ("step", scores.by_step, None)):
        for g in sorted(groups, key=lambda g: (-g.count, g.name, g.group))[:SCORE_ROWS]:
            narrowed = {field: g.group} if field and not g.group.startswith("(") and g.group else {}
            rows.append({"dim": dim, "g": g, "href": f"/traces?{form.traces_query(score_name=g.name, **narrowed)}"})
    names = sorted({g.name for g in scores.by_day}, key=lambda n: -sum(g.count for g in scores.by_day if g.name == n))
    lines = []
    for i, name in enumerate(names[:SCORE_LINES]):
        points = [(datetime.fromisoformat(g.group).replace(tzinfo=timezone.utc), g.mean)
                  for g in scores.by_day if g.name == name and g.mean is not None]
        if points:
            lines.append(Line(name, sorted(points), css=_SCORE_CSS[i]))
    since = scores.since.replace(hour=0, minute=0, second=0, microsecond=0)
    # A score with one day of means makes no line, only a lone dot: when no score has two days,
    # the day (or each score's day and mean) is said in a sentence instead.
    chart = same_day = None
    one_day: list = []
    if any(len(line.points) > 1 for line in lines):
        chart = line_chart(lines, label="Mean score per day", since=since, until=scores.until,
                           fmt=lambda v: f"{v:.2f}", height=130, ticks=3)
    else:
        one_day = [(line.name, *line.points[0]) for line in lines]
        days = {day for _, day, _ in one_day}
        same_day = days.pop() if len(days) == 1 else None
    return {"rows": rows, "chart": chart, "one_day": one_day, "same_day": same_day}


def _usd(value: Decimal) -> str:
    return "$0" if not value else f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def _compact(value: float) -> str:
    value = float(value)
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + unit
    return f"{value:,.0f}"


def _step_name(step: timedelta) -> str:
    s = int(step.total_seconds())
    return f"{s // 86400} d" if s % 86400 == 0 else f"{s // 3600} h" if s % 3600 == 0 else f"{s // 60} min"


@router.get("/overview")
def overview_page(request: Request, viewer: CurrentViewer, session: DbSession,
                  range: str = "", since: str = "", until: str = ""):
    form = parse_window_form(range, since, until)
    data = overview_data(session, viewer.project_id, form.window)
    w = form.query()
    return render_page(request, "overview.html", {
        "viewer": viewer, "form": form, "data": data, "tiles": _tiles(data, form), "w": w,
        "q": lambda **extra: _q(**w, **extra), "keep": {}, "action": "/overview",
        "step_name": _step_name(timedelta(seconds=data.window.step_seconds)),
        "spark": lambda values, label: sparkline(values, label=label, css="chart-error"),
        "usd": lambda v: "—" if v is None else _usd(Decimal(v)), "compact": _compact,
        "score_view": _score_view(data, form),
    }, json_href=twin("/api/overview", w))
