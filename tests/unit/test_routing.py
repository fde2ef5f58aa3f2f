"""core.routing and core.routing_advice: grouping, figures, decisions; when a suggestion is made."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.routing import (NONE_LABEL, UNCLASSIFIED, Ancestor, CallFact, ModelFigures, ScoreMean, decision_figures,
                          decision_from, group_of, summarize)
from core.routing_advice import MARGIN, compare, difference_upper, suggest, wilson

T = b"\x01" * 16


def sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


STEP = Ancestor(sid(100), "workflow", "invoke_workflow classify-intent", {"gen_ai.workflow.name": "classify-intent"})
ROUTE = Ancestor(sid(101), "routing", "route model-router", {})
AGENT = Ancestor(sid(102), "agent", "invoke_agent triage", {}, agent_name="triage")


def call(n, model="gpt-4o-mini", *, failed=False, cls=None, ms=100, cost="0.001", anc=(ROUTE, STEP, AGENT),
         agent=None, task="invoke_agent triage", fb=None, trace=T) -> CallFact:
    return CallFact(trace, sid(n), model, failed, cls, ms * 1_000_000, None if cost is None else Decimal(cost),
                    agent, task, tuple(anc), fb)


@pytest.mark.parametrize("fact, by, expected", [
    (call(1), "step", "classify-intent"),
    (call(1, anc=(Ancestor(sid(9), "workflow", "plain step name", {}),)), "step", "plain step name"),
    (call(1, anc=(Ancestor(sid(9), "workflow", "w", {"traceloop.span.kind": "task", "traceloop.entity.name": "t"}),)),
     "step", "t"),
    (call(1, anc=()), "step", NONE_LABEL),
    (call(1, anc=(AGENT,)), "step", NONE_LABEL),
    (call(1, agent="billing"), "agent", "billing"),
    (call(1), "agent", "triage"),  # the nearest ancestor's agent
    (call(1, anc=()), "agent", NONE_LABEL),
    (call(1), "task", "invoke_agent triage"),
    (call(1, task=None), "task", NONE_LABEL),
])
def test_group_of(fact, by, expected):
    assert group_of(fact, by) == expected


def test_group_of_refuses_unknown():
    with pytest.raises(ValueError):
        group_of(call(1), "tool")


def test_summarize_figures():
    calls = [call(1, ms=100), call(2, ms=200), call(3, failed=True, cls="rate_limit", cost="0"),
             call(4, failed=True, cost="0"), call(5, "gpt-4o", cost="0.01", failed=True, cls="timeout"),
             call(6, "claude", cost=None, fb="gpt-4o"), call(7, "x", anc=(AGENT,))]
    scores = [(T, sid(1), "relevance", 1.0), (T, sid(2), "relevance", 0.5), (T, sid(99), "relevance", 0.0)]
    groups = summarize(calls, "step", scores)
    assert [g.group for g in groups] == ["classify-intent", NONE_LABEL]
    assert [m.model for m in groups[0].models] == ["gpt-4o-mini", "claude", "gpt-4o"]  # most calls first
    mini, claude, gpt4o = groups[0].models
    assert (mini.model, mini.calls, mini.failures, mini.successes) == ("gpt-4o-mini", 4, 2, 2)
    assert mini.failures_by_class == {UNCLASSIFIED: 1, "rate_limit": 1}
    assert mini.cost_usd == Decimal("0.002") and mini.cost_per_success == Decimal("0.001")
    assert mini.scores == {"relevance": ScoreMean(2, 0.75)}
    assert 80 <= mini.p50_ms <= 120 and 160 <= mini.p95_ms <= 240
    assert gpt4o.cost_per_success is None  # priced, but no call succeeded
    assert gpt4o.fallbacks_to == {"claude": 1} and claude.fallbacks_from == {"gpt-4o": 1}
    assert claude.cost_usd is None and claude.unpriced_calls == 1 and claude.cost_per_success is None


def test_decisions():
    other = b"\x02" * 16
    calls = [call(1, "gpt-4o-mini", failed=True, cls="rate_limit"), call(2, "gpt-4o-mini"),  # retried: recovered
             call(3, "gpt-4o-mini", trace=other, failed=True)]  # gave up
    attrs = {"causeline.route.router": "model-router", "causeline.route.candidates": ["gpt-4o-mini", "gpt-4o"],
             "causeline.route.chosen": "gpt-4o-mini", "causeline.route.reason": "cheapest"}
    decisions = [decision_from(T, ROUTE.span_id, "route model-router", attrs),
                 decision_from(other, ROUTE.span_id, "route model-router", attrs),
                 decision_from(b"\x03" * 16, ROUTE.span_id, "route r2", {"causeline.route.candidates": "solo"})]
    figures = decision_figures(decisions, calls, "step")
    by_router = {f.router: f for f in figures}
    f = by_router["model-router"]
    assert (f.group, f.chosen, f.reason, f.decisions, f.chosen_failed, f.gave_up) == (
        "classify-intent", "gpt-4o-mini", "cheapest", 2, 2, 1)
    assert f.candidates == ("gpt-4o-mini", "gpt-4o")
    lone = by_router["route r2"]  # no router attribute: the span name; no calls found under it
    assert (lone.group, lone.chosen, lone.candidates, lone.chosen_failed, lone.gave_up) == (
        NONE_LABEL, "(none)", ("solo",), 0, 0)


# --- the suggestion rule ---------------------------------------------------------------------


def fig(model, calls, failures, per_success, scores=None) -> ModelFigures:
    cost = None if per_success is None else Decimal(per_success) * (calls - failures)
    return ModelFigures(model, calls, failures, {}, 100.0, 200.0, cost, 0,
                        None if per_success is None else Decimal(per_success), scores or {}, {}, {})


def test_wilson_bounds():
    lo, hi = wilson(0, 100)
    assert lo == 0.0 and 0.02 < hi < 0.03
    lo, hi = wilson(50, 100)
    assert lo < 0.5 < hi and abs((0.5 - lo) - (hi - 0.5)) < 1e-9
    assert wilson(0, 0) == (0.0, 1.0)


def test_difference_upper_shrinks_with_evidence():
    assert difference_upper(4, 1000, 6, 1000) < difference_upper(4, 100, 6, 100)
    assert difference_upper(10, 100, 0, 100) > 0.1  # really worse: the bound is above the observed 10 points


CHEAP, DEAR = "gpt-4o-mini", "gpt-4o"


@pytest.mark.parametrize("cheap, dear, suggested", [
    (fig(CHEAP, 2140, 9, "0.0004"), fig(DEAR, 312, 2, "0.006"), True),  # the example
    (fig(CHEAP, 49, 0, "0.0004"), fig(DEAR, 312, 2, "0.006"), False),  # too few cheap calls
    (fig(CHEAP, 2140, 9, "0.0004"), fig(DEAR, 49, 0, "0.006"), False),  # too few dear calls
    (fig(CHEAP, 2140, 9, "0.0035"), fig(DEAR, 312, 2, "0.006"), False),  # not cheap enough (58%)
    (fig(CHEAP, 2140, 9, "0.003"), fig(DEAR, 312, 2, "0.006"), True),  # exactly half
    (fig(CHEAP, 2140, 300, "0.0004"), fig(DEAR, 312, 2, "0.006"), False),  # 14% failures: materially worse
    (fig(CHEAP, 60, 3, "0.0004"), fig(DEAR, 60, 3, "0.006"), False),  # same rate, too little evidence
    (fig(CHEAP, 2140, 9, None), fig(DEAR, 312, 2, "0.006"), False),  # unpriced
    (fig(CHEAP, 2140, 9, "0.0004", {"relevance": ScoreMean(100, 0.70)}),
     fig(DEAR, 312, 2, "0.006", {"relevance": ScoreMean(100, 0.80)}), False),  # scores worse by 12.5%
    (fig(CHEAP, 2140, 9, "0.0004", {"relevance": ScoreMean(100, 0.78)}),
     fig(DEAR, 312, 2, "0.006", {"relevance": ScoreMean(100, 0.80)}), True),  # within 5%
    (fig(CHEAP, 2140, 9, "0.0004", {"relevance": ScoreMean(5, 0.1)}),
     fig(DEAR, 312, 2, "0.006", {"relevance": ScoreMean(100, 0.80)}), True),  # too few scores to judge
])
def test_compare(cheap, dear, suggested):
    found = compare("classify-intent", cheap, dear)
    assert (found is not None) == suggested
    if found:
        assert found.difference_upper <= MARGIN
        assert found.cheaper == CHEAP and found.dearer == DEAR


def test_suggestion_text_carries_the_numbers():
    s = compare("classify-intent", fig(CHEAP, 2140, 9, "0.0004"), fig(DEAR, 312, 2, "0.006"))
    assert s.text.startswith("gpt-4o-mini served “classify-intent” 2,140 times with 0.4% failures "
                             "at 1/15 the cost of gpt-4o per successful call")
    assert "$0.00040 vs $0.00600" in s.text and "312 calls, 0.6% failures" in s.text
    s = compare("x", fig(CHEAP, 2140, 9, "0.0024"), fig(DEAR, 312, 2, "0.006"))
    assert "at 40% of the cost of gpt-4o" in s.text


def test_suggest_picks_the_cheapest_passing_per_dearer_model():
    models = [fig(DEAR, 400, 2, "0.006"), fig("mid", 400, 2, "0.002"), fig(CHEAP, 400, 100, "0.0001")]
    found = suggest("s", models)
    # the cheapest fails too often; "mid" replaces gpt-4o; nothing is cheap enough to replace "mid"
    assert [(s.cheaper, s.dearer) for s in found] == [("mid", DEAR)]
    assert suggest("s", [fig(DEAR, 400, 2, "0.006")]) == []
