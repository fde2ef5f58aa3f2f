"""create_app(): one ASGI application built from injected parts, in production and in tests alike."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Iterable

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from access.deps import check, get_session, principal_of
from access.keys import KeyCache
from access.resolver import Denied
from core.permissions import Permission
from core.settings import Settings
from db.engine import make_sessionmaker
from server.docs import docs_page, mount_assets as mount_docs_assets

PARTS = ("collector", "api", "web")


def create_app(
    settings: Settings, *, engine: Engine, ingest=None, parts: Iterable[str] = PARTS,
) -> FastAPI:
    """`ingest` is the collector's IngestService (it owns the batch writer); required when
    the collector part is mounted. `parts` selects what this process serves."""
    parts = set(parts)
    public_docs = "api" in parts and settings.docs_public
    app = FastAPI(
        title="Causeline", version="0.1.0", lifespan=_lifespan,
        description="Flight recorder and forensics backend for AI agents.",
        docs_url=None, redoc_url=None,  # /docs is ours (server/docs.py): served offline
        openapi_url="/openapi.json" if public_docs else None,
    )
    app.state.settings = settings
    app.state.parts = parts
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.keys = ingest.keys if ingest is not None else KeyCache(app.state.sessionmaker)
    app.add_middleware(ApiHeaders)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(OverflowError, _overflow_error)

    # Every router is included through _include, which records it: the permission-matrix test
    # walks app.state.routers (FastAPI offers no public list of included routes).
    app.state.routers = []
    from server.health import MetricsRefused, metrics_refused_handler, make_router as health_router

    _include(app, health_router(settings))
    app.add_exception_handler(MetricsRefused, metrics_refused_handler)
    if "collector" in parts:
        from collector.http import OtlpRefused, make_routers as collector_routers, otlp_refused_handler

        if ingest is None:
            raise ValueError("the collector part needs an IngestService")
        app.state.ingest = ingest
        for router in collector_routers(ingest):
            _include(app, router)
        app.add_exception_handler(OtlpRefused, otlp_refused_handler)
    if "api" in parts:
        from api import dependencies as api_dependencies, make_routers as api_routers

        for router in api_routers():
            _include(app, router, prefix="/api", dependencies=api_dependencies())
        if not public_docs:
            _mount_private_docs(app, login_page="web" in parts)
        else:
            app.get("/docs", include_in_schema=False)(docs_page)
        mount_docs_assets(app)
    if "web" in parts:
        from web import mount as mount_web, routers as web_routers
        from web.login_guard import LoginGuard

        app.state.login_guard = LoginGuard()
        for router in web_routers():
            _include(app, router, include_in_schema=False)
        mount_web(app)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI):
    """Background work owned by the application: the alert evaluator, in a process serving the
    API or the UI (several processes may: one evaluates at a time, alerts/evaluator.py)."""
    settings, job = app.state.settings, None
    if settings.alerts_interval_s > 0 and app.state.parts & {"api", "web"}:
        from alerts.evaluator import AlertJob

        job = app.state.alert_job = AlertJob(app.state.engine, app.state.sessionmaker, settings)
        job.start()
    try:
        yield
    finally:
        if job is not None:
            job.stop()


def _include(app: FastAPI, router: APIRouter, prefix: str = "", **options) -> None:
    app.include_router(router, prefix=prefix, **options)
    app.state.routers.append((prefix, router))


def _mount_private_docs(app: FastAPI, *, login_page: bool) -> None:
    """/openapi.json and /docs for a reader only: a key with the `read` scope or a UI login
    (Swagger UI fetches /openapi.json with the browser's session cookie). A logged-out
    browser asking for /docs is sent to the login page when the UI is served."""
    def reader(browser: bool):
        def dependency(request: Request, session: Session = Depends(get_session)) -> None:
            try:
                check(principal_of(request, session, request.app.state.settings), Permission.READ)
            except Denied as refused:
                has_key = request.headers.get("authorization") or request.headers.get("x-causeline-key")
                if browser and login_page and refused.status == 401 and not has_key:
                    from web.auth import LoginRequired

                    raise LoginRequired() from None
                raise HTTPException(refused.status, detail=refused.message) from None

        dependency.permission = Permission.READ  # type: ignore[attr-defined]
        return dependency

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(reader(browser=False))])
    def openapi_json() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(reader(browser=True))])
    def docs():
        return docs_page()


API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class ApiHeaders:
    """JSON answers carry prompts and user data too: never cached, never content-sniffed.
    Plain ASGI (not BaseHTTPMiddleware), so endpoints still see a client disconnect."""

    PREFIXES = ("/api/", "/openapi.json", "/v1/", "/docs")

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.PREFIXES):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in API_HEADERS.items()
                         if k.lower().encode() not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _data_error(request: Request, exc: DataError) -> JSONResponse:
    """Safety net behind the boundary checks (pages/params.py): a value PostgreSQL refused
    (NUL in text, a number or date out of its range) is the request's fault, not a 500."""
    message = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return JSONResponse({"detail": f"the database refused a value of this request: {message}"}, status_code=400)


async def _overflow_error(request: Request, exc: OverflowError) -> JSONResponse:
    """Safety net: date or number arithmetic on a request's value left the representable range."""
    return JSONResponse({"detail": f"a date or number in this request is out of range ({exc})"}, status_code=422)
