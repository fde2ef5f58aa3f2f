"""core.attribution: tables of cases, then property tests on random span trees and links."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.attribution import attribute
from core.forensics_view import EdgeView, SpanView, edges_of_spans, view_of_span
from core.normalize import normalize
from core.span import Event, Link, RawSpan, Tokens

T = b"\x01" * 16
T2 = b"\x02" * 16


def sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


def sp(n, parent=None, *, status="unset", cls=None, start=0, end=10, cat="other", trace=T, name=None, **kw):
    return SpanView(trace, sid(n), sid(parent) if parent is not None else None, name or f"s{n}", category=cat,
                    start_ns=start, end_ns=end, status=status, error_class=cls if status == "error" else None, **kw)


def err(n, parent=None, cls="unknown", **kw):
    return sp(n, parent, status="error", cls=cls, **kw)


def link(src, relation, dst, trace=T, dst_trace=None):
    return EdgeView(trace, sid(src), relation, dst_trace or trace, sid(dst))


def summary(result):
    return [(f.root_cause.name, [p.name for p in f.propagation_path], f.error_class, f.recovered, f.recovery,
             f.recovered_by.name if f.recovered_by else None) for f in result.failures]


CASES = {
    "no failure": (
        [sp(1), sp(2, 1), sp(3, 1)], [], [], False,
    ),
    "failed leaf reaches the top": (
        [err(1, end=100), err(2, 1, "timeout", end=50)], [],
        [("s2", ["s2", "s1"], "timeout", False, None, None)], True,
    ),
    "two independent failed children: earliest end wins, the other is shadowed": (
        [err(1, end=100), err(2, 1, "timeout", start=0, end=30), err(3, 1, "tool_error", start=0, end=20)], [],
        [("s3", ["s3", "s1"], "tool_error", False, None, None), ("s2", ["s2"], "timeout", False, None, None)], True,
    ),
    "cancelled sibling is propagation, not a cause": (
        [err(1, end=100), err(2, 1, "tool_error", end=40), err(3, 1, "cancelled", end=41)], [],
        [("s2", ["s2", "s1"], "tool_error", False, None, None)], True,
    ),
    "retry with another class is its own failure": (
        [sp(1, end=100), err(2, 1, "timeout", end=10), err(3, 1, "rate_limited", start=11, end=20),
         sp(4, 1, start=21, end=30)],
        [link(3, "retry_of", 2), link(4, "retry_of", 3)],
        [("s2", ["s2"], "timeout", True, "retry_of", "s4"), ("s3", ["s3"], "rate_limited", True, "retry_of", "s4")],
        False,
    ),
    "failed fallback, then a fallback that works, recovers both": (
        [sp(1, end=100), err(2, 1, "timeout", end=10), err(3, 1, "provider_unavailable", start=11, end=20),
         sp(4, 1, start=21, end=30)],
        [link(3, "fallback_of", 2), link(4, "fallback_of", 3)],
        [("s2", ["s2"], "timeout", True, "fallback_of", "s4"),
         ("s3", ["s3"], "provider_unavailable", True, "fallback_of", "s4")],
        False,
    ),
    "caused_by explains": (
        [err(1, end=10, cls="budget_exceeded"), err(2, cls="cancelled", start=20, end=30)],
        [link(2, "caused_by", 1)],
        [("s1", ["s1", "s2"], "budget_exceeded", False, None, None)],
        True,
    ),
    "handoff target failure explains the handoff span across traces": (
        [sp(1, end=100), err(2, 1, "unknown", end=50, name="handoff"),
         err(10, trace=T2, cls="auth_failed", start=5, end=40, name="agent b")],
        [link(10, "handoff_from", 2, trace=T2, dst_trace=T)],
        [("agent b", ["agent b", "handoff"], "auth_failed", False, None, None)], False,
    ),
    "third-party handoff without a link: the edge is derived over the trace": (
        [sp(1, end=100), err(2, 1, "unknown", start=10, end=50, name="handoff to b", cat="tool",
                             attributes={"openinference.span.kind": "TOOL", "input.value": "a"}),
         err(10, 1, cls="auth_failed", start=60, end=90, name="b", cat="agent", agent_name="b")],
        [],
        [("b", ["b", "handoff to b"], "auth_failed", True, "handled", "s1")], False,
    ),
    "parent-id cycle does not hang": (
        [err(1, 2, end=10), err(2, 1, end=20)], [],
        [("s1", ["s1", "s2"], "unknown", False, None, None)], False,
    ),
}


@pytest.mark.parametrize("spans, edges, expected, failed", CASES.values(), ids=list(CASES))
def test_cases(spans, edges, expected, failed):
    result = attribute(T, spans, edges)
    assert summary(result) == expected
    assert result.failed is failed


def test_no_failure_says_so():
    result = attribute(T, [sp(1), sp(2, 1)])
    assert result.failures == () and "no failure" in result.summary


def test_shadowed_and_cancelled_blast_radius_and_confidence():
    result = attribute(T, [err(1, end=100), err(2, 1, "tool_error", end=40), err(3, 1, "cancelled", end=41)])
    [failure] = result.failures
    assert [s.name for s in failure.blast_radius.failed_ancestors] == ["s1"]
    assert [(s.name, s.reason) for s in failure.blast_radius.skipped_steps] == [("s3", "cancelled")]
    tie = attribute(T, [err(1, end=100), err(2, 1, "timeout", end=30), err(3, 1, "timeout", end=20)])
    # Class known only from the stored column (no signal on the view): 0.75, minus 0.1 for the tie.
    assert tie.failures[0].confidence == pytest.approx(0.65)
    assert any("earliest end was chosen" in e for e in tie.failures[0].evidence)


def test_planned_steps_never_started():
    agent = err(1, end=100, attributes={"causeline.plan.steps": ["fetch", "rank", "answer"]})
    result = attribute(T, [agent, err(2, 1, "tool_error", end=30, name="fetch")])
    skipped = result.failures[0].blast_radius.skipped_steps
    assert [(s.name, s.reason, s.span) for s in skipped] == [("rank", "planned", None), ("answer", "planned", None)]


def test_missing_parent_is_not_recovered_and_lowers_confidence():
    result = attribute(T, [err(2, 99, "timeout", attributes={"error.type": "TimeoutError"})])
    [failure] = result.failures
    assert (failure.recovered, failure.reached_top, failure.confidence) == (False, False, 0.8)
    assert failure.evidence[0] == "error.type=TimeoutError"


def test_burned_counts_failed_attempts_and_unpriced_separately():
    spans = [
        sp(1, end=100),
        err(2, 1, "rate_limited", end=10, cat="llm", tokens=Tokens(100, 5, 50, None, 2), cost_usd=Decimal("0.01"),
            cost_source="genai-prices 1"),
        err(3, 1, "rate_limited", start=11, end=30, cat="llm", tokens=Tokens(100, None), cost_source="unpriced"),
        sp(4, 1, start=31, end=40, cat="llm", tokens=Tokens(1000, 1000), cost_usd=Decimal("1")),
    ]
    result = attribute(T, spans, [link(3, "retry_of", 2), link(4, "retry_of", 3)])
    [failure] = result.failures
    burned = failure.burned
    assert (burned.input, burned.output, burned.cache_read, burned.reasoning) == (200, 5, 50, 2)
    assert (burned.cost_usd, burned.unpriced_calls, burned.duration_ns, burned.total_tokens) == (
        Decimal("0.01"), 1, 29, 205)
    assert (failure.recovered, failure.recovery, failure.recovered_by.name) == (True, "retry_of", "s4")


def test_data_consumers_are_transitive_and_cycle_safe():
    spans = [err(1, end=10, cls="tool_error"), sp(2, start=11, end=20), sp(3, start=21, end=30)]
    edges = [link(2, "data_from", 1), link(3, "data_from", 2), link(1, "data_from", 3)]
    [failure] = attribute(T, spans, edges).failures
    assert [s.name for s in failure.blast_radius.data_consumers] == ["s2", "s3"]


def test_from_canonical_spans():
    raw = RawSpan(T, sid(1), None, "chat gpt-4o", 3, 0, 10, 0, "",
                  {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "http.response.status_code": 429},
                  (Event("exception", 5, {"exception.type": "openai.RateLimitError"}),), (), {})
    retry = RawSpan(T, sid(2), None, "chat gpt-4o", 3, 11, 20, 1, "", {"gen_ai.operation.name": "chat"}, (),
                    (Link(T, sid(1), {"causeline.link.type": "retry_of"}),), {})
    spans = [normalize(raw), normalize(retry)]
    [failure] = attribute(T, [view_of_span(s) for s in spans], edges_of_spans(spans)).failures
    assert (failure.error_class, failure.recovery, failure.confidence) == ("rate_limited", "retry_of", 0.9)
    assert failure.evidence[:2] == ("exception.type=openai.RateLimitError", "http.response.status_code=429")


# --- properties -------------------------------------------------------------------

CLASSES = ["timeout", "rate_limited", "tool_error", "cancelled", "unknown"]
RELATIONS = ["data_from", "retry_of", "fallback_of", "caused_by", "handoff_from", "follows", "link"]


@st.composite
def span_trees(draw, links: bool = True, wild_parents: bool = False):
    n = draw(st.integers(1, 40))
    spans = []
    for i in range(n):
        if wild_parents:
            parent = draw(st.one_of(st.none(), st.integers(0, n)))  # anything, itself and cycles included
        else:
            parent = draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None
        start = draw(st.integers(0, 1000))
        end = start + draw(st.integers(0, 1000))
        status = draw(st.sampled_from(["error", "ok", "unset"]))
        spans.append(sp(i, parent, status=status, cls=draw(st.sampled_from(CLASSES)), start=start, end=end,
                        cat=draw(st.sampled_from(["llm", "tool", "agent", "guardrail", "other", "workflow"]))))
    edges = []
    if links:
        for _ in range(draw(st.integers(0, 2 * n))):
            edges.append(link(draw(st.integers(0, n - 1)), draw(st.sampled_from(RELATIONS)),
                              draw(st.integers(0, n))))
    return spans, edges


def _check(spans, edges, *, cycles_possible: bool):
    result = attribute(T, spans, edges)
    failed = {s.key for s in spans if s.status == "error"}
    covered = [s.key for f in result.failures for s in f.failed_spans]
    # Every failed span is a root cause or on a root cause's propagation tree, exactly once.
    assert sorted(covered) == sorted(failed)
    by_key = {s.key: s for s in spans}
    children = {}
    for s in spans:
        if s.parent_span_id is not None and (T, s.parent_span_id) in by_key and s.parent_span_id != s.span_id:
            children.setdefault((T, s.parent_span_id), []).append(s.key)
    upstream = {}
    for e in edges:
        if e.relation in ("data_from", "caused_by"):
            upstream.setdefault(e.source, []).append(e.target)
    for failure in result.failures:
        root = failure.root_cause.key
        assert root in failed and failure.propagation_path[0].key == root
        assert {p.key for p in failure.propagation_path} <= {s.key for s in failure.failed_spans}
        assert 0 <= failure.confidence <= 1
        if failure.recovery == "handled":
            # A wrapper that did not fail never handles a failure, unless it is the run itself.
            handler = by_key[failure.recovered_by.key]
            assert handler.category != "workflow" or handler.parent_span_id is None
        cut = any("cycle" in e for e in failure.evidence)
        assert not (cut and not cycles_possible)
        if not cut:
            # A root cause has no failed descendant (or data source) explaining it.
            assert not [c for c in children.get(root, []) if c in failed]
            assert not [t for t in upstream.get(root, []) if t in failed and t != root]
    return result


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(span_trees(links=False))
def test_property_trees(tree):
    _check(*tree, cycles_possible=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(span_trees(links=True, wild_parents=True))
def test_property_untrusted_links_and_parents(tree):
    _check(*tree, cycles_possible=True)


# --- wrappers (chain, task, workflow spans) and a missing root span ----------------------

def wrapper(n, parent=None, **kw):
    return sp(n, parent, cat="workflow", **kw)


WRAPPER_CASES = {
    "a failure under an OK chain under a failed agent reaches the agent": (
        [err(1, cat="agent", end=100), wrapper(2, 1, status="ok", end=90), err(3, 2, "rate_limited", cat="llm", end=50)],
        [], [("s3", ["s3", "s1"], "rate_limited", False, None, None)], True,
    ),
    "a failure under an OK chain when the run raised reaches the run": (
        [err(1, end=100), wrapper(2, 1, end=90), err(3, 2, "tool_error", cat="tool", end=50)],
        [], [("s3", ["s3", "s1"], "tool_error", False, None, None)], True,
    ),
    "nested OK wrappers (chain in a task) are looked through": (
        [err(1, cat="agent", end=100), wrapper(2, 1, status="ok", end=95), wrapper(3, 2, end=90),
         err(4, 3, "timeout", cat="tool", end=50)],
        [], [("s4", ["s4", "s1"], "timeout", False, None, None)], True,
    ),
    "an OK chain under an agent that did not fail: handled by the agent, not the wrapper": (
        [sp(1, cat="agent", end=100), wrapper(2, 1, status="ok", end=90), err(3, 2, "timeout", cat="tool", end=50)],
        [], [("s3", ["s3"], "timeout", True, "handled", "s1")], False,
    ),
    "an OK chain at the top handles it: the run ended ok": (
        [wrapper(1, status="ok", end=100), err(2, 1, "timeout", cat="tool", end=50)],
        [], [("s2", ["s2"], "timeout", True, "handled", "s1")], False,
    ),
    "a real step that did not fail still handles the failure under it": (
        [err(1, cat="agent", end=100), sp(2, 1, cat="tool", status="ok", end=90), err(3, 2, "timeout", cat="llm", end=50)],
        [], [("s3", ["s3"], "timeout", True, "handled", "s2"), ("s1", ["s1"], "unknown", False, None, None)], True,
    ),
    "OK wrappers up to a parent never received: not handled": (
        [wrapper(2, 99, end=90), err(3, 2, "timeout", cat="tool", end=50)],
        [], [("s3", ["s3"], "timeout", False, None, None)], False,
    ),
    "a retry that worked under a wrapper still recovers": (
        [sp(1, cat="agent", end=100), wrapper(2, 1, end=90), err(3, 2, "rate_limited", cat="llm", end=20),
         sp(4, 2, cat="llm", start=21, end=40)],
        [link(4, "retry_of", 3)], [("s3", ["s3"], "rate_limited", True, "retry_of", "s4")], False,
    ),
    "a failed chain is an ordinary step on the path": (
        [err(1, cat="agent", end=100), wrapper(2, 1, status="error", end=90), err(3, 2, "timeout", cat="llm", end=50)],
        [], [("s3", ["s3", "s2", "s1"], "timeout", False, None, None)], True,
    ),
    "an OK wrapper with two failures inside: the earlier explains the agent, the later is shadowed": (
        [err(1, cat="agent", end=100), wrapper(2, 1, end=90), err(3, 2, "timeout", cat="tool", end=30),
         err(4, 2, "tool_error", cat="tool", end=40)],
        [], [("s3", ["s3", "s1"], "timeout", False, None, None), ("s4", ["s4"], "tool_error", False, None, None)],
        True,
    ),
}


@pytest.mark.parametrize("spans, edges, expected, failed", WRAPPER_CASES.values(), ids=list(WRAPPER_CASES))
def test_wrapper_cases(spans, edges, expected, failed):
    result = attribute(T, spans, edges)
    assert summary(result) == expected
    assert result.failed is failed


def test_wrapper_evidence_and_failed_ancestors():
    spans = [err(1, cat="agent", end=100, name="agent"), wrapper(2, 1, end=90, name="chain"),
             err(3, 2, "timeout", cat="tool", end=50, name="tool")]
    [failure] = attribute(T, spans).failures
    assert [s.name for s in failure.blast_radius.failed_ancestors] == ["agent"]
    assert "propagated to 'agent' (it failed inside a wrapper step that did not fail itself)" in failure.evidence
    assert failure.step_name == "chain"  # grouping still names the step it ran in


ROOT_CASES = {
    # name: (spans, root_missing, failed, summary ending)
    "the root span never arrived (smolagents on failure)": (
        [err(2, 99, "tool_error", end=50), sp(3, 2)], True, False,
        "root span missing: whether the run failed is unknown"),
    "the root arrived and did not fail": (
        [sp(1, end=100), err(2, 1, "tool_error", end=50)], False, False, "the run did not fail"),
    "the root arrived and failed": (
        [err(1, end=100), err(2, 1, "tool_error", end=50)], False, True, "the run failed"),
    "no failure, no root": (
        [sp(2, 99), sp(3, 2)], True, False, "root span missing: the run's outcome is unknown"),
    "a linked trace without its root does not make this one's root missing": (
        [sp(1, end=100), err(2, 1, "tool_error", end=50), err(10, 99, trace=T2, end=40)], False, False,
        "the run did not fail"),
}


@pytest.mark.parametrize("spans, missing, failed, ending", ROOT_CASES.values(), ids=list(ROOT_CASES))
def test_missing_root_span(spans, missing, failed, ending):
    result = attribute(T, spans)
    assert (result.root_missing, result.failed) == (missing, failed)
    assert result.summary.endswith(ending)
    assert "did not fail" not in result.summary or not missing


def test_burned_counts_a_call_recorded_twice_once():
    """A failed run whose one model call two stacked instrumentations recorded (core.model_call_dedup)."""
    spans = [
        err(1, end=100, cat="agent", cls="timeout"),
        sp(2, 1, end=50, cat="llm", tokens=Tokens(100, 10), cost_usd=Decimal("0.01")),
        sp(3, 2, end=40, cat="llm", tokens=Tokens(100, 10), cost_usd=Decimal("0.01"), duplicate_of=sid(2)),
    ]
    [failure] = attribute(T, spans).failures
    assert (failure.burned.input, failure.burned.output, failure.burned.cost_usd) == (100, 10, Decimal("0.01"))


# --- size: deep and wide traces (no timing here: bench/attribution.py measures) ----------

def test_deep_chain_every_other_span_failed():
    """The hostile trace of issue 9, 20,000 deep: no recursion limit, every failure handled by
    its OK parent except the top one, whose burned tokens are the whole chain's."""
    n = 20_000
    spans = [sp(i, i - 1 if i else None, status="error" if i % 2 == 0 else "ok", cls="timeout",
                start=i, end=2 * n - i, tokens=Tokens(1, 1)) for i in range(n)]
    result = attribute(T, spans)
    assert len(result.failures) == n // 2 and result.failed
    top = next(f for f in result.failures if f.root_cause.name == "s0")
    assert (top.reached_top, top.recovered, top.burned.input, top.burned.output) == (True, False, n, n)
    handled = [f for f in result.failures if f is not top]
    assert all(f.recovery == "handled" for f in handled)
    assert {f.recovered_by.name for f in handled[:3]} <= {f"s{i}" for i in range(1, n, 2)}


