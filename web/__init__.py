"""Server-rendered pages (Jinja2 + htmx), mounted into the app by server.app.create_app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"


def mount(app: FastAPI) -> None:
    from web.auth import LoginRequired, PageForbidden, login_required_handler, page_forbidden_handler
    from web.routes_auth import router as auth_router
    from web.routes_costs import router as costs_router
    from web.routes_failures import router as failures_router
    from web.routes_traces import router as traces_router

    # Pages are not part of the JSON API's OpenAPI document.
    app.include_router(auth_router, include_in_schema=False)
    app.include_router(traces_router, include_in_schema=False)
    app.include_router(costs_router, include_in_schema=False)
    app.include_router(failures_router, include_in_schema=False)
    app.add_exception_handler(LoginRequired, login_required_handler)
    app.add_exception_handler(PageForbidden, page_forbidden_handler)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
