"""Replay of a captured model call from its span detail (htmx): the request rebuilt from the
captured messages (core/replay.py) and sent to each model of CAUSELINE_REPLAY_MODELS through the
configured endpoint (judge/replay.py), shown side by side with the original. Only for people who
may read captured content; a form POST from this site only; every replay in the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from access.audit import record
from access.csrf import same_origin
from core.evaluators import output_text
from core.permissions import Permission, Principal
from core.replay import ReplayRefused, parse_models, replay_request
from core.settings import Settings
from core.span import is_model_call
from db.queries.traces import get_span
from judge.client import ModelEndpoint
from judge.replay import judge_answers, replay
from web.auth import AppSettings, DbSession, page_requires
from web.render import render
from web.views import HEX16, HEX32, parse_hex

router = APIRouter()
ContentReader = Annotated[Principal, Depends(page_requires(Permission.READ_CONTENT))]


def replay_models_for(settings: Settings | None, viewer: Principal, span) -> list[str]:
    """The models the span detail offers to replay this span against (none: no form)."""
    if settings is None or not viewer.sees_content or not is_model_call(span.category):
        return []
    if ModelEndpoint.from_settings(settings) is None:
        return []
    return parse_models(settings.replay_models)


def _fragment(request: Request, status: int = 200, **context):
    return render(request, "_replay.html", {"error": None, "original": None, "outcomes": [], "note": None,
                                            "original_judge": None, "judges": [], **context},
                  status_code=status)


@router.post("/traces/{trace_id}/spans/{span_id}/replay")
def replay_call(request: Request, trace_id: str, span_id: str, viewer: ContentReader, session: DbSession,
                settings: AppSettings):
    if not same_origin(request):
        return _fragment(request, 403, error="This replay was not asked from this site. Reload the page and try again.")
    endpoint, models = ModelEndpoint.from_settings(settings), parse_models(settings.replay_models)
    if endpoint is None or not models:
        return _fragment(request, error="Replay is not configured: it needs CAUSELINE_JUDGE_BASE_URL and "
                                        "CAUSELINE_REPLAY_MODELS (docs/configuration.md).")
    trace_bytes, span_bytes = parse_hex(trace_id, HEX32), parse_hex(span_id, HEX16)
    span = get_span(session, viewer.project_id, trace_bytes, span_bytes) if trace_bytes and span_bytes else None
    if span is None:
        return _fragment(request, 404, error="No such span in this project.")
    target = f"{trace_bytes.hex()}/{span_bytes.hex()}"
    try:
        if not is_model_call(span.category):
            raise ReplayRefused("only model calls can be replayed")
        asked = replay_request(span.input, span.attributes)
    except ReplayRefused as exc:
        record(session, request, viewer, "replay", target=target, outcome="refused", details={"reason": str(exc)})
        session.commit()
        return _fragment(request, error=f"Not replayed: {exc}.")
    record(session, request, viewer, "replay", target=target, details={"models": ", ".join(models)})
    session.commit()  # recorded before anything is sent; no transaction is held during the calls
    outcomes = replay(request.app.state.sessionmaker, endpoint, settings, asked, models, project_id=viewer.project_id,
                      trace_id=trace_bytes, span_id=span_bytes)
    original = {"model": span.response_model or span.request_model or "(unknown)", "text": output_text(span.output),
                "latency_ms": span.duration_ns / 1e6, "input_tokens": span.input_tokens,
                "output_tokens": span.output_tokens, "cost_usd": None if span.cost_source == "unpriced" else span.cost_usd,
                "failed": span.status == "error", "error": span.status_message}
    judged = judge_answers(request.app.state.sessionmaker, endpoint, settings, asked,
                           [original["text"]] + [o.text for o in outcomes], project_id=viewer.project_id,
                           trace_id=trace_bytes, span_id=span_bytes)
    note = "Tool calls and tool results of the captured prompt were left out." if asked.dropped_parts else None
    return _fragment(request, original=original, outcomes=outcomes, note=note, sent=len(asked.messages),
                     original_judge=judged[0], judges=judged[1:])
