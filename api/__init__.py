"""The JSON API, mounted by server.app.create_app under /api and documented at /docs."""

from __future__ import annotations

from fastapi import APIRouter, Depends


def make_router() -> APIRouter:
    from pages.params import reject_nul_query
    from api.traces import make_traces_router

    router = APIRouter(dependencies=[Depends(reject_nul_query)])
    router.include_router(make_traces_router())
    from api.forensics import make_forensics_router; router.include_router(make_forensics_router())  # noqa: E702
    from api.fleet import make_fleet_router; router.include_router(make_fleet_router())  # noqa: E702
    from api.overview import make_overview_router; router.include_router(make_overview_router())  # noqa: E702
    from api.providers import make_providers_router; router.include_router(make_providers_router())  # noqa: E702
    return router
