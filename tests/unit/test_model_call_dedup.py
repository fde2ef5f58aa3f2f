"""core.model_call_dedup: which model calls of a trace are the same call recorded twice, and which counts."""

from __future__ import annotations

import itertools

import pytest

from core.model_call_dedup import NESTED, SAME_RESPONSE_ID, CallFacts, Duplicate, duplicates, response_id, usage_kinds
from core.span import Tokens


def sid(n: int) -> bytes:
    return bytes([0] * 7 + [n])


def s(n: int, parent: int | None, category: str = "llm", rid: str | None = None, kinds: int = 0,
      priced: bool = False) -> CallFacts:
    return CallFacts(sid(n), sid(parent) if parent is not None else None, category, rid, kinds, priced)


def dup(of: int, reason: str) -> Duplicate:
    return Duplicate(sid(of), reason)


# (case, spans, expected {loser: Duplicate})
CASES = [
    ("one call", [s(1, None, "agent"), s(2, 1, kinds=2)], {}),
    ("two separate calls under an agent", [s(1, None, "agent"), s(2, 1, kinds=2), s(3, 1, kinds=2)], {}),
    ("client span directly inside the framework's span, only the inner has usage",
     [s(1, None, "agent"), s(2, 1), s(3, 2, kinds=2)], {2: dup(3, NESTED)}),
    ("both have usage: the one with more kinds counts",
     [s(2, None, kinds=4), s(3, 2, kinds=2)], {3: dup(2, NESTED)}),
    ("tie: priced wins over unpriced", [s(2, None, kinds=2), s(3, 2, kinds=2, priced=True)], {2: dup(3, NESTED)}),
    ("full tie: the smallest span id counts", [s(5, None, kinds=2), s(3, 5, kinds=2)], {5: dup(3, NESTED)}),
    ("nested through wrapper spans (http, workflow)",
     [s(1, None, "llm", kinds=2), s(2, 1, "other"), s(3, 2, "workflow"), s(4, 3, "llm")], {4: dup(1, NESTED)}),
    ("a tool in between: the inner call is the tool's own",
     [s(1, None, kinds=2), s(2, 1, "tool"), s(3, 2, kinds=2)], {}),
    ("an agent in between: a sub-agent's call", [s(1, None, kinds=2), s(2, 1, "agent"), s(3, 2, kinds=2)], {}),
    ("the span in between has not arrived: not (yet) a duplicate", [s(1, None, kinds=2), s(3, 2, kinds=2)], {}),
    ("embedding inside an llm call is another call", [s(1, None, kinds=2), s(2, 1, "embedding", kinds=1)], {}),
    ("embedding recorded twice", [s(1, None, "embedding", kinds=1), s(2, 1, "embedding")], {2: dup(1, NESTED)}),
    ("nested but different response ids: distinct answers",
     [s(1, None, rid="a", kinds=2), s(2, 1, rid="b", kinds=2)], {}),
    ("nested, same response id", [s(1, None, rid="a"), s(2, 1, rid="a", kinds=2)], {1: dup(2, SAME_RESPONSE_ID)}),
    ("siblings with the same response id (two exporters)",
     [s(1, None, "agent"), s(2, 1, rid="r", kinds=2), s(3, 1, rid="r", kinds=3)], {2: dup(3, SAME_RESPONSE_ID)}),
    ("separate roots with the same response id", [s(2, None, rid="r", kinds=2), s(3, None, rid="r")],
     {3: dup(2, SAME_RESPONSE_ID)}),
    ("same response id but one is not a model call", [s(2, None, "agent", rid="r"), s(3, None, rid="r", kinds=2)], {}),
    ("three recordings of one call: nested pair and a sibling with the id",
     [s(1, None, "agent"), s(2, 1, rid="r"), s(3, 2, kinds=2), s(4, 1, rid="r", kinds=3)],
     {2: dup(4, SAME_RESPONSE_ID), 3: dup(4, NESTED)}),
    ("a span without id never joins two different ids",
     [s(1, None, rid="a", kinds=2), s(2, 1), s(3, 2, rid="b", kinds=2)], {2: dup(1, NESTED)}),
    ("chain of three nested model calls", [s(1, None), s(2, 1, kinds=1), s(3, 2, kinds=2)],
     {1: dup(3, NESTED), 2: dup(3, NESTED)}),
    ("a parent cycle ends the walk", [s(1, 2, "other"), s(2, 1, "other"), s(3, 1, kinds=2)], {}),
    ("nothing but non-model spans", [s(1, None, "agent"), s(2, 1, "tool")], {}),
]


@pytest.mark.parametrize("spans, expected", [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_duplicates(spans, expected):
    assert duplicates(spans) == {sid(k): v for k, v in expected.items()}


SMALL = [c for c in CASES if len(c[1]) <= 5]  # every permutation: 5! at most


@pytest.mark.parametrize("spans, expected", [(c[1], c[2]) for c in SMALL], ids=[c[0] for c in SMALL])
def test_the_outcome_does_not_depend_on_the_order(spans, expected):
    for order in itertools.permutations(spans):
        assert duplicates(order) == {sid(k): v for k, v in expected.items()}


@pytest.mark.parametrize("attributes, expected", [
    ({"gen_ai.response.id": "resp_1"}, "resp_1"),
    ({"ai.response.id": " chatcmpl-1 "}, "chatcmpl-1"),
    ({"gen_ai.response.id": "", "ai.response.id": "x"}, "x"),
    ({"gen_ai.response.id": 12}, None),
    ({"gen_ai.response.id": "x" * 513}, None),
    ({}, None),
])
def test_response_id(attributes, expected):
    assert response_id(attributes) == expected


@pytest.mark.parametrize("tokens, expected", [
    (Tokens(), 0), (Tokens(input=0), 1), (Tokens(input=3, output=2, cache_read=1, cache_write=0, reasoning=4), 5),
])
def test_usage_kinds(tokens, expected):
    assert usage_kinds(tokens) == expected
