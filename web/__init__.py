"""Server-rendered pages (Jinja2 + htmx), mounted into the app by server.app.create_app."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"


def routers() -> list[APIRouter]:
    """Every page router; create_app includes them (pages are not in the OpenAPI document)."""
    from web.routes_alerts import router as alerts_router
    from web.routes_audit import router as audit_router
    from web.routes_reports import router as reports_router
    from web.routes_export import router as export_router
    from web.routes_evaluation import router as evaluation_router
    from web.routes_auth import router as auth_router
    from web.routes_costs import router as costs_router
    from web.routes_failures import router as failures_router
    from web.routes_oidc import router as oidc_router
    from web.routes_settings import router as settings_router
    from web.routes_traces import router as traces_router
    from web.routes_overview import router as overview_router
    from web.routes_providers import router as providers_router
    from web.routes_replay import router as replay_router
    from web.routes_routing import router as routing_router

    return [auth_router, oidc_router, traces_router, settings_router, audit_router, overview_router,
            providers_router, costs_router, failures_router, reports_router, alerts_router, export_router,
            evaluation_router, routing_router, replay_router]


def mount(app: FastAPI) -> None:
    """What the pages need besides their routes: refusal handlers and the static files."""
    from web.auth import LoginRequired, PageForbidden, login_required_handler, page_forbidden_handler

    app.add_exception_handler(LoginRequired, login_required_handler)
    app.add_exception_handler(PageForbidden, page_forbidden_handler)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
