"""OTLP/gRPC ingest: the real OpenTelemetry SDK gRPC exporter (and a plain gRPC client where the exact
status code or trailer matters), over real gRPC, into real PostgreSQL."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from collector.grpc_server import RETRY_INFO_KEY, STATUS_DETAILS_KEY
from db.engine import make_engine, make_sessionmaker
from tests import otlp_payloads as P
from tests.collector.conftest import GrpcCollector, make_settings, start_collector
from tests.live import live_grpc

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def sdk_spans(big_attribute_chars: int = 0):
    """Three finished SDK spans of one trace: an agent and two model calls."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "grpc-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("invoke_agent triage", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage"}):
        for model in ("gpt-4o", "gpt-4o-mini"):
            with tracer.start_as_current_span(f"chat {model}", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": model, "gen_ai.usage.input_tokens": 100,
                    "gen_ai.usage.output_tokens": 20, "padding": "x" * big_attribute_chars}):
                pass
    provider.shutdown()
    return memory.get_finished_spans()


def exporter(collector: GrpcCollector, key: str | None = None, **kwargs) -> OTLPSpanExporter:
    headers = {"authorization": f"Bearer {key}"} if key else None
    return OTLPSpanExporter(endpoint=collector.endpoint, insecure=True, headers=headers, **kwargs)


def export(collector: GrpcCollector, spans, key: str | None = None, **kwargs) -> SpanExportResult:
    sdk = exporter(collector, key, **kwargs)
    try:
        return sdk.export(spans)
    finally:
        sdk.shutdown()


def call(target: str, body: bytes, metadata=(), compression=None) -> ExportTraceServiceResponse:
    """One Export with a raw body; raises grpc.RpcError (code(), details(), trailing_metadata())."""
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", -1)]) as channel:
        method = channel.unary_unary(EXPORT, request_serializer=None,
                                     response_deserializer=ExportTraceServiceResponse.FromString)
        return method(body, metadata=metadata, compression=compression, timeout=30)


def refused(target: str, body: bytes, metadata=(), compression=None) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(target, body, metadata, compression)
    return caught.value


def bearer(key: str) -> tuple:
    return (("authorization", f"Bearer {key}"),)


def stored(collector, sql: str = "select count(*) from spans", **params) -> int:
    with collector.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def one_trace_body(n: int, bad: int = 0) -> bytes:
    tid = P.trace_id()
    spans = [P.span(tid, P.span_id(), start=P.BASE_NS + i) for i in range(n)]
    spans += [P.span(b"\x01\x02\x03", P.span_id()) for _ in range(bad)]  # a 3-byte trace id is invalid
    return P.request(spans).SerializeToString()


def grpc_metric(collector, code: str) -> float:
    return collector.service.metrics.registry.get_sample_value("causeline_ingest_grpc_requests_total", {"code": code}) or 0


