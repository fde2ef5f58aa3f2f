"""/healthz (the process answers), /readyz (database reachable, schema current), /metrics (`metrics` scope)."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from db.migrate import current_revision, head_revision
from db.queries.auth import bearer_token, find_key

METRICS_SCOPE = "metrics"


def make_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> dict:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: database reachable and migrations current")
    async def readyz(request: Request) -> JSONResponse:
        engine = request.app.state.engine
        settings = request.app.state.settings

        def check() -> tuple[bool, dict]:
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

    @router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics(request: Request) -> PlainTextResponse:
        if not request.app.state.settings.metrics_public:
            secret = bearer_token(request.headers.get("authorization"), request.headers.get("x-causeline-key"))
            if not secret:
                return PlainTextResponse("missing API key (or set CAUSELINE_METRICS_PUBLIC=true)\n", status_code=401)

            def lookup():
                with request.app.state.sessionmaker() as session:
                    return find_key(session, secret)

            found = await to_thread.run_sync(lookup)
            if found is None:
                return PlainTextResponse("unknown or revoked API key\n", status_code=401)
            if METRICS_SCOPE not in found.scopes:
                # The counters are process-wide (every project's ingest): a project's own key
                # does not open them; an operator's key with the `metrics` scope does.
                return PlainTextResponse(
                    f"API key {found.prefix}... lacks the '{METRICS_SCOPE}' scope (it has: "
                    f"{', '.join(sorted(found.scopes)) or 'none'}); create one with "
                    f"`causeline keys create --name prometheus --scopes {METRICS_SCOPE}`\n", status_code=403)
        ingest = getattr(request.app.state, "ingest", None)
        body = generate_latest(ingest.metrics.registry) if ingest is not None else b""
        return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)

    return router
