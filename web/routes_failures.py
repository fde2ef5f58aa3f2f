"""The Failures page: /api/failures (pages.failures.failures_data) by dimension, with each
group's trend, cost and drill-down to its example runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from fastapi import APIRouter, Request

from core.charts import Svg, sparkline
from db.queries.failures import DIMENSIONS
from pages.failures import failures_data
from pages.forensics_schemas import FailuresOut
from pages.params import InvalidQuery
from web.auth import CurrentViewer, DbSession
from web.page import render_page, twin
from web.workbench_form import WorkbenchForm, runs_href

router = APIRouter()

DIMENSION_LABELS = {"error_class": "Error class", "provider": "Provider", "model": "Model", "tool": "Tool",
                    "agent": "Agent", "step": "Workflow step"}
# Dimensions the trace list can filter on.
_LINKED = {"model": "model", "agent": "agent", "provider": "provider", "error_class": "error_class"}
LIMIT = 50


@dataclass
class FailureRow:
    key: str | None
    label: str
    failures: int
    recovered: int
    runs: int
    failed_runs: int
    share: float | None
    trend: Svg
    trend_text: str
    first_seen: datetime
    last_seen: datetime
    tokens_burned: int
    cost_burned: Decimal
    cost_recovered: Decimal
    failed_runs_cost: Decimal
    examples: list[tuple[str, str]]
    runs_href: str | None


def failure_rows(form: WorkbenchForm, data: FailuresOut, dimension: str) -> list[FailureRow]:
    page = {k: v for k, v in form.filters().items() if k in ("service", "agent", "model", "provider")}
    rows = []
    for g in data.groups.get(dimension, []):
        label = g.key or "(not recorded)"
        runs = None
        if dimension in _LINKED and g.key:
            runs = runs_href(data.since, data.until, **{**page, _LINKED[dimension]: g.key})
        rows.append(FailureRow(
            key=g.key, label=label, failures=g.failures, recovered=g.recovered, runs=g.runs,
            failed_runs=g.failed_runs, share=g.share_of_failed_runs,
            trend=sparkline(g.trend, label=f"{label}: failures per 1/{len(g.trend)} of the window, "
                                          f"{' '.join(map(str, g.trend))}", css="chart-error"),
            trend_text=" ".join(map(str, g.trend)),
            first_seen=g.first_seen, last_seen=g.last_seen, tokens_burned=g.tokens_burned,
            cost_burned=Decimal(g.cost_burned_usd), cost_recovered=Decimal(g.cost_burned_recovered_usd),
            failed_runs_cost=Decimal(g.failed_runs_cost_usd),
            examples=[(t, f"/traces/{t}") for t in g.example_traces], runs_href=runs,
        ))
    return rows


def slice_text(step: timedelta) -> str:
    seconds = step.total_seconds()
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 60:.3g} min" if seconds >= 60 else f"{seconds:.3g} s"


@router.get("/failures")
def failures_page(
    request: Request, viewer: CurrentViewer, session: DbSession,
    range: str = "", since: str = "", until: str = "", group_by: str = "error_class", service: str = "",
    agent: str = "", model: str = "", provider: str = "",
):
    form = WorkbenchForm(range, since, until, service, agent, model, provider).resolve()
    errors = list(form.errors)
    group_by = group_by or "error_class"
    if group_by not in DIMENSIONS:
        errors.append(f"Group by must be one of {', '.join(DIMENSIONS)}.")
    data, json_href = None, None
    if not form.filter_errors and group_by in DIMENSIONS:
        try:
            data = failures_data(session, viewer.project_id, since=form.window.since, until=form.window.until,
                                 group_by=group_by, limit=LIMIT, **form.filters())
            json_href = twin("/api/failures", {**form.exact(), "group_by": group_by, "limit": LIMIT,
                                               **form.filters()})
        except InvalidQuery as exc:
            errors.append(exc.message[:1].upper() + exc.message[1:] + ".")
    page = {k: v for k, v in form.filters().items() if k in ("service", "agent", "model", "provider")}
    return render_page(request, "failures.html", {
        "viewer": viewer, "form": form, "errors": errors, "data": data, "group_by": group_by,
        "dimensions": DIMENSION_LABELS, "rows": failure_rows(form, data, group_by) if data else [],
        "failed_runs_href": runs_href(data.since, data.until, status="error", **page) if data else None,
        "slice": slice_text((data.until - data.since) / len(data.trend_starts)) if data else "",
    }, json_href=json_href)
