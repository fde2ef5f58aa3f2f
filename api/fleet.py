"""Across traces: GET /api/costs, GET /api/health/providers, GET /api/anomalies.

All three read the hourly rollups only (docs/fleet.md), scoped by the caller's project.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import DbSession, ReadPrincipal
from db.queries.costs import MAX_GROUPS
from db.queries.fleet import MAX_WINDOW, Filters
from pages.fleet import anomaly_data, cost_data, fleet_filters, health_data
from pages.fleet_schemas import AnomaliesOut, CostsOut, ProviderHealthOut
from pages.params import InvalidQuery, UtcTime
from pages.schemas import ErrorBody

_ERRORS = {
    401: {"model": ErrorBody, "description": "No credentials, or an unknown/revoked key or expired login."},
    403: {"model": ErrorBody, "description": "The key lacks the `read` scope."},
}
Since = Annotated[UtcTime | None, Query(description="ISO-8601 (no offset = UTC); default: 24 h before `until`.")]
Until = Annotated[UtcTime | None, Query(description="ISO-8601, exclusive; default: now. Window at most "
                                                     f"{MAX_WINDOW.days} days.")]
Service = Annotated[str | None, Query(description="Only this service (service.name).")]
Agent = Annotated[str | None, Query(description="Only this agent (gen_ai.agent.name).")]
Model = Annotated[str | None, Query(description="Only calls that requested or were served this model.")]
Provider = Annotated[str | None, Query(description="Only this provider (gen_ai.provider.name).")]


def _filters(project_id: int, since, until, service, agent, model, provider, exact: bool = False) -> Filters:
    try:
        return fleet_filters(project_id, since, until, service, agent, model, provider, exact=exact)
    except InvalidQuery as exc:
        raise exc.as_validation_error() from None


def make_fleet_router() -> APIRouter:
    router = APIRouter(tags=["across traces"], responses=_ERRORS)

    @router.get("/costs", response_model=CostsOut, summary="Tokens and USD across traces, grouped")
    def get_costs(
        principal: ReadPrincipal, session: DbSession,
        group_by: Annotated[Literal["model", "provider", "agent", "tool", "service", "session", "user", "day", "hour"],
                            Query(description="The grouping.")] = "model",
        since: Since = None, until: Until = None, service: Service = None, agent: Agent = None,
        model: Model = None, provider: Provider = None,
        limit: Annotated[int, Query(ge=1, le=MAX_GROUPS, description="Most groups returned.")] = 100,
    ) -> CostsOut:
        filters = _filters(principal.project_id, since, until, service, agent, model, provider, exact=True)
        try:
            return cost_data(session, filters, group_by, limit)
        except InvalidQuery as exc:
            raise exc.as_validation_error() from None

    @router.get("/health/providers", response_model=ProviderHealthOut,
                summary="Per provider and model: calls, errors by class, latency, retries, fallbacks, served models")
    def get_provider_health(
        principal: ReadPrincipal, session: DbSession,
        since: Since = None, until: Until = None, service: Service = None, agent: Agent = None,
        model: Model = None, provider: Provider = None,
        bucket: Annotated[Literal["hour", "day"] | None,
                          Query(description="Series granularity; default hour up to 48 h, else day.")] = None,
    ) -> ProviderHealthOut:
        return health_data(session, _filters(principal.project_id, since, until, service, agent, model, provider),
                           bucket)

    @router.get("/anomalies", response_model=AnomaliesOut,
                summary="Buckets where a provider's or model's error rate, latency or cost per call departs from its baseline")
    def get_anomalies(
        principal: ReadPrincipal, session: DbSession,
        since: Since = None, until: Until = None, service: Service = None, agent: Agent = None,
        model: Model = None, provider: Provider = None,
        bucket: Annotated[Literal["hour", "day"], Query(description="Granularity judged.")] = "hour",
        metric: Annotated[Literal["error_rate", "latency_p95_ms", "cost_per_call_usd"] | None,
                          Query(description="Only this metric.")] = None,
    ) -> AnomaliesOut:
        return anomaly_data(session, _filters(principal.project_id, since, until, service, agent, model, provider),
                            bucket, metric)

    return router
