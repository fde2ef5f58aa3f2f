"""Ask the model endpoint on behalf of a project: check the daily budget, call outside any
transaction (a call may take a minute; no database connection or lock is held meanwhile), and record
the call, answered or failed, in judge_calls.

Replays (purpose `replay`) are asked by a person with content access and are recorded but not
budgeted; evaluations and attributions share the project's daily budget.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import sessionmaker

from core.judge_budget import Budget, estimate_tokens, refusal
from core.settings import Settings
from db.queries.judge_calls import record_call, spent_today
from judge.client import JudgeError, ModelEndpoint, Reply

BUDGETED = ("evaluator", "attribution")


def budget_of(settings: Settings) -> Budget:
    return Budget(settings.judge_daily_tokens, Decimal(str(settings.judge_daily_usd)))


def ask(sessions: sessionmaker, endpoint: ModelEndpoint, settings: Settings, *, project_id: int, purpose: str,
        name: str, messages: list[dict], model: str | None = None, prompt_version: str | None = None,
        trace_id: bytes | None = None, span_id: bytes | None = None, max_tokens: int = 1024,
        json_reply: bool = True) -> Reply:
    """The reply; raises JudgeError (kind `over_budget` when the day's budget has no room, then
    nothing is sent and nothing recorded)."""
    model = model or settings.judge_model
    if purpose in BUDGETED:
        with sessions() as session:
            spent = spent_today(session, project_id, purposes=BUDGETED)
        reason = refusal(spent, budget_of(settings), estimate_tokens(messages) + max_tokens)
        if reason:
            raise JudgeError("over_budget", reason)
    common = dict(project_id=project_id, purpose=purpose, name=name, model=model, prompt_version=prompt_version,
                  trace_id=trace_id, span_id=span_id)
    try:
        reply = endpoint.complete(messages, model=model, max_tokens=max_tokens, json_reply=json_reply)
    except JudgeError as exc:
        with sessions.begin() as session:
            record_call(session, **common, outcome=exc.kind, error=exc.reason[:500])
        raise
    with sessions.begin() as session:
        record_call(session, **{**common, "model": reply.model}, input_tokens=reply.input_tokens,
                    output_tokens=reply.output_tokens, cost_usd=reply.cost_usd, latency_ms=reply.latency_ms)
    return reply
