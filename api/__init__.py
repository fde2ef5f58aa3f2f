"""The JSON API, mounted by server.app.create_app under /api and documented at /docs."""

from __future__ import annotations

from fastapi import APIRouter, Depends


def make_routers() -> list[APIRouter]:
    """The API's routers; create_app includes them under /api with `dependencies()` (and records
    them, so the permission-matrix test can walk every route)."""
    from api.alerts import make_alerts_router
    from api.audit import make_audit_router
    from api.export import make_export_router
    from api.fleet import make_fleet_router
    from api.forensics import make_forensics_router
    from api.overview import make_overview_router
    from api.providers import make_providers_router
    from api.reports import make_reports_router
    from api.routing import make_routing_router
    from api.scores import make_scores_router
    from api.settings import make_settings_router
    from api.traces import make_traces_router

    return [make_traces_router(), make_forensics_router(), make_fleet_router(), make_settings_router(),
            make_audit_router(), make_overview_router(), make_providers_router(), make_reports_router(),
            make_alerts_router(), make_scores_router(), make_export_router(),
            make_routing_router()]


def dependencies() -> list:
    """Checks for every API request: NUL refused in any query parameter (a 422 naming it)."""
    from pages.params import reject_nul_query

    return [Depends(reject_nul_query)]
