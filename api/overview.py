"""GET /api/overview: the Overview page's data (runs by outcome, root causes, providers in
trouble, anomalies, served-model changes, most expensive agents) for one window."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import DbSession, ReadPrincipal
from core.window import QUICK_RANGES
from db.queries.fleet import MAX_WINDOW
from pages.overview import overview_data, window_from_query
from pages.overview_schemas import OverviewOut
from pages.params import InvalidQuery, UtcTime
from pages.schemas import ErrorBody

_ERRORS = {
    401: {"model": ErrorBody, "description": "No credentials, or an unknown/revoked key or expired login."},
    403: {"model": ErrorBody, "description": "The key lacks the `read` scope."},
}
Range = Literal["15m", "1h", "24h", "7d", "30d"]
assert set(Range.__args__) == set(QUICK_RANGES)  # one list of quick ranges (core.window)


def make_overview_router() -> APIRouter:
    router = APIRouter(tags=["across traces"], responses=_ERRORS)

    @router.get("/overview", response_model=OverviewOut,
                summary="Runs by outcome over time, top root causes, models in trouble, anomalies, costs")
    def get_overview(
        principal: ReadPrincipal, session: DbSession,
        range: Annotated[Range | None, Query(description="Quick range ending now; default 24h.")] = None,
        since: Annotated[UtcTime | None, Query(description="Custom window start (ISO-8601, no offset = UTC).")] = None,
        until: Annotated[UtcTime | None, Query(description="Custom window end, exclusive; default now. At most "
                                                           f"{MAX_WINDOW.days} days.")] = None,
    ) -> OverviewOut:
        try:
            window = window_from_query(range, since, until, datetime.now(timezone.utc))
        except InvalidQuery as exc:
            raise exc.as_validation_error() from None
        return overview_data(session, principal.project_id, window)

    return router
