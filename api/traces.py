"""GET /api/traces and GET /api/traces/{trace_id}: the JSON twins of the trace pages."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator

from access.audit import record
from api.deps import AppSettings, DbSession, ReadPrincipal
from core.quantities import parse_duration, parse_usd
from core.window import QUICK_RANGES, parse_bounds
from pages.params import UtcTime
from pages.schemas import (
    ErrorBody, RunTotalsOut, TraceDetailOut, TraceList, edge_out, money, span_out, trace_summary,
)
from db.queries.run_filters import RunFilters
from db.queries.trace_search import MAX_QUERY
from db.queries.traces import MAX_LIMIT, InvalidCursor, decode_cursor, get_trace
from pages.scores import run_scores
from pages.traces import trace_listing

_TRACE_HEX = re.compile(r"[0-9a-fA-F]{32}")


def _check_trace_id(value: str) -> str:
    # A validator (not `pattern=`) so the 422 message says what a trace id is.
    if not _TRACE_HEX.fullmatch(value):
        raise ValueError(f"trace_id must be 32 hexadecimal characters (16 bytes), got {len(value)} characters")
    return value.lower()


def _check_cursor(value: str | None) -> str | None:
    if value:
        try:
            decode_cursor(value)
        except InvalidCursor:
            raise ValueError("invalid cursor: pass the next_cursor of a previous response unchanged") from None
    return value or None


def _invalid(field: str, value, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("query", field), "input": value, "msg": message}])


TraceIdHex = Annotated[str, AfterValidator(_check_trace_id)]
Cursor = Annotated[str | None, AfterValidator(_check_cursor)]

_AUTH_ERRORS = {
    401: {"model": ErrorBody, "description": "No credentials, or an unknown/revoked key or expired login."},
    403: {"model": ErrorBody, "description": "The key lacks the `read` scope."},
}


def make_traces_router() -> APIRouter:
    router = APIRouter(tags=["traces"], responses=_AUTH_ERRORS)

    @router.get("/traces", response_model=TraceList, summary="List traces, newest first, with the totals of the filtered set",
                responses={422: {"description": "A filter did not parse; `detail` says which and why."}})
    def traces_list(
        request: Request,
        principal: ReadPrincipal,
        session: DbSession,
        since: Annotated[UtcTime | None, Query(description="ISO-8601; traces that started at or after it (no offset = UTC).")] = None,
        until: Annotated[UtcTime | None, Query(description="ISO-8601; traces that started before it (no offset = UTC).")] = None,
        range: Annotated[Literal[tuple(QUICK_RANGES)] | None, Query(  # type: ignore[valid-type]
            description="A quick range ending now, when neither since nor until is given.")] = None,
        status: Annotated[Literal["ok", "error", "unset"] | None, Query(description="Trace status (see TraceSummary.status).")] = None,
        service: Annotated[str | None, Query(description="Any span of the trace ran in this service.")] = None,
        agent: Annotated[str | None, Query(description="An agent (gen_ai.agent.name) took part.")] = None,
        model: Annotated[str | None, Query(description="A model call used this model.")] = None,
        provider: Annotated[str | None, Query(description="A span of the trace called this provider.")] = None,
        error_class: Annotated[str | None, Query(description="A span of the trace failed with this error class "
                                                             "(timeout, rate_limit, ...).")] = None,
        min_cost: Annotated[str | None, Query(description="Runs that cost at least this many USD (priced calls).",
                                              examples=["0.05"])] = None,
        min_duration: Annotated[str | None, Query(description="Runs that lasted at least this long: 1.5s, 200ms, 2m "
                                                              "(a bare number is seconds).")] = None,
        outcome: Annotated[Literal["failed", "recovered", "ok"] | None, Query(
            description="The run's outcome as attribution decided it (failed, recovered: failures the run "
                        "went on from, ok); traces not yet attributed have none.")] = None,
        score_name: Annotated[str | None, Query(max_length=200, description="The run or one of its spans has a "
                                                                            "score of this name.")] = None,
        min_score: Annotated[float | None, Query(allow_inf_nan=False, description=(
            "The run or one of its spans has a score (of `score_name`, if given) of at least this value; "
            "booleans count as 1 and 0."))] = None,
        q: Annotated[str | None, Query(max_length=MAX_QUERY, description=(
            "Full-text search: every word in one span's name (and, for readers who may see content, its "
            "captured input or output)."))] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = 50,
        cursor: Annotated[Cursor, Query(description="next_cursor from the previous page.")] = None,
    ) -> TraceList:
        if since is not None and until is not None and since >= until:
            raise _invalid("until", until.isoformat(), "until must be later than since")
        if since is None and until is None and range:
            since, until, _ = parse_bounds(range, "", "", datetime.now(timezone.utc))
        amounts = {}
        for name, text, parse in (("min_cost", min_cost, parse_usd), ("min_duration", min_duration, parse_duration)):
            try:
                amounts[name] = parse(text or "")
            except ValueError as exc:
                raise _invalid(name, text, str(exc)) from None
        filters = RunFilters(
            since=since, until=until, status=status, service=service or None, agent=agent or None,
            model=model or None, provider=provider or None, error_class=error_class or None, outcome=outcome,
            search=(q or "").strip() or None, search_content=principal.sees_content,
            score_name=score_name or None, min_score=min_score, **amounts,
        )
        listing = trace_listing(session, principal, filters, limit=limit, cursor=cursor)
        if filters.search and principal.sees_content and not cursor:  # as the page does: searches of content are audited
            record(session, request, principal, "search", target=filters.search)
            session.commit()
        t = listing.totals
        return TraceList(
            traces=[trace_summary(item.trace, item.status).model_copy(
                update={"input_preview": listing.previews.get(item.trace.trace_id)}) for item in listing.page.items],
            next_cursor=listing.page.next_cursor,
            totals=RunTotalsOut(runs=t.runs, capped=True, failed=None, with_errors=None, cost_usd=None,
                                unpriced_calls=None, input_tokens=None, output_tokens=None) if t.capped else RunTotalsOut(
                runs=t.runs, failed=t.failed, with_errors=t.with_errors, cost_usd=money(t.cost_usd) or "0",
                unpriced_calls=t.unpriced_calls, input_tokens=t.input_tokens, output_tokens=t.output_tokens),
        )

    @router.get(
        "/traces/{trace_id}", response_model=TraceDetailOut, summary="One trace with all its spans and edges",
        responses={404: {"model": ErrorBody, "description": "No such trace in this project."}},
    )
    def trace_detail(
        request: Request,
        principal: ReadPrincipal,
        session: DbSession,
        settings: AppSettings,
        trace_id: Annotated[TraceIdHex, Path(description="32 hex characters, either case.")],
    ) -> TraceDetailOut:
        detail = get_trace(session, principal.project_id, bytes.fromhex(trace_id),
                           max_spans=settings.max_trace_spans)
        if detail is None:
            # Same answer whether the trace is absent or belongs to another project.
            raise HTTPException(404, detail=f"trace {trace_id} not found in this project")
        if principal.sees_content:  # captured content leaves the building: recorded
            record(session, request, principal, "trace.view", target=trace_id)
            session.commit()
        return TraceDetailOut(
            trace=trace_summary(detail.trace, detail.status),
            spans=[span_out(s, content=principal.sees_content) for s in detail.spans],
            edges=[edge_out(e) for e in detail.edges],
            truncated=detail.truncated,
            scores=run_scores(session, principal.project_id, bytes.fromhex(trace_id), content=principal.sees_content),
        )

    return router
