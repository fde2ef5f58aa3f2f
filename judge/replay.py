"""Replay a captured model call against other models (core/replay.py rebuilds the request): each
model asked through judge.ask (purpose `replay`: recorded in judge_calls, not budgeted), side by
side; a model that fails is an error in its own column, the others are still shown."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import sessionmaker

from core.replay import ReplayRequest
from core.settings import Settings
from judge.ask import ask
from judge.client import JudgeError, ModelEndpoint


@dataclass(frozen=True)
class Outcome:
    model: str  # as asked
    answered_by: str | None = None
    text: str | None = None
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: Decimal | None = None
    error: str | None = None  # "<kind>: <reason>"


def replay(sessions: sessionmaker, endpoint: ModelEndpoint, settings: Settings, request: ReplayRequest, models: list[str],
           *, project_id: int, trace_id: bytes, span_id: bytes) -> list[Outcome]:
    """One outcome per model, in the order given; the models are asked at the same time."""
    def one(model: str) -> Outcome:
        try:
            reply = ask(sessions, endpoint, settings, project_id=project_id, purpose="replay", name="replay",
                        messages=request.messages, model=model, trace_id=trace_id, span_id=span_id,
                        max_tokens=request.max_tokens, json_reply=False)
        except JudgeError as exc:
            return Outcome(model, error=f"{exc.kind}: {exc.reason}")
        return Outcome(model, reply.model, reply.text, reply.latency_ms, reply.input_tokens, reply.output_tokens,
                       reply.cost_usd)
    if not models:
        return []
    with ThreadPoolExecutor(max_workers=len(models), thread_name_prefix="replay") as pool:
        return list(pool.map(one, models))
