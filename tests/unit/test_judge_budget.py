"""core/judge_budget.py: when a call to the model endpoint may start."""

from decimal import Decimal

import pytest

from core.judge_budget import Budget, Spent, estimate_tokens, refusal

BUDGET = Budget(tokens_per_day=10_000, usd_per_day=Decimal("1.00"))


@pytest.mark.parametrize(("spent", "planned", "refused_because"), [
    (Spent(), 1_000, None),
    (Spent(3, 8_999, Decimal("0.5")), 1_000, None),              # exactly fills the day
    (Spent(3, 9_001, Decimal("0.5")), 1_000, "token budget"),
    (Spent(0, 0, Decimal(0)), 10_001, "token budget"),           # one call larger than a day
    (Spent(9, 100, Decimal("1.00")), 10, "cost budget"),         # USD reached
    (Spent(9, 100, Decimal("0.9999")), 10, None),
])
def test_refusal(spent, planned, refused_because):
    reason = refusal(spent, BUDGET, planned)
    if refused_because is None:
        assert reason is None
    else:
        assert reason is not None and refused_because in reason


def test_zero_budget_refuses_everything():
    assert refusal(Spent(), Budget(0, Decimal(0)), 1) is not None


def test_estimate_grows_with_content():
    short = estimate_tokens([{"role": "user", "content": "hi"}])
    long = estimate_tokens([{"role": "user", "content": "word " * 3000}])
    assert 0 < short < 20 and 4000 < long < 6000
