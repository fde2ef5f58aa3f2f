"""Rows of judge_calls: recording a call to the model endpoint and what a project spent today."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from core.judge_budget import Spent
from db.models import JudgeCall


def record_call(session: Session, *, project_id: int, purpose: str, name: str, model: str,
                prompt_version: str | None = None, trace_id: bytes | None = None, span_id: bytes | None = None,
                input_tokens: int | None = None, output_tokens: int | None = None,
                cost_usd: Decimal | None = None, latency_ms: float | None = None, outcome: str = "ok",
                error: str | None = None) -> int:
    """Appends one call; returns its id. Does not commit."""
    return session.execute(insert(JudgeCall).values(
        project_id=project_id, purpose=purpose, name=name, model=model, prompt_version=prompt_version,
        trace_id=trace_id, span_id=span_id, input_tokens=input_tokens, output_tokens=output_tokens,
        cost_usd=cost_usd, latency_ms=latency_ms, outcome=outcome, error=error,
    ).returning(JudgeCall.id)).scalar_one()


def spent_today(session: Session, project_id: int, *, now: datetime | None = None,
                purposes: tuple[str, ...] = ("evaluator", "attribution")) -> Spent:
    """Calls, tokens and priced cost of the project's calls since the start of the UTC day."""
    now = now or datetime.now(timezone.utc)
    day = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    calls, tokens, cost = session.execute(
        select(func.count(),
               func.coalesce(func.sum(func.coalesce(JudgeCall.input_tokens, 0) + func.coalesce(JudgeCall.output_tokens, 0)), 0),
               func.coalesce(func.sum(JudgeCall.cost_usd), 0))
        .where(JudgeCall.project_id == project_id, JudgeCall.created_at >= day, JudgeCall.purpose.in_(purposes))
    ).one()
    return Spent(int(calls), int(tokens), Decimal(cost))
