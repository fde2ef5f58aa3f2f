"""Forensics endpoints: per-trace attribution, lineage and cost breakdown; failures across traces.

GET /api/traces/{trace_id}/attribution   every failure of the trace (and its linked traces)
GET /api/traces/{trace_id}/lineage       spans and typed edges across linked traces, depth-bounded
GET /api/traces/{trace_id}/costs         cost by step, agent, model, tool; requested vs served model
GET /api/failures                        root causes grouped across traces (materialized by the attributor)
Documented in docs/forensics.md.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Callable, Literal, TypeVar

import anyio
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from api.deps import DbSession, ReadPrincipal
from pages.failures import failures_data
from pages.forensics_schemas import (
    AttributionOut, FailuresOut, LineageOut, TraceCostsOut, attribution_out, judge_view_out, lineage_out,
    trace_costs_out,
)
from pages.params import InvalidQuery, UtcTime
from pages.schemas import ErrorBody
from api.traces import _AUTH_ERRORS, TraceIdHex
from core.lineage import DEFAULT_DEPTH, MAX_DEPTH
from db.queries.fleet import MAX_WINDOW
from db.queries.failures import MAX_GROUPS
from core.attribution import Stopped
from db.queries.forensics import trace_attribution, trace_cost_breakdown, trace_lineage
from db.queries.judge_attributions import judge_view

log = logging.getLogger("causeline.api")
T = TypeVar("T")
CLIENT_CLOSED = 499  # nginx's status for "the client closed the request"; nobody reads it
POLL_S = 0.1

_NOT_FOUND = {404: {"model": ErrorBody, "description": "No such trace in this project."}}


Depth = Annotated[int, Query(ge=0, le=MAX_DEPTH, description="Cross-trace link hops to follow (0 = this trace only).")]
TracePath = Annotated[TraceIdHex, Path(description="32 hex characters, either case.")]


def _missing(trace_id: str) -> HTTPException:
    # Same answer whether the trace is absent or belongs to another project.
    return HTTPException(404, detail=f"trace {trace_id} not found in this project")


async def _while_connected(request: Request, work: Callable[[threading.Event], T]) -> T:
    """Run `work(gone)` in a worker thread; `gone` is set as soon as the client disconnects,
    so long work (attributing a huge trace) can stop instead of computing for nobody."""
    gone = threading.Event()

    async def watch() -> None:
        while not gone.is_set():
            if await request.is_disconnected():
                gone.set()
                return
            await anyio.sleep(POLL_S)

    failure: Exception | None = None
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watch)
        try:
            result = await anyio.to_thread.run_sync(work, gone)
        except Exception as exc:  # raised below, unwrapped (a task group wraps what escapes it)
            failure = exc
        finally:
            tasks.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return result


def make_forensics_router() -> APIRouter:
    router = APIRouter(tags=["forensics"], responses=_AUTH_ERRORS)

    @router.get("/traces/{trace_id}/attribution", response_model=AttributionOut, responses=_NOT_FOUND,
                summary="Root cause, propagation, recovery, cost and blast radius of every failure of a trace")
    async def attribution(request: Request, principal: ReadPrincipal, session: DbSession, trace_id: TracePath,
                          depth: Depth = DEFAULT_DEPTH) -> AttributionOut:
        def work(gone: threading.Event):
            return trace_attribution(session, principal.project_id, bytes.fromhex(trace_id), depth=depth,
                                     should_stop=gone.is_set)
        try:
            result = await _while_connected(request, work)
        except Stopped:
            log.info("attribution of trace %s stopped: the client went away", trace_id)
            return Response(status_code=CLIENT_CLOSED)  # type: ignore[return-value]
        if result is None:
            raise _missing(trace_id)
        judged = judge_view(session, principal.project_id, bytes.fromhex(trace_id))
        return attribution_out(result.attribution, result.truncated,
                               judge_view_out(judged, content=principal.sees_content) if judged else None)

    @router.get("/traces/{trace_id}/lineage", response_model=LineageOut, responses=_NOT_FOUND,
                summary="The graph of spans and typed edges across linked traces")
    def lineage(principal: ReadPrincipal, session: DbSession, trace_id: TracePath,
                depth: Depth = DEFAULT_DEPTH) -> LineageOut:
        graph = trace_lineage(session, principal.project_id, bytes.fromhex(trace_id), depth=depth)
        if graph is None:
            raise _missing(trace_id)
        return lineage_out(graph)

    @router.get("/traces/{trace_id}/costs", response_model=TraceCostsOut, responses=_NOT_FOUND,
                summary="Cost of a trace by step, agent, model and tool; requested vs served model")
    def costs(principal: ReadPrincipal, session: DbSession, trace_id: TracePath) -> TraceCostsOut:
        result = trace_cost_breakdown(session, principal.project_id, bytes.fromhex(trace_id))
        if result is None:
            raise _missing(trace_id)
        return trace_costs_out(result)

    @router.get("/failures", response_model=FailuresOut,
                summary="Where failures concentrate: root causes grouped across traces")
    def failures(
        principal: ReadPrincipal,
        session: DbSession,
        since: Annotated[UtcTime | None, Query(description="ISO-8601; runs that started at or after it (default: until - 24 h; with neither bound, the 24 hours ending with the current UTC hour).")] = None,
        until: Annotated[UtcTime | None, Query(description="ISO-8601; runs that started before it (default: now, or the end of the current UTC hour when since is not given either). "
                                                            f"Window at most {MAX_WINDOW.days} days.")] = None,
        service: Annotated[str | None, Query(description="Runs with a span in this service.")] = None,
        agent: Annotated[str | None, Query(description="Runs in which this agent took part.")] = None,
        model: Annotated[str | None, Query(description="Runs with a model call to this model.")] = None,
        provider: Annotated[str | None, Query(description="Root causes from this provider.")] = None,
        group_by: Annotated[Literal["error_class", "provider", "model", "tool", "agent", "step"] | None,
                            Query(description="Only this grouping; default: every grouping as its own section.")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_GROUPS, description="Groups per section, most failures first.")] = 20,
    ) -> FailuresOut:
        try:
            return failures_data(session, principal.project_id, since=since, until=until, group_by=group_by,
                                 limit=limit, service=service, agent=agent, model=model, provider=provider)
        except InvalidQuery as exc:
            raise exc.as_validation_error() from None

    return router
