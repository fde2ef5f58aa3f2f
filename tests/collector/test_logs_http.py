"""POST /v1/logs: GenAI events from the real OpenTelemetry SDK log exporter become their span's content,
whichever of the log and the span arrives first."""

from __future__ import annotations

import json

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tests.collector.test_ingest_http import count, status_message

TRACE = "7b8efff798038103d269b633813fc60c"
SPAN = "00000000000000a1"


def logs_endpoint(collector) -> str:
    return f"{collector.url}/v1/logs"


def read_spans(collector, trace_hex: str) -> dict:
    response = httpx.get(f"{collector.url}/api/traces/{trace_hex}", headers=collector.auth(), timeout=30)
    assert response.status_code == 200, response.text
    return {s["name"]: s for s in response.json()["spans"]}


def providers(collector):
    resource = Resource.create({"service.name": "genai-app"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=collector.traces_endpoint, headers=collector.auth())))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(
        OTLPLogExporter(endpoint=logs_endpoint(collector), headers=collector.auth())))
    return tracer_provider, logger_provider


@pytest.mark.parametrize("logs_first", [True, False], ids=["log-before-span", "span-before-log"])
def test_sdk_genai_events_become_their_spans_content(collector, logs_first):
    tracer_provider, logger_provider = providers(collector)
    tracer = tracer_provider.get_tracer("tests")
    logger = logger_provider.get_logger("tests")
    with tracer.start_as_current_span("invoke_agent helper"):
        with tracer.start_as_current_span("chat gpt-4o", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}) as per_message:
            # GenAI semconv 1.28-1.36: one event per message, the role implied by the name.
            logger.emit(event_name="gen_ai.system.message", body={"content": "You are terse."})
            logger.emit(event_name="gen_ai.user.message", body={"content": "2+2?"})
            logger.emit(event_name="gen_ai.choice", body={
                "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "4"}})
        with tracer.start_as_current_span("chat claude", attributes={"gen_ai.operation.name": "chat"}):
            # GenAI semconv >= 1.37: one event per call, structured messages in its attributes.
            logger.emit(event_name="gen_ai.client.inference.operation.details", attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.system_instructions": [{"type": "text", "content": "Be kind."}],
                "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}],
                "gen_ai.output.messages": [{"role": "assistant", "finish_reason": "stop",
                                            "parts": [{"type": "text", "content": "hello"}]}]})
        with tracer.start_as_current_span("plain step"):
            pass
    first, second = (logger_provider, tracer_provider) if logs_first else (tracer_provider, logger_provider)
    assert first.force_flush(10_000)
    trace_hex = format(per_message.get_span_context().trace_id, "032x")
    if logs_first:
        assert count(collector, "select count(*) from genai_log_records") == 4
        assert count(collector, "select count(*) from spans") == 0
    assert second.force_flush(10_000)
    tracer_provider.shutdown()
    logger_provider.shutdown()

    spans = read_spans(collector, trace_hex)
    assert json.loads(spans["chat gpt-4o"]["input"]) == [
        {"content": "You are terse.", "role": "system"}, {"content": "2+2?", "role": "user"}]
    assert json.loads(spans["chat gpt-4o"]["output"]) == [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "4"}}]
    assert json.loads(spans["chat claude"]["input"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be kind."}]},
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    assert json.loads(spans["chat claude"]["output"])[0]["parts"][0]["content"] == "hello"
    assert spans["plain step"]["input"] is None and spans["plain step"]["output"] is None
    # The span detail read (UI panel) merges the same way.
    from db.queries.traces import get_span
    from sqlalchemy.orm import Session
    with Session(collector.engine) as session:
        row = get_span(session, collector.project_id, bytes.fromhex(trace_hex),
                       bytes.fromhex(spans["chat gpt-4o"]["span_id"]))
        assert json.loads(row.output)[0]["message"]["content"] == "4"
        assert not session.dirty  # merged for reading, never written back


def record(event_name: str | None = None, body: dict | None = None, trace: str = TRACE, span: str = SPAN,
           **extra) -> dict:
    out = {"timeUnixNano": "1763800000000000000", "traceId": trace, "spanId": span, **extra}
    if event_name:
        out["eventName"] = event_name
    if body is not None:
        out["body"] = body
    return out


def post_logs(collector, records: list, content_type: str = "application/json") -> httpx.Response:
    body = json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}).encode()
    return httpx.post(logs_endpoint(collector), content=body,
                      headers={"content-type": content_type, **collector.auth()}, timeout=30)


USER = {"kvlistValue": {"values": [{"key": "content", "value": {"stringValue": "hello"}}]}}


def test_json_logs_other_records_are_counted_as_not_stored(collector):
    response = post_logs(collector, [
        record("gen_ai.user.message", USER),
        record(None, {"stringValue": "an ordinary application log line"}),
        record("gen_ai.user.message", USER, trace="", span=""),
        record("gen_ai.user.message", USER, severityNumber="SEVERITY_NUMBER_NOPE"),
        record(None, USER, attributes=[{"key": "event.name", "value": {"stringValue": "gen_ai.user.message"}}],
               timeUnixNano="1763800000000000001"),  # older SDKs: the name in an attribute
    ])
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "3"
    message = partial["errorMessage"]
    assert "not a GenAI content event (event name none)" in message
    assert "no span to attach it to" in message
    assert "severityNumber 'SEVERITY_NUMBER_NOPE' is not a SeverityNumber name" in message
    assert count(collector, "select count(*) from genai_log_records") == 2


def test_redelivered_logs_are_stored_once(collector):
    for _ in range(2):
        response = post_logs(collector, [record("gen_ai.user.message", USER)])
        assert response.status_code == 200 and response.json() == {}
    assert count(collector, "select count(*) from genai_log_records") == 1


def test_logs_share_the_traces_checks(collector):
    missing_key = httpx.post(logs_endpoint(collector), content=b"{}", headers={"content-type": "application/json"})
    assert missing_key.status_code == 401 and "missing API key" in status_message(missing_key)
    read_only = httpx.post(logs_endpoint(collector), content=b"{}",
                           headers={"content-type": "application/json", **collector.auth(collector.read_only_key)})
    assert read_only.status_code == 403
    wrong_type = httpx.post(logs_endpoint(collector), content=b"{}",
                            headers={"content-type": "text/plain", **collector.auth()})
    assert wrong_type.status_code == 415
    ambiguous = httpx.post(logs_endpoint(collector), content=b'{"resourceLogs": [], "resource_logs": []}',
                           headers={"content-type": "application/json", **collector.auth()})
    assert ambiguous.status_code == 400 and "both 'resourceLogs' and 'resource_logs'" in status_message(ambiguous)
    garbage = httpx.post(logs_endpoint(collector), content=b"\xff\xff\xff",
                         headers={"content-type": "application/x-protobuf", **collector.auth()})
    assert garbage.status_code == 400
    assert "ExportLogsServiceRequest" in status_message(garbage)


def test_protobuf_success_is_an_export_logs_response(collector):
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    request = ExportLogsServiceRequest()
    log = request.resource_logs.add().scope_logs.add().log_records.add(
        time_unix_nano=1, trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(SPAN), event_name="app.started")
    log.body.string_value = "hi"
    response = httpx.post(logs_endpoint(collector), content=request.SerializeToString(),
                          headers={"content-type": "application/x-protobuf", **collector.auth()}, timeout=30)
    assert response.status_code == 200
    reply = ExportLogsServiceResponse.FromString(response.content)
    assert reply.partial_success.rejected_log_records == 1
    assert "event name 'app.started'" in reply.partial_success.error_message
