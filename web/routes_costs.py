"""The Costs page: /api/costs (pages.fleet.cost_data) as tables and charts, each number linked
to the runs behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from fastapi import APIRouter, Request

from core.charts import Bar, Point, bar_chart, time_series
from db.queries.costs import GROUPS
from pages.fleet import cost_data, fleet_filters
from pages.fleet_schemas import CostGroupOut, CostsOut
from pages.params import InvalidQuery
from web.auth import CurrentViewer, DbSession
from web.page import render_page, twin
from web.render import fmt_money
from web.workbench_form import WorkbenchForm, bucket_end, runs_href

router = APIRouter()

GROUP_LABELS = {"model": "Model", "provider": "Provider", "agent": "Agent", "tool": "Tool", "service": "Service",
                "session": "Session", "user": "User", "day": "Day", "hour": "Hour"}
# Groupings the trace list can filter on (it filters by model, agent, service and time).
_LINKED = {"model": "model", "agent": "agent", "service": "service", "provider": "provider"}
LIMIT = 50


@dataclass
class CostRow:
    key: str | None
    label: str
    calls: int
    errors: int
    unpriced: int
    tokens_in: int | None
    tokens_out: int | None
    cost: Decimal | None
    cost_text: str
    share: float | None  # of the priced total
    runs: str | None
    served: list[tuple[str, int, str]] = field(default_factory=list)


def _cost(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def cost_text(g: CostGroupOut) -> str:
    """Never a silent $0: all-unpriced groups say so; partly priced ones name the rest."""
    cost = _cost(g.cost_usd)
    if cost is None:
        return "unpriced" if g.unpriced_calls else "—"
    return fmt_money(cost) + (f" + {g.unpriced_calls} unpriced" if g.unpriced_calls else "")


def _label(key: str | None, group_by: str) -> str:
    if not key:
        return "(not recorded)"
    if group_by in ("day", "hour"):
        when = datetime.fromisoformat(key)
        return f"{when:%Y-%m-%d}" if group_by == "day" else f"{when:%Y-%m-%d %H:00}"
    return key


def _page(form: WorkbenchForm) -> dict[str, str]:
    """The page's filters the trace list knows."""
    return {k: v for k, v in form.filters().items() if k in ("service", "agent", "model", "provider")}


def _runs(form: WorkbenchForm, data: CostsOut, group_by: str, key: str | None) -> str | None:
    page = _page(form)
    if group_by in ("day", "hour") and key:
        start = max(datetime.fromisoformat(key), data.window.since)
        return runs_href(start, bucket_end(datetime.fromisoformat(key), group_by, data.window.until), **page)
    if group_by in _LINKED and key:
        return runs_href(data.window.since, data.window.until, **{**page, _LINKED[group_by]: key})
    return None


def cost_rows(form: WorkbenchForm, data: CostsOut) -> list[CostRow]:
    total = _cost(data.total.cost_usd) or Decimal(0)
    rows = []
    for g in data.groups:
        cost = _cost(g.cost_usd)
        rows.append(CostRow(
            key=g.key, label=_label(g.key, data.group_by), calls=g.calls, errors=g.errors, unpriced=g.unpriced_calls,
            tokens_in=g.tokens.input if g.tokens else None, tokens_out=g.tokens.output if g.tokens else None,
            cost=cost, cost_text=cost_text(g), share=float(cost / total) if cost is not None and total else None,
            runs=_runs(form, data, data.group_by, g.key),
            served=[(s.model, s.calls, runs_href(
                        data.window.since, data.window.until, **{**_page(form), "model": s.model}))
                    for s in g.served_models or [] if [m.model for m in g.served_models] != [g.key]],
        ))
    return rows


def calls(n: int) -> str:
    return f"{n:,} call" + ("" if n == 1 else "s")


def buckets(since: datetime, until: datetime, bucket: str) -> list[datetime]:
    """UTC bucket starts covering [since, until)."""
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    start = since.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        start = start.replace(hour=0)
    out = []
    while start < until:
        out.append(start)
        start += step
    return out


def _charts(form: WorkbenchForm, data: CostsOut, rows: list[CostRow]):
    label = GROUP_LABELS[data.group_by].lower()
    if data.group_by == "tool":  # tool calls carry no cost: chart the calls
        bars = [Bar(r.label, r.calls, title=f"{r.label}: {calls(r.calls)}, {r.errors:,} failed", href=r.runs,
                    css="chart-error" if r.errors else "") for r in rows]
        groups = bar_chart(bars, label=f"Tool calls by {label}", fmt=lambda v: f"{v:,.0f}") if bars else None
    else:
        bars = [Bar(r.label, float(r.cost), title=f"{r.label}: {r.cost_text} · {calls(r.calls)}", href=r.runs)
                for r in rows if r.cost is not None][:25]
        groups = bar_chart(bars, label=f"Cost by {label} (USD, priced calls)",
                           fmt=lambda v: fmt_money(Decimal(str(v)))) if bars else None
    points = []
    found = {datetime.fromisoformat(g.key): g for g in data.series}
    for start in buckets(data.window.since, data.window.until, data.series_bucket):
        g = found.get(start)
        shown = max(start, data.window.since)
        end = bucket_end(start, data.series_bucket, data.window.until)
        if g is None:  # every bucket gets its slot, so bar widths and gaps read as time
            points.append(Point(shown, 0.0, title=f"{start:%Y-%m-%d %H:%M} UTC: no model calls"))
            continue
        points.append(Point(shown, float(_cost(g.cost_usd) or 0),
                            title=f"{start:%Y-%m-%d %H:%M} UTC: {cost_text(g)} · {calls(g.calls)}",
                            href=runs_href(shown, end, **_page(form))))
    series = time_series(points, label=f"Cost per {data.series_bucket} (USD, priced calls)",
                         since=data.window.since, until=data.window.until,
                         fmt=lambda v: fmt_money(Decimal(str(round(v, 6)))), left=64) if points else None
    return groups, series


@router.get("/costs")
def costs_page(
    request: Request, viewer: CurrentViewer, session: DbSession,
    range: str = "", since: str = "", until: str = "", group_by: str = "model", service: str = "", agent: str = "",
    model: str = "", provider: str = "",
):
    form = WorkbenchForm(range, since, until, service, agent, model, provider).resolve()
    errors = list(form.errors)
    group_by = group_by or "model"
    if group_by not in GROUPS:
        errors.append(f"Group by must be one of {', '.join(GROUPS)}.")
    data = None
    json_href = None
    if not form.filter_errors and group_by in GROUPS:
        try:
            filters = fleet_filters(viewer.project_id, form.window.since, form.window.until, service, agent, model,
                                    provider, exact=True)
            data = cost_data(session, filters, group_by, LIMIT)
            json_href = twin("/api/costs", {**form.exact(), "group_by": group_by, "limit": LIMIT, **form.filters()})
        except InvalidQuery as exc:
            errors.append(exc.message[:1].upper() + exc.message[1:] + ".")
    rows = cost_rows(form, data) if data else []
    groups_chart, series_chart = _charts(form, data, rows) if data else (None, None)
    unpriced_groups = [r for r in rows if r.cost is None and r.unpriced]
    return render_page(request, "costs.html", {
        "viewer": viewer, "form": form, "errors": errors, "data": data, "rows": rows, "group_by": group_by,
        "groupings": GROUP_LABELS, "groups_chart": groups_chart, "series_chart": series_chart,
        "unpriced_groups": unpriced_groups, "total_text": cost_text(data.total) if data else "",
        "window_runs": runs_href(data.window.since, data.window.until, **form.filters()) if data else None,
    }, json_href=json_href)
