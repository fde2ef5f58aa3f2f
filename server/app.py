"""create_app(): one ASGI application built from injected parts, in production and in tests alike."""

from __future__ import annotations

from typing import Iterable

from fastapi import FastAPI
from sqlalchemy import Engine

from core.settings import Settings
from db.engine import make_sessionmaker

PARTS = ("collector", "api", "web")


def create_app(
    settings: Settings, *, engine: Engine, ingest=None, parts: Iterable[str] = PARTS,
) -> FastAPI:
    """`ingest` is the collector's IngestService (it owns the batch writer); required when
    the collector part is mounted. `parts` selects what this process serves."""
    parts = set(parts)
    app = FastAPI(
        title="Causeline", version="0.1.0",
        description="Flight recorder and forensics backend for AI agents.",
        docs_url="/docs" if "api" in parts else None, redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)

    from server.health import make_router as health_router

    app.include_router(health_router())
    if "collector" in parts:
        from collector.http import make_router as collector_router

        if ingest is None:
            raise ValueError("the collector part needs an IngestService")
        app.state.ingest = ingest
        app.include_router(collector_router(ingest))
    if "api" in parts:
        from api import make_router as api_router

        app.include_router(api_router(), prefix="/api")
    if "web" in parts:
        from web import mount as mount_web

        mount_web(app)
    return app
