"""The trace list's data, for the Traces page and GET /api/traces: one page of runs under the
filters (db/queries/run_filters.py), the totals of every run they select, each listed run's
root cause and a one-line preview of its input (masked for readers without `read_content`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from core.content_display import preview
from core.masking import mask_text
from core.permissions import Principal
from db.queries.run_filters import RunFilters, RunTotals, run_totals
from db.queries.traces import RootCause, TracePage, list_traces, root_causes, run_inputs


@dataclass(frozen=True)
class TraceListing:
    page: TracePage
    totals: RunTotals
    causes: dict[bytes, RootCause]
    previews: dict[bytes, str]


def trace_listing(session: Session, principal: Principal, filters: RunFilters, *, limit: int,
                  cursor: str | None) -> TraceListing:
    totals = run_totals(session, principal.project_id, filters)
    if filters.search and not totals.capped:
        # Few matches (at most SEARCH_TOTALS_CAP): read them first and pick the page among them;
        # more, and they are dense enough that walking the newest runs finds a page sooner.
        filters = replace(filters, search_first=True)
    page = list_traces(session, principal.project_id, filters=filters, limit=limit, cursor=cursor)
    ids = [item.trace.trace_id for item in page.items]
    inputs = run_inputs(session, principal.project_id, ids)
    show = (lambda text: text) if principal.sees_content else mask_text
    return TraceListing(
        page=page, totals=totals,
        causes=root_causes(session, principal.project_id, ids),
        previews={trace_id: preview(show(text)) for trace_id, text in inputs.items()},
    )
