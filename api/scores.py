"""POST /api/scores, GET /api/scores, GET /api/scores/summary: evaluation scores (docs/evaluation.md)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from access.audit import record
from access.csrf import require_same_site
from api.deps import AppSettings, DbSession, ReadPrincipal, api_requires
from api.traces import TraceIdHex
from core.permissions import Permission, Principal
from core.evaluators import RuleError
from core.redaction import redact_text
from core.scores import ScoreError, parse_scores, redacted
from db.queries.evaluation import delete_rule, save_rule
from db.queries.fleet import MAX_WINDOW
from db.queries.redaction import redaction_policy
from db.queries.scores import insert_scores, list_scores
from pages.params import UtcTime
from pages.schemas import ErrorBody
from pages.evaluation import EvaluatorsOut, RuleIn, RuleOut, evaluators_data
from pages.scores import ScoreIn, ScoreList, ScoreSummary, ScoresWritten, score_out, score_summary

ScoreWriter = Annotated[Principal, Depends(api_requires(Permission.WRITE_SCORES))]
SettingsManager = Annotated[Principal, Depends(api_requires(Permission.MANAGE_SETTINGS))]
_ERRORS = {
    401: {"model": ErrorBody, "description": "No credentials, or an unknown/revoked key or expired login."},
    403: {"model": ErrorBody, "description": "The key lacks the needed scope (`ingest` to write, `read` to read)."},
}
_BODY_SCHEMA = {"oneOf": [ScoreIn.model_json_schema(ref_template="#/components/schemas/{model}"),
                          {"type": "array", "items": {"$ref": "#/components/schemas/ScoreIn"}}]}


MAX_BODY_BYTES = 4 * 1024 * 1024  # 1,000 scores with 4,000-character comments fit


async def _bounded_body(request: Request) -> bytes:
    """The body, refused with 413 past MAX_BODY_BYTES (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, f"the body is {declared} bytes; at most {MAX_BODY_BYTES} are accepted")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413, f"the body exceeds {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def make_scores_router() -> APIRouter:
    router = APIRouter(tags=["scores"], responses=_ERRORS)

    @router.post(
        "/scores", response_model=ScoresWritten, summary="Store evaluation scores (one object or a list)",
        responses={400: {"model": ErrorBody, "description": "A score is invalid; nothing was stored."}},
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _BODY_SCHEMA}}}},
    )
    async def post_scores(request: Request, principal: ScoreWriter, session: DbSession) -> ScoresWritten:
        require_same_site(request, principal)
        try:
            body = json.loads(await _bounded_body(request))
        except (ValueError, RecursionError):
            raise HTTPException(400, "the body must be JSON: a score object or a list of them") from None
        try:
            scores = parse_scores(body)
        except ScoreError as exc:
            raise HTTPException(400, str(exc)) from None
        policy = redaction_policy(session, principal.project_id)  # comments may quote content: redacted like it
        stored = insert_scores(session, principal.project_id, redacted(scores, lambda t: redact_text(t, policy)[0]))
        session.commit()
        return ScoresWritten(received=len(scores), stored=stored)

    @router.get("/scores", response_model=ScoreList, summary="Scores, newest first")
    def get_scores(
        principal: ReadPrincipal, session: DbSession,
        trace_id: Annotated[TraceIdHex | None, Query(description="Only this run's scores.")] = None,
        name: Annotated[str | None, Query(max_length=200)] = None,
        source: Annotated[str | None, Query(max_length=100)] = None,
        since: Annotated[UtcTime | None, Query(description="Created at or after (ISO-8601, no offset = UTC).")] = None,
        until: Annotated[UtcTime | None, Query(description="Created before.")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> ScoreList:
        found = list_scores(session, principal.project_id, trace_id=bytes.fromhex(trace_id) if trace_id else None,
                            name=name or None, source=source or None, since=since, until=until, limit=limit)
        return ScoreList(scores=[score_out(s, content=principal.sees_content) for s in found])

    @router.get("/scores/summary", response_model=ScoreSummary,
                summary="Scores per name and per model, agent or UTC day (count, mean, min, max, labels)")
    def get_summary(
        principal: ReadPrincipal, session: DbSession,
        by: Literal["model", "agent", "day"] = "model",
        name: Annotated[str | None, Query(max_length=200)] = None,
        since: Annotated[UtcTime | None, Query(description="Default: 7 days before `until`.")] = None,
        until: Annotated[UtcTime | None, Query(description="Default: now.")] = None,
    ) -> ScoreSummary:
        until = until or datetime.now(timezone.utc)
        since = since or until - timedelta(days=7)
        if since >= until or until - since > MAX_WINDOW:
            raise HTTPException(422, f"the window must be non-empty and at most {MAX_WINDOW.days} days")
        return score_summary(session, principal.project_id, by=by, since=since, until=until, name=name or None)

    @router.get("/evaluators", response_model=EvaluatorsOut,
                summary="The built-in evaluators, the project's rules, the LLM judge and what it cost today")
    def get_evaluators(principal: ReadPrincipal, session: DbSession, settings: AppSettings) -> EvaluatorsOut:
        return evaluators_data(session, principal, settings)

    @router.put("/evaluators/{name}", response_model=RuleOut, summary="Create or replace an evaluator rule",
                responses={400: {"model": ErrorBody, "description": "The rule is invalid."}})
    def put_evaluator(request: Request, name: str, rule: RuleIn, principal: SettingsManager,
                      session: DbSession) -> RuleOut:
        require_same_site(request, principal)
        try:
            save_rule(session, principal.project_id, name, rule.kind, rule.config, rule.enabled)
        except RuleError as exc:
            raise HTTPException(400, str(exc)) from None
        record(session, request, principal, "evaluator_rule.save", target=name, details={"kind": rule.kind})
        session.commit()
        return RuleOut(name=name, kind=rule.kind, config=rule.config, enabled=rule.enabled)

    @router.delete("/evaluators/{name}", status_code=204, summary="Remove an evaluator rule",
                   responses={404: {"model": ErrorBody, "description": "No such rule."}})
    def delete_evaluator(request: Request, name: str, principal: SettingsManager, session: DbSession) -> None:
        require_same_site(request, principal)
        if not delete_rule(session, principal.project_id, name):
            raise HTTPException(404, f"no evaluator rule {name!r} in this project")
        record(session, request, principal, "evaluator_rule.delete", target=name)
        session.commit()

    return router
