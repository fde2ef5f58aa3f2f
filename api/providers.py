"""GET /api/providers: the Providers page's data (provider health and anomalies, same bucket)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import DbSession, ReadPrincipal
from api.fleet import Agent, Model, Provider, Service
from api.overview import _ERRORS, Range
from db.queries.fleet import MAX_WINDOW
from pages.fleet import fleet_filters
from pages.overview import window_from_query
from pages.params import InvalidQuery, UtcTime
from pages.providers import ProvidersOut, providers_data


def make_providers_router() -> APIRouter:
    router = APIRouter(tags=["across traces"], responses=_ERRORS)

    @router.get("/providers", response_model=ProvidersOut,
                summary="Per provider and model over time, with anomalies on the same buckets")
    def get_providers(
        principal: ReadPrincipal, session: DbSession,
        range: Annotated[Range | None, Query(description="Quick range ending now; default 24h.")] = None,
        since: Annotated[UtcTime | None, Query(description="Custom window start (ISO-8601, no offset = UTC).")] = None,
        until: Annotated[UtcTime | None, Query(description="Custom window end, exclusive; default now. At most "
                                                           f"{MAX_WINDOW.days} days.")] = None,
        service: Service = None, agent: Agent = None, model: Model = None, provider: Provider = None,
    ) -> ProvidersOut:
        try:
            window = window_from_query(range, since, until, datetime.now(timezone.utc))
            filters = fleet_filters(principal.project_id, window.since, window.until, service, agent, model, provider)
        except InvalidQuery as exc:
            raise exc.as_validation_error() from None
        return providers_data(session, filters)

    return router