@pytest.mark.parametrize("compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip], ids=["plain", "gzip"])
def test_sdk_exporter_spans_are_committed_and_normalized(grpc_collector, compression):
    spans = sdk_spans()
    assert export(grpc_collector, spans, grpc_collector.key, compression=compression) == SpanExportResult.SUCCESS
    trace_id = spans[0].context.trace_id.to_bytes(16, "big")
    with grpc_collector.engine.connect() as conn:
        rows = conn.execute(text("select name, category, service_name, cost_source from spans where trace_id = :t"),
                            {"t": trace_id}).all()
        trace = conn.execute(text("select span_count, llm_calls, input_tokens from traces where trace_id = :t"),
                             {"t": trace_id}).one()
    by_name = {row.name: row for row in rows}
    assert by_name["invoke_agent triage"].category == "agent"
    assert by_name["chat gpt-4o"].category == "llm"
    assert by_name["chat gpt-4o"].cost_source.startswith("genai-prices")
    assert {row.service_name for row in rows} == {"grpc-agent"}
    assert tuple(trace) == (3, 2, 200)
    assert grpc_metric(grpc_collector, "OK") == 1


def test_redelivered_spans_are_stored_and_counted_once(grpc_collector):
    spans = sdk_spans()
    for _ in range(2):
        assert export(grpc_collector, spans, grpc_collector.key) == SpanExportResult.SUCCESS
    assert stored(grpc_collector) == 3
    assert stored(grpc_collector, "select span_count from traces") == 3
    assert stored(grpc_collector, "select sum(calls) from usage_rollups") == 2
    assert stored(grpc_collector, "select sum(input_tokens) from usage_rollups") == 200
    assert grpc_collector.service.writer.stats.spans_duplicate == 3


@pytest.mark.parametrize("key", [None, "cl_not_a_real_key_0123456789"], ids=["missing", "unknown"])
def test_sdk_exporter_without_a_valid_key_stores_nothing(grpc_collector, key):
    assert export(grpc_collector, sdk_spans(), key) == SpanExportResult.FAILURE
    assert stored(grpc_collector) == 0
    assert grpc_metric(grpc_collector, "UNAUTHENTICATED") == 1


def test_key_problems_get_their_grpc_codes(grpc_collector):
    body, target = one_trace_body(2), grpc_collector.target
    missing = refused(target, body)
    assert (missing.code(), missing.details().split(":")[0]) == (grpc.StatusCode.UNAUTHENTICATED, "missing API key")
    unknown = refused(target, body, bearer("cl_not_a_real_key_0123456789"))
    assert (unknown.code(), unknown.details()) == (grpc.StatusCode.UNAUTHENTICATED, "unknown or revoked API key")
    malformed = refused(target, body, bearer("x" * 300))
    assert malformed.code() == grpc.StatusCode.UNAUTHENTICATED and "malformed" in malformed.details()
    read_only = refused(target, body, bearer(grpc_collector.read_only_key))
    assert read_only.code() == grpc.StatusCode.PERMISSION_DENIED and "'ingest' scope" in read_only.details()
    for error in (missing, unknown, malformed, read_only):  # not retryable: no RetryInfo
        assert RETRY_INFO_KEY not in dict(error.trailing_metadata())
    assert stored(grpc_collector) == 0
    # The key may also come as x-causeline-key, like over HTTP.
    reply = call(target, body, (("x-causeline-key", grpc_collector.key),))
    assert not reply.HasField("partial_success")
    assert stored(grpc_collector) == 2


def test_partial_success_reports_rejected_spans_and_stores_the_rest(grpc_collector):
    reply = call(grpc_collector.target, one_trace_body(2, bad=1), bearer(grpc_collector.key))
    assert reply.partial_success.rejected_spans == 1
    assert "1 span(s) rejected" in reply.partial_success.error_message
    assert "trace_id" in reply.partial_success.error_message
    assert stored(grpc_collector) == 2


def test_a_body_that_is_no_otlp_export_is_invalid_argument(grpc_collector):
    error = refused(grpc_collector.target, b"\xff\xff\xff not protobuf", bearer(grpc_collector.key))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert RETRY_INFO_KEY not in dict(error.trailing_metadata())
    assert stored(grpc_collector) == 0


@pytest.fixture
def small_limit_collector(database_url, engine, sessionmaker, project):
    project_id, key, read_only = project
    settings = make_settings(database_url, max_body_bytes=4096)
    service, _ = start_collector(database_url, engine, sessionmaker, project, settings=settings)
    with live_grpc(service) as target:
        yield GrpcCollector(target, key, read_only, project_id, engine, service)
    service.stop()


def test_oversize_messages_are_refused_plain_or_gzipped(small_limit_collector):
    collector = small_limit_collector
    # The SDK exporter gives up (it retries RESOURCE_EXHAUSTED until its deadline; keep that short).
    assert export(collector, sdk_spans(big_attribute_chars=5000), collector.key, timeout=2) == SpanExportResult.FAILURE
    big = P.request([P.span(P.trace_id(), P.span_id(), attributes={"padding": "a" * 100_000})]).SerializeToString()
    for compression in (None, grpc.Compression.Gzip):  # gzip: ~100 KB inflate from a few hundred bytes
        error = refused(collector.target, big, bearer(collector.key), compression)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert RETRY_INFO_KEY not in dict(error.trailing_metadata())  # not retryable, per the OTLP spec
    assert stored(collector) == 0
    # Under the limit still works on the same server.
    assert export(collector, sdk_spans(), collector.key) == SpanExportResult.SUCCESS
    assert stored(collector) == 3


def test_full_queue_is_unavailable_with_retry_info_then_drains(database_url, engine, sessionmaker, project):
    settings = make_settings(database_url, queue_max_spans=10, retry_after_s=3)
    # The writer is not started yet: accepted requests wait in the queue.
    service, _ = start_collector(database_url, engine, sessionmaker, project, settings=settings, start_writer=False)
    metadata = bearer(project[1])
    with live_grpc(service) as target:
        first: dict = {}
        waiting = threading.Thread(target=lambda: first.update(reply=call(target, one_trace_body(8), metadata)))
        waiting.start()
        while service.writer.queued_spans < 8:
            threading.Event().wait(0.01)
        error = refused(target, one_trace_body(5), metadata)
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "queue is full" in error.details()
        trailers = dict(error.trailing_metadata())
        assert error_details_pb2.RetryInfo.FromString(trailers[RETRY_INFO_KEY]).retry_delay.seconds == 3
        status = status_pb2.Status.FromString(trailers[STATUS_DETAILS_KEY])
        assert status.code == grpc.StatusCode.UNAVAILABLE.value[0]
        retry_info = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(retry_info) and retry_info.retry_delay.seconds == 3
        assert not first  # still waiting: not answered before commit
        service.start()
        waiting.join(30)
        assert not first["reply"].HasField("partial_success")
        call(target, one_trace_body(5), metadata)
    service.stop()
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from spans")).scalar_one() == 13


def test_an_empty_export_is_ok(grpc_collector):
    reply = call(grpc_collector.target, b"", bearer(grpc_collector.key))
    assert not reply.HasField("partial_success")


def test_unreachable_database_is_unavailable_with_retry_info(database_url, engine, project):
    dead = make_engine("postgresql://nobody@127.0.0.1:1/nothing", pool_size=1)  # nothing listens on port 1
    service, _ = start_collector(database_url, engine, make_sessionmaker(dead), project)
    try:
        with live_grpc(service) as target:
            error = refused(target, one_trace_body(1), bearer(project[1]))
    finally:
        service.stop()
        dead.dispose()
    assert error.code() == grpc.StatusCode.UNAVAILABLE and "OperationalError" in error.details()
    assert error_details_pb2.RetryInfo.FromString(dict(error.trailing_metadata())[RETRY_INFO_KEY]).retry_delay.seconds == 2


def test_unexpected_error_is_internal_and_logged(database_url, engine, sessionmaker, project, monkeypatch, caplog):
    service, _ = start_collector(database_url, engine, sessionmaker, project)

    def broken(project_id):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(service, "overrides", broken)
    try:
        with live_grpc(service) as target:
            error = refused(target, one_trace_body(1), bearer(project[1]))
    finally:
        service.stop()
    assert error.code() == grpc.StatusCode.INTERNAL and "RuntimeError" in error.details()
    assert RETRY_INFO_KEY not in dict(error.trailing_metadata())
    assert "unexpected error while handling an OTLP/gRPC export" in caplog.text


def test_a_client_giving_up_is_counted_cancelled_and_the_writer_carries_on(database_url, engine, sessionmaker, project):
    service, _ = start_collector(database_url, engine, sessionmaker, project, start_writer=False)
    try:
        with live_grpc(service) as target:
            with grpc.insecure_channel(target) as channel:
                method = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
                with pytest.raises(grpc.RpcError) as caught:  # waits for a commit that cannot come yet
                    method(one_trace_body(2), metadata=bearer(project[1]), timeout=0.5)
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            deadline = time.monotonic() + 30
            while service.metrics.registry.get_sample_value(
                    "causeline_ingest_grpc_requests_total", {"code": "CANCELLED"}) != 1:
                assert time.monotonic() < deadline, "the server never saw the cancellation"
                time.sleep(0.01)
            assert service.inflight.used == 0
            service.start()
            assert not call(target, one_trace_body(3), bearer(project[1])).HasField("partial_success")
    finally:
        service.stop()
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from spans")).scalar_one() >= 3
