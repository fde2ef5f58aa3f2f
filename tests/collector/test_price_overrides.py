"""A project's price override takes precedence over genai-prices at ingest, from its effective date."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import httpx
from sqlalchemy import text

from db.queries.prices import add_price_override
from tests import otlp_payloads as P


def test_override_prices_matching_spans_exactly(collector, sessionmaker):
    with sessionmaker.begin() as session:
        row = add_price_override(
            session, collector.project_id, model_pattern="gpt-4o*", provider="openai",
            input_per_mtok=Decimal("2"), output_per_mtok=Decimal("8"), cache_read_per_mtok=Decimal("0.5"),
            cache_write_per_mtok=None, effective_from=datetime(2025, 1, 1, tzinfo=timezone.utc), effective_to=None,
        )
    tid = P.trace_id()
    spans = [
        P.span(tid, P.span_id(), name="chat gpt-4o", attributes=P.llm_attrs(
            "gpt-4o", 1_000_000, 100_000, **{"gen_ai.usage.cache_read.input_tokens": 200_000})),
        P.span(tid, P.span_id(), name="chat claude", attributes=P.llm_attrs("claude-sonnet-4-5", 1000, 10, **{"gen_ai.provider.name": "anthropic"})),
    ]
    response = httpx.post(collector.traces_endpoint, content=P.request(spans).SerializeToString(),
                          headers={"content-type": "application/x-protobuf", **collector.auth()})
    assert response.status_code == 200
    with collector.engine.connect() as conn:
        rows = {r.request_model: r for r in conn.execute(text("select request_model, cost_usd, cost_source from spans"))}
    # 800k uncached input at $2/M + 200k cache reads at $0.5/M + 100k output at $8/M
    assert (rows["gpt-4o"].cost_usd, rows["gpt-4o"].cost_source) == (Decimal("2.5"), f"override:{row.id}")
    assert rows["claude-sonnet-4-5"].cost_source.startswith("genai-prices ")
