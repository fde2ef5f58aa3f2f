"""OTLP/HTTP ingest over real HTTP into real PostgreSQL: formats, encodings and every rejection path."""

from __future__ import annotations

import gzip
import json
import zlib

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from sqlalchemy import text

from tests import otlp_payloads as P

PB = {"content-type": "application/x-protobuf"}


def post(collector, body: bytes, headers: dict | None = None, key: str | None = None) -> httpx.Response:
    return httpx.post(collector.traces_endpoint, content=body,
                      headers={**PB, **collector.auth(key), **(headers or {})}, timeout=30)


def count(collector, sql: str, **params) -> int:
    with collector.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def status_message(response: httpx.Response) -> str:
    if response.headers["content-type"].startswith("application/json"):
        return response.json()["message"]
    return status_pb2.Status.FromString(response.content).message


def simple_trace(n: int = 3):
    tid = P.trace_id()
    root = P.span(tid, P.span_id(), name="invoke_agent planner",
                  attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"})
    children = [P.span(tid, P.span_id(), parent=root.span_id, name="chat gpt-4o", start=P.BASE_NS + i,
                       attributes=P.llm_attrs()) for i in range(n - 1)]
    return tid, [root, *children]


def test_protobuf_export_is_stored_with_rollups(collector):
    tid, spans = simple_trace(3)
    response = post(collector, P.request(spans).SerializeToString())
    assert response.status_code == 200, response.text
    reply = ExportTraceServiceResponse.FromString(response.content)
    assert not reply.HasField("partial_success")
    assert count(collector, "select count(*) from spans where trace_id = :t", t=tid) == 3
    with collector.engine.connect() as conn:
        row = conn.execute(text(
            "select span_count, llm_calls, input_tokens, output_tokens, root_name, agents, service_name "
            "from traces where trace_id = :t"), {"t": tid}).one()
    assert tuple(row) == (3, 2, 200, 40, "invoke_agent planner", ["planner"], "demo-service")
    assert count(collector, "select count(*) from span_edges where relation = 'parent'") == 2
    assert count(collector, "select sum(calls) from usage_rollups") == 2


def test_json_export_with_hex_ids_string_int64_and_unknown_fields(collector):
    body = {
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
            "scopeSpans": [{"scope": {"name": "x"}, "spans": [{
                "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                "name": "chat gpt-4o", "kind": 3, "startTimeUnixNano": "1763800000000000000",
                "endTimeUnixNano": 1763800000500000000, "someFutureField": {"a": 1},
                "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}},
                               {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}],
                "status": {"code": 2, "message": "boom"},
            }]}],
        }],
    }
    response = httpx.post(collector.traces_endpoint, json=body, headers=collector.auth(), timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {}
    with collector.engine.connect() as conn:
        row = conn.execute(text("select encode(span_id, 'hex'), input_tokens, status, duration_ns, service_name "
                                "from spans")).one()
    assert tuple(row) == ("eee19b7ec3c1b174", 12, "error", 500_000_000, "json-svc")


def test_empty_request_succeeds(collector):
    assert post(collector, b"").status_code == 200
    response = httpx.post(collector.traces_endpoint, content=b"{}",
                          headers={"content-type": "application/json", **collector.auth()})
    assert response.status_code == 200 and response.json() == {}


@pytest.mark.parametrize("encoding,compress", [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some clients send
])
def test_compressed_bodies(collector, encoding, compress):
    tid, spans = simple_trace(2)
    response = post(collector, compress(P.request(spans).SerializeToString()), {"content-encoding": encoding})
    assert response.status_code == 200, response.text
    assert count(collector, "select count(*) from spans where trace_id = :t", t=tid) == 2


@pytest.mark.parametrize("headers,status,message", [
    ({"content-type": "text/plain"}, 415, "Content-Type must be application/x-protobuf or application/json"),
    ({"content-encoding": "br"}, 415, "Content-Encoding must be gzip, deflate or identity"),
    ({"content-encoding": "gzip"}, 400, "not valid gzip"),
])
def test_media_type_and_encoding_errors(collector, headers, status, message):
    response = post(collector, b"\x0a\x00", headers)
    assert response.status_code == status
    assert message in status_message(response)


def test_auth_errors(collector, sessionmaker):
    body = P.request(simple_trace(1)[1]).SerializeToString()
    missing = httpx.post(collector.traces_endpoint, content=body, headers=PB)
    assert missing.status_code == 401 and "missing API key" in status_message(missing)
    wrong = post(collector, body, key="cl_not-a-real-key")
    assert wrong.status_code == 401 and "unknown or revoked" in status_message(wrong)
    read_only = post(collector, body, key=collector.read_only_key)
    assert read_only.status_code == 403 and "lacks the 'ingest' scope" in status_message(read_only)
    via_header = httpx.post(collector.traces_endpoint, content=body, headers={**PB, "x-causeline-key": collector.key})
    assert via_header.status_code == 200
    assert count(collector, "select count(*) from spans") == 1


def test_undecodable_bodies_are_400_with_a_reason(collector):
    garbage = post(collector, b"\xff\xff\xff\xff")
    assert garbage.status_code == 400 and "not a valid protobuf" in status_message(garbage)
    bad_json = httpx.post(collector.traces_endpoint, content=b"{not json",
                          headers={"content-type": "application/json", **collector.auth()})
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["message"]
    wrong_shape = httpx.post(collector.traces_endpoint, json={"resourceSpans": "nope"}, headers=collector.auth())
    assert wrong_shape.status_code == 400 and "invalid OTLP JSON" in wrong_shape.json()["message"]


def test_size_limits_before_and_after_decompression(database_url, engine, sessionmaker, project):
    from tests.collector.conftest import make_settings, start_collector
    from tests.live import live_server

    settings = make_settings(database_url, max_body_bytes=64 * 1024)
    service, app = start_collector(database_url, engine, sessionmaker, project, settings=settings)
    key = project[1]
    try:
        with live_server(app) as url:
            big = httpx.post(f"{url}/v1/traces", content=b"\x00" * (65 * 1024),
                             headers={**PB, "authorization": f"Bearer {key}"})
            assert big.status_code == 413 and "exceeds the 65536-byte limit" in status_message(big)
            bomb = gzip.compress(b"\x00" * (10 * 1024 * 1024))  # 10 KiB on the wire, 10 MiB inflated
            assert len(bomb) < 64 * 1024
            inflated = httpx.post(f"{url}/v1/traces", content=bomb,
                                  headers={**PB, "content-encoding": "gzip", "authorization": f"Bearer {key}"})
            assert inflated.status_code == 413 and "decompressed body exceeds" in status_message(inflated)
    finally:
        service.stop()


def test_invalid_spans_are_rejected_individually(collector):
    tid = P.trace_id()
    good = P.span(tid, P.span_id(), name="good")
    short_id = P.span(tid, b"\x01\x02", name="short id")
    backwards = P.span(tid, P.span_id(), name="backwards")
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1
    no_start = P.span(tid, P.span_id(), name="no start")
    no_start.start_time_unix_nano = 0
    utf8 = P.span(tid, P.span_id(), name="UTF8MARK")
    body = P.request([good, short_id, backwards, no_start, utf8]).SerializeToString()
    body = body.replace(b"UTF8MARK", b"bad\xff\xfe\xfdUT")  # same length, invalid UTF-8
    response = post(collector, body)
    assert response.status_code == 200, response.text
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 4
    for fragment in ("span_id must be 8 non-zero bytes", "is before start_time_unix_nano",
                     "start_time_unix_nano is missing", "invalid UTF-8"):
        assert fragment in partial.error_message
    assert count(collector, "select count(*) from spans") == 1


def test_oversized_and_hostile_values_are_truncated_or_cleaned_not_dropped(collector):
    tid = P.trace_id()
    big = "x" * (200 * 1024)
    pb = P.span(tid, P.span_id(), name="nul\x00name", attributes={"input.value": big, "nul": "a\x00b"})
    assert post(collector, P.request([pb]).SerializeToString()).status_code == 200
    with collector.engine.connect() as conn:
        name, value, nul, truncated = conn.execute(text(
            "select name, attributes->>'input.value', attributes->>'nul', attributes->'causeline.truncated' from spans"
        )).one()
    assert name == "nul\ufffdname" and nul == "a\ufffdb"
    assert value.endswith("…[truncated 139264 chars]") and len(value) < 70 * 1024
    assert truncated == ["input.value"]


def test_redelivery_stores_and_counts_nothing_twice(collector):
    tid, spans = simple_trace(4)
    body = P.request(spans).SerializeToString()
    for _ in range(3):
        assert post(collector, body).status_code == 200
    # The same spans mixed into a new request with one new span: only the new one counts.
    extra = P.span(tid, P.span_id(), parent=spans[0].span_id, name="chat gpt-4o", attributes=P.llm_attrs(inp=7, out=3))
    assert post(collector, P.request([*spans, extra]).SerializeToString()).status_code == 200
    assert count(collector, "select count(*) from spans") == 5
    with collector.engine.connect() as conn:
        row = conn.execute(text("select span_count, llm_calls, input_tokens from traces")).one()
    assert tuple(row) == (5, 4, 307)
    assert count(collector, "select sum(calls) from usage_rollups") == 4
    assert count(collector, "select sum(input_tokens) from usage_rollups") == 307
    assert count(collector, "select count(*) from span_edges") == 4
    assert collector.service.writer.stats.spans_duplicate == 3 * 4 - 4 + 4


def test_children_before_parents_across_requests(collector):
    tid = P.trace_id()
    root_id = P.span_id()
    child = P.span(tid, P.span_id(), parent=root_id, name="execute_tool search", start=P.BASE_NS + 5,
                   attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
                   status=2, message="tool failed")
    root = P.span(tid, root_id, name="invoke_agent support", duration=10_000_000,
                  attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"},
                  )
    assert post(collector, P.request([child], service="worker").SerializeToString()).status_code == 200
    with collector.engine.connect() as conn:
        assert conn.execute(text("select root_name, service_name from traces")).one() == (None, "worker")
    assert post(collector, P.request([root], service="frontend").SerializeToString()).status_code == 200
    with collector.engine.connect() as conn:
        row = conn.execute(text(
            "select root_name, service_name, span_count, error_count, services from traces")).one()
    assert tuple(row) == ("invoke_agent support", "frontend", 2, 1, ["frontend", "worker"])


def test_links_become_typed_edges_across_traces(collector):
    first_trace, second_trace = P.trace_id(), P.trace_id()
    failed = P.span(first_trace, P.span_id(), name="chat gpt-4o", status=2, attributes=P.llm_attrs())
    fallback = P.span(second_trace, P.span_id(), name="chat claude", attributes=P.llm_attrs("claude-sonnet-4-5"),
                      links=[(first_trace, failed.span_id, {"causeline.link.type": "fallback_of"}),
                             (first_trace, failed.span_id, {})])
    assert post(collector, P.request([failed, fallback]).SerializeToString()).status_code == 200
    with collector.engine.connect() as conn:
        relations = conn.execute(text(
            "select relation from span_edges where trace_id = :t and linked_trace_id = :l order by relation"),
            {"t": second_trace, "l": first_trace}).scalars().all()
    assert relations == ["fallback_of", "link"]


def test_metrics_health_and_readiness(collector, sessionmaker):
    from db.queries.auth import create_api_key

    tid, spans = simple_trace(2)
    post(collector, P.request(spans).SerializeToString())
    assert httpx.get(f"{collector.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{collector.url}/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    assert httpx.get(f"{collector.url}/metrics").status_code == 401
    # A project's ingest+read key does not open the process-wide counters; a `metrics` key does.
    assert httpx.get(f"{collector.url}/metrics", headers=collector.auth()).status_code == 403
    with sessionmaker.begin() as session:
        metrics_key = create_api_key(session, collector.project_id, name="prometheus", scopes=["metrics"]).secret
    metrics = httpx.get(f"{collector.url}/metrics", headers=collector.auth(metrics_key)).text
    assert "causeline_spans_written_total 2.0" in metrics
    assert 'causeline_ingest_requests_total{status="200"} 1.0' in metrics
    assert "causeline_queue_spans 0.0" in metrics


def test_nul_in_scope_and_keys_is_cleaned(collector):
    request = P.request([P.span(P.trace_id(), P.span_id(), attributes={"k\x00ey": "v"})])
    request.resource_spans[0].scope_spans[0].scope.name = "lib\x00name"
    request.resource_spans[0].scope_spans[0].scope.version = "1\x00"
    assert post(collector, request.SerializeToString()).status_code == 200
    with collector.engine.connect() as conn:
        scope, keys = conn.execute(text("select scope, (select array_agg(k) from jsonb_object_keys(attributes) k) "
                                        "from spans")).one()
    assert scope == "lib\ufffdname 1\ufffd" and keys == ["k\ufffdey"]


def test_decoding_in_worker_processes(database_url, engine, sessionmaker, project):
    from tests.collector.conftest import make_settings, start_collector
    from tests.live import live_server

    settings = make_settings(database_url, ingest_processes=1)
    service, app = start_collector(database_url, engine, sessionmaker, project, settings=settings)
    try:
        with live_server(app) as url:
            tid = P.trace_id()
            bad = P.span(tid, P.span_id(), name="backwards")
            bad.end_time_unix_nano = bad.start_time_unix_nano - 1
            body = P.request([P.span(tid, P.span_id(), attributes=P.llm_attrs()), bad]).SerializeToString()
            headers = {**PB, "authorization": f"Bearer {project[1]}"}
            ok = httpx.post(f"{url}/v1/traces", content=body, headers=headers, timeout=60)
            assert ok.status_code == 200
            assert ExportTraceServiceResponse.FromString(ok.content).partial_success.rejected_spans == 1
            garbage = httpx.post(f"{url}/v1/traces", content=b"\xff\xff", headers=headers, timeout=60)
            assert garbage.status_code == 400 and "not a valid protobuf" in status_message(garbage)
    finally:
        service.stop()
    with engine.connect() as conn:
        assert conn.execute(text("select count(*), min(cost_source) from spans")).one() == (1, "genai-prices 0.2.3")
