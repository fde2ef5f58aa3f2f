"""The real OpenTelemetry SDK exporter, over real HTTP, into real PostgreSQL."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Status, StatusCode
from sqlalchemy import text


def test_sdk_exporter_spans_arrive_normalized(collector):
    provider = TracerProvider(resource=Resource.create({"service.name": "otel-agent"}))
    exporter = OTLPSpanExporter(endpoint=collector.traces_endpoint, headers=collector.auth())
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")

    with tracer.start_as_current_span("invoke_agent triage", attributes={
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage"}) as agent:
        with tracer.start_as_current_span("chat gpt-4o", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
            "error.type": "timeout"}) as failed:
            failed.set_status(Status(StatusCode.ERROR, "request timed out"))
        with tracer.start_as_current_span("chat claude-sonnet-4-5", links=[
            Link(failed.get_span_context(), {"causeline.link.type": "fallback_of"})], attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 300, "causeline.attempt": 2}):
            pass
        with tracer.start_as_current_span("execute_tool lookup", attributes={
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"}):
            pass
    assert provider.force_flush(10_000)
    provider.shutdown()

    trace_id = agent.get_span_context().trace_id.to_bytes(16, "big")
    with collector.engine.connect() as conn:
        rows = conn.execute(text(
            "select name, category, status, error_class, provider, request_model, input_tokens, cost_source, "
            "service_name from spans where trace_id = :t order by start_ns"), {"t": trace_id}).all()
        edges = conn.execute(text(
            "select relation from span_edges where trace_id = :t order by relation"), {"t": trace_id}).scalars().all()
        trace = conn.execute(text("select span_count, error_count, llm_calls from traces where trace_id = :t"),
                             {"t": trace_id}).one()
    by_name = {row.name: row for row in rows}
    assert by_name["invoke_agent triage"].category == "agent"
    assert by_name["chat gpt-4o"][1:5] == ("llm", "error", "timeout", "openai")
    fallback = by_name["chat claude-sonnet-4-5"]
    assert (fallback.category, fallback.status, fallback.input_tokens) == ("llm", "unset", 1200)
    assert fallback.cost_source.startswith("genai-prices")
    assert by_name["execute_tool lookup"].category == "tool"
    assert {row.service_name for row in rows} == {"otel-agent"}
    assert edges == ["fallback_of", "parent", "parent", "parent"]
    assert tuple(trace) == (4, 1, 2)
