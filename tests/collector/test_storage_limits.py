"""Values PostgreSQL would refuse (index row size, numeric and bigint overflow) are capped or clamped
before they reach storage, so hostile data is stored (marked) rather than failing the request."""

from __future__ import annotations

import base64
import dataclasses
import os
import random
from decimal import Decimal

import psycopg

from sqlalchemy import text

from core.normalize import normalize
from core.otlp import decode_protobuf
from core.span import Tokens
from db.engine import libpq_url
from db.ingest import prepare_connection, span_row, write_batch
from tests import otlp_payloads as P
from tests.collector.test_ingest_http import post


def _one(collector, sql: str, **params):
    with collector.engine.connect() as conn:
        return conn.execute(text(sql), params).one()


def test_huge_model_name_is_capped_not_refused(collector):
    tid = P.trace_id()
    model = base64.b64encode(os.urandom(3000)).decode()  # 4000 incompressible chars
    spans = [P.span(tid, P.span_id(), name="chat x", attributes=P.llm_attrs(model=model))]
    response = post(collector, P.request(spans).SerializeToString())
    assert response.status_code == 200, response.text
    request_model, truncated = _one(
        collector, "select request_model, attributes->'causeline.truncated' from spans where trace_id = :t", t=tid)
    assert len(request_model) < 300 and request_model.startswith(model[:256]) and "truncated" in request_model
    assert "gen_ai.request.model" in truncated
    models, = _one(collector, "select models from traces where trace_id = :t", t=tid)
    assert models == [request_model]


def test_absurd_output_tokens_are_clamped_and_cost_is_unpriced(collector):
    tid = P.trace_id()
    spans = [P.span(tid, P.span_id(), name="chat gpt-4o", attributes=P.llm_attrs(out=10**15))]
    response = post(collector, P.request(spans).SerializeToString())
    assert response.status_code == 200, response.text
    output_tokens, cost, source, reason, raw = _one(
        collector, "select output_tokens, cost_usd, cost_source, attributes->>'causeline.cost_error', "
                   "attributes->>'gen_ai.usage.output_tokens' from spans where trace_id = :t", t=tid)
    assert output_tokens == 10**12
    assert cost is None and source == "unpriced" and reason
    assert raw == str(10**15)


def _model_call_row(project_id: int, tid: bytes, tokens: int, cost: Decimal) -> tuple:
    raw = decode_protobuf(P.request([P.span(tid, P.span_id(), name="chat gpt-4o", attributes=P.llm_attrs())])
                          .SerializeToString()).spans[0]
    span = dataclasses.replace(normalize(raw), tokens=Tokens(input=tokens, output=tokens),
                               cost_usd=cost, cost_source="reported")
    return span_row(project_id, span)


def test_rollup_sums_saturate_instead_of_overflowing(collector, database_url):
    # Per-span values are clamped in normalize/pricing, so only many spans can reach the column
    # limits; rows are built directly to exercise the SQL's own arithmetic.
    tid = P.trace_id()
    big, cost = 2**62, Decimal("999999999")
    with psycopg.connect(libpq_url(database_url)) as conn:
        prepare_connection(conn)
        # Two in one batch (the sums), then more on conflict (the additions).
        write_batch(conn, [_model_call_row(collector.project_id, tid, big, cost) for _ in range(2)], [])
        for _ in range(11):
            write_batch(conn, [_model_call_row(collector.project_id, tid, big, cost)], [])
    input_tokens, output_tokens, trace_cost, spans = _one(
        collector, "select input_tokens, output_tokens, cost_usd, span_count from traces where trace_id = :t", t=tid)
    assert (input_tokens, output_tokens, spans) == (2**63 - 1, 2**63 - 1, 13)
    assert trace_cost == Decimal("9999999999.9999999999")
    usage_input, usage_cost = _one(collector, "select max(input_tokens), max(cost_usd) from usage_rollups")
    assert usage_input == 2**63 - 1 and usage_cost == Decimal("9999999999.9999999999")


def test_wide_identifiers_in_every_rollup_key_are_stored(collector):
    # Random 3-byte characters: 256 of them are 768 bytes, five such keys exceed a btree row.
    rng = random.Random(7)
    tid, wide = P.trace_id(), "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(1000))
    llm = P.span(tid, P.span_id(), name="chat x", attributes={
        **P.llm_attrs(model=wide + "req"), "gen_ai.response.model": wide + "resp",
        "gen_ai.provider.name": wide + "prov", "gen_ai.agent.name": wide + "agent"})
    tool = P.span(tid, P.span_id(), name="execute_tool x", start=P.BASE_NS + 1, attributes={
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": wide + "tool", "gen_ai.agent.name": wide})
    response = post(collector, P.request([llm, tool], service=wide + "svc").SerializeToString())
    assert response.status_code == 200, response.text
    calls, = _one(collector, "select count(*) from usage_rollups")
    tools, = _one(collector, "select count(*) from tool_rollups")
    assert (calls, tools) == (1, 1)
