"""The SDK end to end: a real agent program exports through the real OTLP exporter, over real HTTP,
into the collector and PostgreSQL; categories, typed links, errors and tokens arrive as intended."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from sqlalchemy import text

from tests.collector.conftest import start_collector
from tests.live import live_server

AGENT_PROGRAM = textwrap.dedent('''
    import sys
    import causeline

    assert causeline.init(service_name="e2e-agent", endpoint=sys.argv[1], api_key=sys.argv[2],
                          capture_content=True, auto_instrument=False)

    @causeline.tool("lookup_order")
    def lookup_order(order_id):
        raise KeyError(order_id)

    @causeline.agent("billing")
    def billing(note):
        with causeline.guardrail("refund-policy") as check:
            check.blocked("refund above limit")
        return "escalated"

    @causeline.agent("triage")
    def triage(question):
        with causeline.routing_decision("router", candidates=["gpt-4o", "claude-sonnet-4-5"],
                                        policy="latency-first") as route:
            route.choose("gpt-4o", reason="fastest")
        try:
            with causeline.model_call("openai", "gpt-4o", attempt=1) as first:
                raise TimeoutError("upstream timed out after 30s")
        except TimeoutError:
            pass
        with causeline.model_call("anthropic", "claude-sonnet-4-5", fallback_of=first) as second:
            second.record_usage(input_tokens=1000, output_tokens=200, cache_read=100)
            second.record_response(model="claude-sonnet-4-5-20250929", finish_reasons=["stop"], output="ok")
        try:
            lookup_order("A-1")
        except KeyError:
            pass
        with causeline.step("summarize", uses_output_of=second):
            pass
        with causeline.handoff("billing"):
            return billing("refund please <b>now</b>")

    triage("where is my order?")
    causeline.shutdown()
    stats = causeline.stats()
    assert stats.get("spans_dropped", 0) == 0, stats
''')


def test_sdk_spans_arrive_with_categories_links_and_errors(database_url, engine, sessionmaker, project, tmp_path):
    service, app = start_collector(database_url, engine, sessionmaker, project)
    program = tmp_path / "agent.py"
    program.write_text(AGENT_PROGRAM)
    try:
        with live_server(app) as url:
            result = subprocess.run([sys.executable, str(program), url, project[1]], capture_output=True,
                                    text=True, timeout=60)
            assert result.returncode == 0, result.stderr
    finally:
        service.stop()

    with engine.connect() as conn:
        spans = {row.name: row for row in conn.execute(text(
            "select name, category, status, error_class, error_type, agent_name, provider, request_model, "
            "response_model, input_tokens, cache_read_tokens, cost_source, encode(span_id, 'hex') as sid "
            "from spans"))}
        edges = conn.execute(text(
            "select s.name, e.relation, l.name from span_edges e join spans s on s.span_id = e.span_id "
            "join spans l on l.span_id = e.linked_span_id where e.relation <> 'parent' order by 2")).all()
        trace = conn.execute(text("select span_count, error_count, agents, services from traces")).one()

    categories = {name: row.category for name, row in spans.items()}
    assert categories["invoke_agent triage"] == "agent"
    assert categories["invoke_agent billing"] == "agent"
    assert categories["execute_tool lookup_order"] == "tool"
    assert categories["chat gpt-4o"] == "llm" and categories["chat claude-sonnet-4-5"] == "llm"
    assert "routing" in categories.values() and "guardrail" in categories.values()

    failed = spans["chat gpt-4o"]
    assert (failed.status, failed.error_class) == ("error", "timeout")
    fallback = spans["chat claude-sonnet-4-5"]
    assert fallback.status in ("ok", "unset") and fallback.error_class is None
    assert (fallback.provider, fallback.response_model) == ("anthropic", "claude-sonnet-4-5-20250929")
    assert (fallback.input_tokens, fallback.cache_read_tokens) == (1000, 100)
    assert fallback.cost_source.startswith("genai-prices")
    assert spans["execute_tool lookup_order"].error_class == "tool_error"
    guardrail = next(row for row in spans.values() if row.category == "guardrail")
    assert (guardrail.status, guardrail.error_class) == ("error", "guardrail_blocked")

    relations = {(src, relation, dst) for src, relation, dst in edges}
    assert ("chat claude-sonnet-4-5", "fallback_of", "chat gpt-4o") in relations
    assert any(r == "data_from" and d == "chat claude-sonnet-4-5" for _, r, d in relations)
    assert any(s == "invoke_agent billing" and r == "handoff_from" for s, r, _ in relations)
    assert trace.span_count == len(spans) and trace.error_count >= 3
    assert set(trace.agents) == {"triage", "billing"} and trace.services == ["e2e-agent"]
