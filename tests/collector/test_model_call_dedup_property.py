"""Property: any set of spans, stacked duplicates included, delivered twice, in any order, split over
any requests sent concurrently (two writer connections), is stored and counted exactly like one
clean delivery of the same spans: the same span rows and marks, trace totals and usage rollups,
and every model call counted once (in provider_rollups too)."""

from __future__ import annotations

import random
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests import otlp_payloads as P
from tests.rollups import provider_rollups_mismatch

PB = {"content-type": "application/x-protobuf"}

# One logical model call and how the instrumentations recorded it.
SHAPES = ("single", "nested", "nested_through_wrapper", "siblings_same_id", "nested_distinct_ids", "triple")


@st.composite
def workloads(draw):
    calls = draw(st.lists(st.tuples(st.sampled_from(SHAPES), st.booleans(), st.integers(1, 500)),
                          min_size=1, max_size=4))
    tools = draw(st.integers(0, 2))
    seed = draw(st.integers(0, 2**32 - 1))
    copies = draw(st.integers(1, 2))  # each span delivered once more or twice more
    requests = draw(st.integers(1, 6))
    return calls, tools, seed, copies, requests


def build(tid: bytes, calls, tools: int) -> tuple[list, int]:
    """The spans of one trace (span ids fixed by position, so two traces can be compared span by
    span) and the number of distinct model calls they record."""
    n = iter(range(1, 10_000))
    sid = lambda: next(n).to_bytes(8, "big")  # noqa: E731
    root = sid()
    spans = [P.span(tid, root, name="invoke_agent planner", duration=10**9,
                    attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"})]
    logical = 0

    def model_call(parent, tokens: int, usage: bool, rid: str | None = None, name: str = "chat gpt-4o"):
        attributes = P.llm_attrs(inp=tokens, out=tokens // 3 + 1) if usage else {
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
        if rid:
            attributes["gen_ai.response.id"] = rid
        span_id = sid()
        spans.append(P.span(tid, span_id, parent=parent, name=name, start=P.BASE_NS + len(spans),
                            attributes=attributes))
        return span_id

    for index, (shape, outer_usage, tokens) in enumerate(calls):
        rid = f"resp_{index}"
        if shape == "single":
            model_call(root, tokens, True, rid)
        elif shape == "nested":
            model_call(model_call(root, tokens, outer_usage, name="ChatOpenAI"), tokens, True)
        elif shape == "nested_through_wrapper":
            outer = model_call(root, tokens, outer_usage, name="ChatOpenAI")
            wrapper = sid()
            spans.append(P.span(tid, wrapper, parent=outer, name="POST /v1/chat", start=P.BASE_NS + len(spans)))
            model_call(wrapper, tokens, True)
        elif shape == "siblings_same_id":
            model_call(root, tokens, outer_usage, rid, name="openai.response")
            model_call(root, tokens, True, rid, name="Responses API")
        elif shape == "nested_distinct_ids":  # a model call inside another with its own answer: two calls
            model_call(model_call(root, tokens, True, rid + "a"), tokens, True, rid + "b")
            logical += 1
        else:  # "triple": framework span, the client's span inside it, and a second exporter's sibling
            model_call(model_call(root, tokens, outer_usage, rid), tokens, True)
            model_call(root, tokens, outer_usage, rid, name="Responses API")
        logical += 1
    for _ in range(tools):
        spans.append(P.span(tid, sid(), parent=root, name="execute_tool search", start=P.BASE_NS + len(spans),
                            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}))
    return spans, logical


def post(collector, spans, service: str) -> None:
    response = httpx.post(collector.traces_endpoint, content=P.request(spans, service).SerializeToString(),
                          headers={**PB, **collector.auth()}, timeout=60)
    assert response.status_code == 200, response.text


def stored(collector, tid: bytes, service: str) -> tuple:
    with collector.engine.connect() as conn:
        spans = sorted(tuple(r) for r in conn.execute(text(
            "select s.span_id, s.category, s.input_tokens, s.cost_usd, d.duplicate_of, d.reason "
            "from spans s left join span_duplicates d using (project_id, trace_id, span_id) "
            "where s.trace_id = :t"), {"t": tid}))
        trace = tuple(conn.execute(text(
            "select span_count, error_count, llm_calls, unpriced_calls, input_tokens, output_tokens, cost_usd "
            "from traces where trace_id = :t"), {"t": tid}).one())
        usage = sorted(tuple(r) for r in conn.execute(text(
            "select provider, request_model, response_model, agent, error_class, calls, errors, unpriced_calls, "
            "input_tokens, output_tokens, cost_usd, duration_ns, latency_buckets "
            "from usage_rollups where service = :s and calls <> 0"), {"s": service}))
        # Rows emptied by a correction hold nothing at all.
        leftovers = conn.execute(text(
            "select count(*) from usage_rollups where service = :s and calls = 0 and "
            "(input_tokens <> 0 or output_tokens <> 0 or cost_usd <> 0 or duration_ns <> 0)"), {"s": service}).scalar()
    return spans, trace, usage, leftovers


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(workload=workloads())
def test_any_delivery_counts_like_one_clean_delivery(collector, workload):
    calls, tools, seed, copies, requests = workload
    tag = uuid.uuid4().hex[:12]
    clean_tid, messy_tid = uuid.uuid4().bytes, uuid.uuid4().bytes
    clean_spans, logical = build(clean_tid, calls, tools)
    messy_spans, _ = build(messy_tid, calls, tools)

    post(collector, clean_spans, f"clean-{tag}")

    rng = random.Random(seed)
    deliveries = [span for _ in range(1 + copies) for span in messy_spans]
    rng.shuffle(deliveries)
    cuts = sorted(rng.sample(range(1, len(deliveries)), min(requests - 1, len(deliveries) - 1)))
    chunks = [deliveries[a:b] for a, b in zip([0, *cuts], [*cuts, len(deliveries)])]
    with ThreadPoolExecutor(max_workers=3) as pool:  # concurrent requests: both writer connections busy
        list(pool.map(lambda chunk: post(collector, chunk, f"messy-{tag}"), chunks))

    clean = stored(collector, clean_tid, f"clean-{tag}")
    messy = stored(collector, messy_tid, f"messy-{tag}")
    assert messy == clean
    spans, trace, usage, leftovers = clean
    assert leftovers == 0
    assert len(spans) == len(clean_spans)
    assert trace[2] == logical == sum(row[5] for row in usage)
    assert trace[4] == sum(row[8] for row in usage)
    assert trace[6] == sum(row[10] for row in usage)
    with collector.engine.connect() as conn:  # the narrow rollup got the same counts and corrections
        assert provider_rollups_mismatch(conn) == []
