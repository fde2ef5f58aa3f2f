"""GET /api/traces and GET /api/traces/{trace_id}: the JSON twins of the trace pages."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator

from access.audit import record
from api.deps import AppSettings, DbSession, ReadPrincipal
from pages.params import UtcTime
from pages.schemas import (
    ErrorBody, TraceDetailOut, TraceList, edge_out, span_out, trace_summary,
)
from db.queries.scores import trace_scores
from db.queries.traces import MAX_LIMIT, InvalidCursor, decode_cursor, get_trace, list_traces
from pages.scores import score_out

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


TraceIdHex = Annotated[str, AfterValidator(_check_trace_id)]
Cursor = Annotated[str | None, AfterValidator(_check_cursor)]

_AUTH_ERRORS = {
    401: {"model": ErrorBody, "description": "No credentials, or an unknown/revoked key or expired login."},
    403: {"model": ErrorBody, "description": "The key lacks the `read` scope."},
}


def make_traces_router() -> APIRouter:
    router = APIRouter(tags=["traces"], responses=_AUTH_ERRORS)

    @router.get("/traces", response_model=TraceList, summary="List traces, newest first")
    def traces_list(
        principal: ReadPrincipal,
        session: DbSession,
        since: Annotated[UtcTime | None, Query(description="ISO-8601; traces that started at or after it (no offset = UTC).")] = None,
        until: Annotated[UtcTime | None, Query(description="ISO-8601; traces that started before it (no offset = UTC).")] = None,
        status: Annotated[Literal["ok", "error", "unset"] | None, Query(description="Trace status (see TraceSummary.status).")] = None,
        service: Annotated[str | None, Query(description="Any span of the trace ran in this service.")] = None,
        agent: Annotated[str | None, Query(description="An agent (gen_ai.agent.name) took part.")] = None,
        model: Annotated[str | None, Query(description="A model call used this model.")] = None,
        outcome: Annotated[Literal["failed", "recovered", "ok"] | None, Query(
            description="The run's outcome as attribution decided it (failed, recovered: failures the run "
                        "went on from, ok); traces not yet attributed have none.")] = None,
        score_name: Annotated[str | None, Query(max_length=200, description="The run or one of its spans has a "
                                                                            "score of this name.")] = None,
        min_score: Annotated[float | None, Query(allow_inf_nan=False, description=(
            "The run or one of its spans has a score (of `score_name`, if given) of at least this value; "
            "booleans count as 1 and 0."))] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = 50,
        cursor: Annotated[Cursor, Query(description="next_cursor from the previous page.")] = None,
    ) -> TraceList:
        if since is not None and until is not None and since >= until:
            raise RequestValidationError([{
                "type": "value_error", "loc": ("query", "until"), "input": until.isoformat(),
                "msg": "until must be later than since",
            }])
        page = list_traces(
            session, principal.project_id, since=since, until=until, status=status,
            service=service or None, agent=agent or None, model=model or None, outcome=outcome,
            score_name=score_name or None, min_score=min_score, limit=limit, cursor=cursor,
        )
        return TraceList(
            traces=[trace_summary(item.trace, item.status) for item in page.items],
            next_cursor=page.next_cursor,
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
            scores=[score_out(s, content=principal.sees_content)
                    for s in trace_scores(session, principal.project_id, bytes.fromhex(trace_id))],
        )

    return router
