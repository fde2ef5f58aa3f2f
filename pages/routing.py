"""The Routing page (GET /api/routing and /routing): per workflow step, agent or task, every model
that served it, the routing decisions recorded by routers, and suggestions where the data
supports one (core/routing.py, core/routing_advice.py; docs/routing.md). Money is a decimal
string in USD; rates are fractions from 0 to 1."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from core.routing import GROUPS, decision_figures, summarize
from core.routing_advice import RULE, suggest
from core.window import Window
from db.queries.routing import MAX_CALLS, routing_facts


class RoutingWindow(BaseModel):
    since: datetime
    until: datetime = Field(description="Exclusive.")
    range: str = Field(description="A quick range (15m, 1h, 24h, 7d, 30d) or 'custom'.")


class ScoreMeanOut(BaseModel):
    count: int
    mean: float = Field(description="Mean of numeric and boolean scores (for a boolean: the share true).")


class ModelOut(BaseModel):
    model: str = Field(description="The requested model (the served one when none was requested).")
    calls: int
    failures: int
    failure_rate: float
    failures_by_class: dict[str, int]
    p50_ms: float | None
    p95_ms: float | None
    cost_usd: str | None = Field(description="Spent on this model here, failed calls included; null when unpriced.")
    unpriced_calls: int
    cost_per_success_usd: str | None = Field(description="cost_usd / successful calls; null when none succeeded "
                                                         "or nothing was priced.")
    scores: dict[str, ScoreMeanOut]
    fallbacks_from: dict[str, int] = Field(description="Took over from these models after they failed (how often).")
    fallbacks_to: dict[str, int] = Field(description="These models took over after this one failed.")


class GroupOut(BaseModel):
    group: str = Field(description="The step, agent or task; `(none)` for calls outside any.")
    calls: int
    models: list[ModelOut]


class DecisionOut(BaseModel):
    router: str
    group: str
    chosen: str
    reason: str
    candidates: list[str]
    decisions: int
    chosen_failed: int = Field(description="Decisions after which a call of the chosen model failed "
                                           "(a retry or fallback may have recovered).")
    chosen_failed_rate: float
    gave_up: int = Field(description="Decisions under which no model call succeeded.")
    example_trace_id: str


class SuggestionOut(BaseModel):
    group: str
    cheaper: str
    dearer: str
    text: str = Field(description="The suggestion in plain language, with its numbers.")
    cheaper_calls: int
    cheaper_failure_rate: float
    dearer_calls: int
    dearer_failure_rate: float
    cheaper_cost_per_success_usd: str
    dearer_cost_per_success_usd: str
    cost_ratio: float
    failure_difference_upper: float = Field(description="One-sided 95% upper bound of the failure-rate "
                                                        "difference, cheaper minus dearer.")


class RoutingOut(BaseModel):
    by: str = Field(description="step, agent or task (the run's root span name).")
    window: RoutingWindow
    groups: list[GroupOut]
    decisions: list[DecisionOut]
    suggestions: list[SuggestionOut]
    rule: str = Field(description="When a suggestion is made.")
    truncated: bool = Field(description=f"The window held more than {MAX_CALLS:,} model calls: the newest were read.")


def _money(value) -> str | None:
    return None if value is None else format(value, "f")


def routing_data(session: Session, project_id: int, window: Window, by: str) -> RoutingOut:
    if by not in GROUPS:
        raise ValueError(f"by must be one of {', '.join(GROUPS)}")
    facts = routing_facts(session, project_id, window.since, window.until)
    groups = summarize(facts.calls, by, facts.scores)
    suggestions = [s for g in groups for s in suggest(g.group, g.models)]
    return RoutingOut(
        by=by, window=RoutingWindow(since=window.since, until=window.until, range=window.range),
        groups=[GroupOut(group=g.group, calls=g.calls, models=[ModelOut(
            model=m.model, calls=m.calls, failures=m.failures, failure_rate=round(m.failure_rate, 6),
            failures_by_class=m.failures_by_class, p50_ms=m.p50_ms, p95_ms=m.p95_ms, cost_usd=_money(m.cost_usd),
            unpriced_calls=m.unpriced_calls, cost_per_success_usd=_money(m.cost_per_success),
            scores={n: ScoreMeanOut(count=s.count, mean=s.mean) for n, s in m.scores.items()},
            fallbacks_from=m.fallbacks_from, fallbacks_to=m.fallbacks_to) for m in g.models]) for g in groups],
        decisions=[DecisionOut(router=d.router, group=d.group, chosen=d.chosen, reason=d.reason,
                               candidates=list(d.candidates), decisions=d.decisions, chosen_failed=d.chosen_failed,
                               chosen_failed_rate=round(d.failed_rate, 6), gave_up=d.gave_up,
                               example_trace_id=d.example_trace)
                   for d in decision_figures(facts.decisions, facts.calls, by)],
        suggestions=[SuggestionOut(group=s.group, cheaper=s.cheaper, dearer=s.dearer, text=s.text,
                                   cheaper_calls=s.cheaper_calls, cheaper_failure_rate=round(s.cheaper_failure_rate, 6),
                                   dearer_calls=s.dearer_calls, dearer_failure_rate=round(s.dearer_failure_rate, 6),
                                   cheaper_cost_per_success_usd=_money(s.cheaper_cost_per_success),
                                   dearer_cost_per_success_usd=_money(s.dearer_cost_per_success),
                                   cost_ratio=round(s.cost_ratio, 6),
                                   failure_difference_upper=round(s.difference_upper, 6)) for s in suggestions],
        rule=RULE, truncated=facts.truncated)