def test_deep_parent_cycle_and_retry_chain():
    n = 5_000
    cycle = [err(i, (i + 1) % n, end=i) for i in range(n)]  # every parent id points at the next span
    result = attribute(T, cycle)
    assert sorted(s.key for f in result.failures for s in f.failed_spans) == sorted(s.key for s in cycle)
    # A long retry chain with alternating classes: each attempt is its own failure, all recovered by the last.
    attempts = [err(i, None, "timeout" if i % 2 else "rate_limited", start=i, end=i) for i in range(1, n)]
    attempts.append(sp(n, start=n, end=n))
    links = [link(i + 1, "retry_of", i) for i in range(1, n)]
    result = attribute(T, attempts, links)
    assert len(result.failures) == n - 1
    assert {(f.recovery, f.recovered_by.name) for f in result.failures} == {("retry_of", f"s{n}")}


def test_many_cancelled_siblings():
    """A task group: one failure cancels 3,000 siblings (each explained by it, none a cause)."""
    n = 3_000
    spans = [err(1, end=10_000_000_000), err(2, 1, "tool_error", end=100)]
    spans += [err(i, 1, "cancelled", start=i, end=200 + i) for i in range(3, n + 3)]
    [failure] = attribute(T, spans).failures
    assert failure.root_cause.name == "s2" and len(failure.failed_spans) == n + 2
    assert len(failure.blast_radius.skipped_steps) == n
