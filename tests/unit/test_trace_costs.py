"""core.trace_costs: by step, agent, model and tool; tokens by kind; requested vs served; unpriced apart."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from core.forensics_view import SpanView
from core.span import Tokens
from core.trace_costs import NONE_LABEL, trace_costs

T = b"\x07" * 16


def sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


def sp(n, parent=None, *, cat="other", name=None, **kw) -> SpanView:
    return SpanView(T, sid(n), sid(parent) if parent is not None else None, name or f"s{n}", category=cat,
                    start_ns=n, end_ns=n + 10, **kw)


SPANS = [
    sp(1, cat="agent", name="invoke_agent planner", agent_name="planner"),
    sp(2, 1, cat="workflow", name="invoke_workflow research", attributes={"gen_ai.workflow.name": "research"}),
    sp(3, 2, cat="llm", provider="openai", request_model="gpt-4o", response_model="gpt-4o-2024-08-06",
       tokens=Tokens(1000, 200, 800, 0, 50), cost_usd=Decimal("0.004"), cost_source="genai-prices 1", agent_name="planner"),
    sp(4, 2, cat="tool", name="execute_tool web", tool_name="web"),
    sp(5, 4, cat="llm", provider="openai", request_model="gpt-4o-mini", response_model="gpt-4o-mini",
       tokens=Tokens(100, 10), cost_usd=Decimal("0.0001"), cost_source="genai-prices 1", status="error"),
    sp(6, 1, cat="llm", provider="acme", request_model="house-model", tokens=Tokens(50, 5), cost_source="unpriced",
       agent_name="writer"),
    sp(7, 1, cat="agent", agent_name="planner", tokens=Tokens()),  # an agent span: no usage of its own
]


def test_breakdown():
    costs = trace_costs(T, SPANS)
    assert (costs.calls, costs.priced_calls, costs.unpriced_calls, costs.failed_calls) == (3, 2, 1, 1)
    assert costs.cost_usd == Decimal("0.0041") and costs.failed_cost_usd == Decimal("0.0001")
    assert (costs.tokens.input, costs.tokens.output, costs.tokens.cache_read, costs.tokens.reasoning) == (1150, 215, 800, 50)
    assert [(g.key, g.calls, g.cost_usd) for g in costs.by_step] == [
        ("research", 2, Decimal("0.0041")), (NONE_LABEL, 1, None)]
    assert [(g.key, g.calls, g.unpriced_calls) for g in costs.by_agent] == [("planner", 2, 0), ("writer", 1, 1)]
    assert [g.key for g in costs.by_model] == ["gpt-4o-2024-08-06", "gpt-4o-mini", "house-model"]
    assert [(g.key, g.calls) for g in costs.by_tool] == [(NONE_LABEL, 2), ("web", 1)]
    calls = {c.span.name: c for c in costs.model_calls}
    assert calls["s3"].model_differs and not calls["s5"].model_differs and not calls["s6"].model_differs
    assert calls["s6"].cost_usd is None and calls["s6"].cost_source == "unpriced"
    assert (calls["s5"].agent, calls["s5"].tool, calls["s5"].step) == ("planner", "web", "research")


def test_other_traces_and_parent_cycles_are_ignored():
    a = SpanView(T, sid(1), sid(2), "a", category="llm", tokens=Tokens(1, 1))
    b = SpanView(T, sid(2), sid(1), "b", category="workflow")
    other = SpanView(b"\x09" * 16, sid(3), None, "c", category="llm", tokens=Tokens(5, 5))
    costs = trace_costs(T, [a, b, other])
    assert costs.calls == 1 and costs.by_step[0].key == "b"


def test_a_call_recorded_twice_counts_once():
    inner = sp(9, 3, cat="llm", tokens=Tokens(1000, 200), cost_usd=Decimal("0.004"), duplicate_of=sid(3))
    costs = trace_costs(T, [*SPANS, inner])
    assert (costs.calls, costs.cost_usd, costs.tokens.input) == (3, Decimal("0.0041"), 1150)
    assert sid(9) not in {c.span.span_id for c in costs.model_calls}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 20)), st.integers(0, 10_000),
                          st.one_of(st.none(), st.integers(0, 100)), st.booleans()), max_size=30))
def test_property_totals_equal_the_sum_of_each_breakdown(rows):
    spans = [
        sp(i, parent, cat="llm", tokens=Tokens(inp, 1), cost_usd=Decimal(cents) / 100 if cents is not None else None,
           cost_source="unpriced" if unpriced else "genai-prices 1")
        for i, (parent, inp, cents, unpriced) in enumerate(rows)
    ]
    costs = trace_costs(T, spans)
    for groups in (costs.by_step, costs.by_agent, costs.by_model, costs.by_tool):
        assert sum(g.calls for g in groups) == costs.calls
        assert sum(g.tokens.input for g in groups) == costs.tokens.input
        assert sum((g.cost_usd or 0) for g in groups) == costs.cost_usd
        assert sum(g.unpriced_calls for g in groups) == costs.unpriced_calls
