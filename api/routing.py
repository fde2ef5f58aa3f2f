"""GET /api/routing: the Routing page's data (pages/routing.py; docs/routing.md)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import DbSession, ReadPrincipal
from api.overview import _ERRORS, Range
from core.routing import GROUPS
from db.queries.fleet import MAX_WINDOW
from pages.overview import window_from_query
from pages.params import InvalidQuery, UtcTime
from pages.routing import RoutingOut, routing_data

By = Literal["step", "agent", "task"]
assert set(By.__args__) == set(GROUPS)  # one list of groupings (core.routing)


def make_routing_router() -> APIRouter:
    router = APIRouter(tags=["across traces"], responses=_ERRORS)

    @router.get("/routing", response_model=RoutingOut,
                summary="Per step, agent or task: every model that served it, routing decisions, suggestions")
    def get_routing(
        principal: ReadPrincipal, session: DbSession,
        by: Annotated[By, Query(description="Group by workflow step, agent, or task (the run's root span).")] = "step",
        range: Annotated[Range | None, Query(description="Quick range ending now; default 24h.")] = None,
        since: Annotated[UtcTime | None, Query(description="Custom window start (ISO-8601, no offset = UTC).")] = None,
        until: Annotated[UtcTime | None, Query(description="Custom window end, exclusive; default now. At most "
                                                           f"{MAX_WINDOW.days} days.")] = None,
    ) -> RoutingOut:
        try:
            window = window_from_query(range, since, until, datetime.now(timezone.utc))
        except InvalidQuery as exc:
            raise exc.as_validation_error() from None
        return routing_data(session, principal.project_id, window, by)

    return router
