"""/healthz (the process answers), /readyz (database reachable, schema current), /metrics (`metrics` scope)."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.requests import HTTPConnection

from access.deps import requires
from access.resolver import Denied
from core.permissions import Permission
from core.settings import Settings


class MetricsRefused(HTTPException):
    """/metrics refusals in plain text, as a scraper's log shows them."""


def _plain_denied(request: HTTPConnection, refused: Denied) -> HTTPException:
    hint = " (or set CAUSELINE_METRICS_PUBLIC=true)" if refused.status == 401 else ""
    return MetricsRefused(refused.status, detail=refused.message + hint)


async def metrics_refused_handler(request: Request, exc: MetricsRefused) -> PlainTextResponse:
    return PlainTextResponse(exc.detail + "\n", status_code=exc.status_code)


def make_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> dict:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: database reachable and migrations current")
    async def readyz(request: Request) -> JSONResponse:
        engine = request.app.state.engine
        settings = request.app.state.settings

        def check() -> tuple[bool, dict]:
            # Alembic on the first probe, not at start-up: a process nobody probes saves ~8 MB.
            from db.migrate import current_revision, head_revision

            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                current = current_revision(engine)
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                return False, {"database": f"unreachable: {type(exc).__name__}"}
            head = head_revision(settings.database_url or "postgresql://unused")
            if current != head:
                return False, {"database": "ok", "migrations": f"at {current}, head is {head}: run `causeline migrate`"}
            return True, {"database": "ok", "migrations": current}

        ready, detail = await to_thread.run_sync(check)
        return JSONResponse({"status": "ok" if ready else "unavailable", **detail}, status_code=200 if ready else 503)

    metrics_guard = [] if settings.metrics_public else [Depends(requires(Permission.METRICS, _plain_denied))]

    @router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse,
                dependencies=metrics_guard)
    async def metrics(request: Request) -> PlainTextResponse:
        # The counters are process-wide (every project's ingest): a project's read key does not
        # open them; a key with the `metrics` scope (or an admin's login) does.
        ingest = getattr(request.app.state, "ingest", None)
        body = generate_latest(ingest.metrics.registry) if ingest is not None else b""
        return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)

    return router
