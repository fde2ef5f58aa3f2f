"""Replay a captured model call against other models (core/replay.py rebuilds the request): each
model asked through judge.ask (purpose `replay`: recorded in judge_calls, not budgeted), side by
side; a model that fails is an error in its own column, the others are still shown."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import sessionmaker

from core.judge_evaluators import VerdictError, judge_messages, parse_verdict
from core.replay import ReplayRequest
from core.settings import Settings
from judge.ask import ask
from judge.client import JudgeError, ModelEndpoint
from judge.prompts import latest

REPLAY_JUDGE = "relevance"


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


@dataclass(frozen=True)
class JudgeScore:
    score: float | None = None  # on the prompt's 1-5 scale
    reasoning: str | None = None
    error: str | None = None
    prompt: str | None = None  # e.g. relevance@1


def judge_answers(sessions: sessionmaker, endpoint: ModelEndpoint, settings: Settings, request: ReplayRequest,
                  answers: list[str | None], *, project_id: int, trace_id: bytes, span_id: bytes,
                  ) -> list[JudgeScore | None]:
    """The relevance judge's verdict on each answer (None where there is no answer, or no judge
    model is configured); asked at the same time, recorded as replay calls."""
    if not settings.judge_model or not any(answers):
        return [None] * len(answers)
    prompt = latest()[REPLAY_JUDGE]
    question = next((m["content"] for m in reversed(request.messages) if m.get("role") == "user"), None)

    def one(answer: str | None) -> JudgeScore | None:
        if not answer:
            return None
        try:
            reply = ask(sessions, endpoint, settings, project_id=project_id, purpose="replay", name=REPLAY_JUDGE,
                        prompt_version=prompt.ref, messages=judge_messages(prompt, question=question, answer=answer),
                        trace_id=trace_id, span_id=span_id, max_tokens=512)
            verdict = parse_verdict(reply.text)
        except JudgeError as exc:
            return JudgeScore(error=f"{exc.kind}: {exc.reason}", prompt=prompt.ref)
        except VerdictError as exc:
            return JudgeScore(error=f"garbage: {exc}", prompt=prompt.ref)
        return JudgeScore(verdict.score, verdict.reasoning, prompt=prompt.ref)

    with ThreadPoolExecutor(max_workers=len(answers), thread_name_prefix="replay-judge") as pool:
        return list(pool.map(one, answers))
