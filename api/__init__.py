"""The JSON API, mounted by server.app.create_app under /api and documented at /docs."""

from __future__ import annotations

from fastapi import APIRouter


def make_router() -> APIRouter:
    from api.traces import make_traces_router

    router = APIRouter()
    router.include_router(make_traces_router())
    return router
