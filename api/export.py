"""GET /api/export/finetune/preview and GET /api/export/finetune: fine-tuning data as JSON Lines
(docs/evaluation.md). Captured content leaves the building: `read_content` only, audited."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from access.audit import record
from api.deps import AppSettings, DbSession, api_requires
from core.permissions import Permission, Principal
from db.queries.finetune import ExportFilters
from pages.export import ExportPreview, export_preview, export_stream
from pages.params import UtcTime
from pages.schemas import ErrorBody

ContentReader = Annotated[Principal, Depends(api_requires(Permission.READ_CONTENT))]
_ERRORS = {
    401: {"model": ErrorBody, "description": "No credentials, or an unknown/revoked key or expired login."},
    403: {"model": ErrorBody, "description": "Needs `read_content` (captured prompts and completions)."},
    422: {"model": ErrorBody, "description": "A filter is invalid."},
}


def export_filters(
    since: Annotated[UtcTime | None, Query(description="Calls that started at or after (default: 7 days before until).")] = None,
    until: Annotated[UtcTime | None, Query(description="Calls that started before (default: now).")] = None,
    outcome: Annotated[Literal["ok", "recovered", "failed", "any"], Query(
        description="The run's outcome; by default successful runs only.")] = "ok",
    agent: Annotated[str | None, Query(max_length=200)] = None,
    step: Annotated[str | None, Query(max_length=200, description="The call's span name or its parent's.")] = None,
    model: Annotated[str | None, Query(max_length=200, description="Requested or served model.")] = None,
    score_name: Annotated[str | None, Query(max_length=200, description="Only calls (or runs) with this score.")] = None,
    min_score: Annotated[float | None, Query(allow_inf_nan=False, description=(
        "Only calls (or runs) with a score (of score_name, if given) of at least this.")) ] = None,
) -> ExportFilters:
    until = until or datetime.now(timezone.utc)
    since = since or until - timedelta(days=7)
    try:
        return ExportFilters(since=since, until=until, outcome=None if outcome == "any" else outcome,
                             agent=agent or None, step=step or None, model=model or None,
                             score_name=score_name or None, min_score=min_score)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


Filters = Annotated[ExportFilters, Depends(export_filters)]


def make_export_router() -> APIRouter:
    router = APIRouter(tags=["export"], responses=_ERRORS)

    @router.get("/export/finetune/preview", response_model=ExportPreview,
                summary="What a fine-tuning export would write: calls, distinct examples, tokens")
    def finetune_preview(principal: ContentReader, session: DbSession, settings: AppSettings,
                         filters: Filters) -> ExportPreview:
        return export_preview(session, principal.project_id, filters, settings.finetune_max_calls)

    @router.get("/export/finetune", summary="Fine-tuning examples as JSON Lines (streamed)",
                response_class=StreamingResponse,
                responses={200: {"content": {"application/x-ndjson": {}}, "description": "One example per line."}})
    def finetune_export(request: Request, principal: ContentReader, session: DbSession, settings: AppSettings,
                        filters: Filters, format: Literal["openai", "generic"] = "openai") -> StreamingResponse:
        record(session, request, principal, "export", target="finetune", details={
            "format": format, "since": filters.since.isoformat(), "until": filters.until.isoformat(),
            "outcome": filters.outcome or "any", "agent": filters.agent, "step": filters.step, "model": filters.model,
            "score_name": filters.score_name, "min_score": filters.min_score})
        session.commit()
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        return StreamingResponse(
            export_stream(request.app.state.sessionmaker, principal.project_id, filters, format,
                          settings.finetune_max_calls),
            media_type="application/x-ndjson",
            headers={"Content-Disposition": f'attachment; filename="finetune-{principal.project_slug}-{stamp}.jsonl"'})

    return router
