"""A plain-language routing suggestion, only where the data supports one. Pure, no I/O.

The rule (docs/routing.md), for two models that served the same step (or agent, or task):
a cheaper model is suggested in place of a dearer one when

1. both served it at least MIN_CALLS times;
2. the cheaper one's cost per successful call is at most MAX_COST_RATIO of the dearer one's;
3. its failure rate is not materially worse: the one-sided 95% upper confidence bound of the
   difference (cheaper minus dearer), by Newcombe's hybrid score method from the two Wilson
   intervals, is at most MARGIN (5 percentage points);
4. no evaluation score both have at least MIN_SCORES of is lower for the cheaper model by more
   than SCORE_MARGIN of the dearer one's mean.

One suggestion per dearer model: the cheapest model that passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

from core.routing import ModelFigures

MIN_CALLS = 50
MAX_COST_RATIO = Decimal("0.5")
MARGIN = 0.05
Z_ONE_SIDED_95 = 1.6449
MIN_SCORES = 10
SCORE_MARGIN = 0.05


def wilson(failures: int, n: int, z: float = Z_ONE_SIDED_95) -> tuple[float, float]:
    """Wilson score interval of a proportion (failures / n)."""
    if n <= 0:
        return 0.0, 1.0
    p = failures / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_upper(cheap_failures: int, cheap_n: int, dear_failures: int, dear_n: int,
                     z: float = Z_ONE_SIDED_95) -> float:
    """Upper confidence bound of p_cheap - p_dear (Newcombe 1998, method 10)."""
    p1, p2 = cheap_failures / cheap_n, dear_failures / dear_n
    _, u1 = wilson(cheap_failures, cheap_n, z)
    l2, _ = wilson(dear_failures, dear_n, z)
    return (p1 - p2) + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


@dataclass(frozen=True, slots=True)
class Suggestion:
    group: str
    cheaper: str
    dearer: str
    text: str
    cheaper_calls: int
    cheaper_failure_rate: float
    dearer_calls: int
    dearer_failure_rate: float
    cheaper_cost_per_success: Decimal
    dearer_cost_per_success: Decimal
    cost_ratio: float  # cheaper / dearer, per successful call
    difference_upper: float  # the bound of rule 3
    rule: str


RULE = (f"both models ≥ {MIN_CALLS} calls; cost per successful call ≤ {MAX_COST_RATIO:.0%} of the dearer one's; "
        f"one-sided 95% upper bound of the failure-rate difference ≤ {MARGIN:.0%} points (Newcombe/Wilson); "
        f"no shared score (≥ {MIN_SCORES} each) lower by more than {SCORE_MARGIN:.0%}")


def _fraction(ratio: float) -> str:
    """0.066 -> "1/15 the cost"; 0.4 -> "40% of the cost"."""
    if ratio <= 1 / 3:
        return f"1/{round(1 / ratio):,} the cost" if ratio > 0 else "no cost"
    return f"{ratio:.0%} of the cost"


def _scores_hold(cheap: ModelFigures, dear: ModelFigures) -> bool:
    for name, d in dear.scores.items():
        c = cheap.scores.get(name)
        if c is None or c.count < MIN_SCORES or d.count < MIN_SCORES:
            continue
        if c.mean < d.mean - SCORE_MARGIN * abs(d.mean):
            return False
    return True


def compare(group: str, cheap: ModelFigures, dear: ModelFigures) -> Suggestion | None:
    """The suggestion to use `cheap` instead of `dear` for `group`, or None when the data does not
    support it."""
    if cheap.calls < MIN_CALLS or dear.calls < MIN_CALLS:
        return None
    if cheap.cost_per_success is None or dear.cost_per_success is None or dear.cost_per_success <= 0:
        return None
    if cheap.cost_per_success > dear.cost_per_success * MAX_COST_RATIO:
        return None
    bound = difference_upper(cheap.failures, cheap.calls, dear.failures, dear.calls)
    if bound > MARGIN or not _scores_hold(cheap, dear):
        return None
    ratio = float(cheap.cost_per_success / dear.cost_per_success)
    text = (f"{cheap.model} served “{group}” {cheap.calls:,} times with {cheap.failure_rate:.1%} failures "
            f"at {_fraction(ratio)} of {dear.model} per successful call "
            f"(${cheap.cost_per_success:.5f} vs ${dear.cost_per_success:.5f}; "
            f"{dear.model}: {dear.calls:,} calls, {dear.failure_rate:.1%} failures). "
            f"Consider routing “{group}” to {cheap.model}.")
    return Suggestion(group, cheap.model, dear.model, text, cheap.calls, cheap.failure_rate, dear.calls,
                      dear.failure_rate, cheap.cost_per_success, dear.cost_per_success, ratio, bound, RULE)


def suggest(group: str, models: Sequence[ModelFigures]) -> list[Suggestion]:
    """At most one suggestion per dearer model: the cheapest model that passes every rule."""
    priced = sorted((m for m in models if m.cost_per_success is not None), key=lambda m: (m.cost_per_success, m.model))
    out = []
    for dear in reversed(priced):
        for cheap in priced:
            if cheap is dear or cheap.cost_per_success >= dear.cost_per_success:
                break
            found = compare(group, cheap, dear)
            if found is not None:
                out.append(found)
                break
    return out
