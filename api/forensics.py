"""Forensics endpoints: per-trace attribution, lineage and cost breakdown; failures across traces.

GET /api/traces/{trace_id}/attribution   every failure of the trace (and its linked traces)
GET /api/traces/{trace_id}/lineage       spans and typed edges across linked traces, depth-bounded
GET /api/traces/{trace_id}/costs         cost by step, agent, model, tool; requested vs served model
GET /api/failures                        root causes grouped across traces (materialized by the attributor)
Documented in docs/forensics.md.
"""

from __future__ import annotations


from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import DbSession, ReadPrincipal
from pages.failures import failures_data
from pages.forensics_schemas import (
    AttributionOut, FailuresOut, LineageOut, TraceCostsOut, attribution_out, lineage_out, trace_costs_out,
)
from pages.params import InvalidQuery, UtcTime
from pages.schemas import ErrorBody
from api.traces import _AUTH_ERRORS, TraceIdHex
from core.lineage import DEFAULT_DEPTH, MAX_DEPTH
from db.queries.fleet import MAX_WINDOW
from db.queries.failures import MAX_GROUPS
from db.queries.forensics import trace_attribution, trace_cost_breakdown, trace_lineage

_NOT_FOUND = {404: {"model": ErrorBody, "description": "No such trace in this project."}}


Depth = Annotated[int, Query(ge=0, le=MAX_DEPTH, description="Cross-trace link hops to follow (0 = this trace only).")]
TracePath = Annotated[TraceIdHex, Path(description="32 hex characters, either case.")]


def _missing(trace_id: str) -> HTTPException:
    # Same answer whether the trace is absent or belongs to another project.
    return HTTPException(404, detail=f"trace {trace_id} not found in this project")


def make_forensics_router() -> APIRouter:
    router = APIRouter(tags=["forensics"], responses=_AUTH_ERRORS)

    @router.get("/traces/{trace_id}/attribution", response_model=AttributionOut, responses=_NOT_FOUND,
                summary="Root cause, propagation, recovery, cost and blast radius of every failure of a trace")
    def attribution(principal: ReadPrincipal, session: DbSession, trace_id: TracePath,
                    depth: Depth = DEFAULT_DEPTH) -> AttributionOut:
        result = trace_attribution(session, principal.project_id, bytes.fromhex(trace_id), depth=depth)
        if result is None:
            raise _missing(trace_id)
        return attribution_out(result.attribution, result.truncated)

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
        since: Annotated[UtcTime | None, Query(description="ISO-8601; runs that started at or after it (default: until - 24 h).")] = None,
        until: Annotated[UtcTime | None, Query(description="ISO-8601; runs that started before it (default: now). "
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
