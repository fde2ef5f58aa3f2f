"""The daily budget of calls to the model endpoint, per project (pure).

A call may start when the project's spend of the UTC day (tokens and USD, from judge_calls) leaves
room for what the call may at most use: its prompt estimate plus its `max_tokens`. An unpriced call
counts its tokens only. Several processes checking at once may overshoot by the calls in flight;
the check is made again before every call, so the overshoot is bounded by concurrency, not time.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Spent:
    calls: int = 0
    tokens: int = 0
    cost_usd: Decimal = Decimal(0)


@dataclass(frozen=True)
class Budget:
    tokens_per_day: int
    usd_per_day: Decimal


def estimate_tokens(messages: list[dict]) -> int:
    """A generous prompt-size estimate (about 3 characters per token), without a tokenizer."""
    return sum(len(str(m.get("content") or "")) for m in messages) // 3 + 8 * len(messages)


def refusal(spent: Spent, budget: Budget, planned_tokens: int) -> str | None:
    """Why a call of at most `planned_tokens` may not start now, or None when it may."""
    if spent.tokens + planned_tokens > budget.tokens_per_day:
        return (f"daily token budget reached: {spent.tokens:,} of {budget.tokens_per_day:,} tokens used, "
                f"this call may need {planned_tokens:,} (CAUSELINE_JUDGE_DAILY_TOKENS)")
    if spent.cost_usd >= budget.usd_per_day:
        return (f"daily cost budget reached: ${spent.cost_usd:.4f} of ${budget.usd_per_day:.2f} "
                "(CAUSELINE_JUDGE_DAILY_USD)")
    return None
