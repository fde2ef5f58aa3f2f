"""core.otlp_logs: which log records become span content, and in what shape; core.content merges them."""

from __future__ import annotations

import json

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from core.content import with_log_content
from core.otlp import DecodeError
from core.otlp_logs import decode_logs_json, decode_logs_protobuf
from core.otlp_metrics import count_data_points_json, count_data_points_protobuf

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"


def kv(**values) -> dict:
    return {"kvlistValue": {"values": [{"key": k, "value": {"stringValue": v}} for k, v in values.items()]}}


def record(event_name=None, body=None, attributes=(), **extra) -> dict:
    out = {"timeUnixNano": "1763800000000000000", "traceId": TRACE, "spanId": SPAN, **extra}
    if event_name:
        out["eventName"] = event_name
    if body is not None:
        out["body"] = body
    if attributes:
        out["attributes"] = list(attributes)
    return out


def decode(*records) -> object:
    return decode_logs_json(json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": list(records)}]}]}).encode())


def attr(key: str, value: dict) -> dict:
    return {"key": key, "value": value}


@pytest.mark.parametrize("rec,expected_in,expected_out", [
    (record("gen_ai.user.message", kv(content="hi")), [{"content": "hi", "role": "user"}], None),
    (record("gen_ai.system.message", kv(content="be terse", role="system")),
     [{"content": "be terse", "role": "system"}], None),
    (record("gen_ai.assistant.message", {"kvlistValue": {"values": [attr("tool_calls", {"arrayValue": {"values": [
        kv(id="c1", type="function")]}})]}}), [{"tool_calls": [{"id": "c1", "type": "function"}], "role": "assistant"}],
     None),
    (record("gen_ai.tool.message", kv(content="42", id="c1")), [{"content": "42", "id": "c1", "role": "tool"}], None),
    (record("gen_ai.user.message", {"stringValue": "plain body"}), [{"content": "plain body", "role": "user"}], None),
    (record("gen_ai.user.message"), [{"role": "user"}], None),  # content capture off: the turn still shows
    (record("gen_ai.choice", {"kvlistValue": {"values": [attr("index", {"intValue": "0"}),
                                                         attr("message", kv(content="4"))]}}),
     None, [{"index": 0, "message": {"content": "4"}}]),
    (record(None, kv(content="hi"), [attr("event.name", {"stringValue": "gen_ai.user.message"})]),
     [{"content": "hi", "role": "user"}], None),
    (record("gen_ai.client.inference.operation.details", None, [
        attr("gen_ai.input.messages", {"stringValue": '[{"role": "user", "parts": []}]'}),
        attr("gen_ai.output.messages", {"stringValue": '[{"role": "assistant", "parts": []}]'})]),
     [{"role": "user", "parts": []}], [{"role": "assistant", "parts": []}]),
    (record("gen_ai.client.inference.operation.details", None, [
        attr("gen_ai.system_instructions", {"arrayValue": {"values": [kv(type="text", content="be kind")]}}),
        attr("gen_ai.input.messages", {"stringValue": "not json"})]),
     [{"role": "system", "parts": [{"type": "text", "content": "be kind"}]}, {"content": "not json"}], None),
    (record("gen_ai.client.inference.operation.details", None, [
        attr("gen_ai.input.messages", {"stringValue": '[{"role": "user", "content": "a\\u0000b"}]'})]),
     [{"role": "user", "content": "a\ufffdb"}], None),
    (record("gen_ai.client.inference.operation.details", None, [
        attr("gen_ai.input.messages", {"stringValue": '[{"content": "\\ud800"}]'})]),
     [{"content": '[{"content": "\\ud800"}]'}], None),
], ids=["user", "system", "assistant-tool-calls", "tool", "string-body", "no-body", "choice", "event.name-attribute",
        "details-json-strings", "details-instructions-first", "details-nul-escaped", "details-lone-surrogate-escaped"])
def test_content_events_become_messages(rec, expected_in, expected_out):
    decoded = decode(rec)
    assert not decoded.rejected, decoded.error_message
    [content] = decoded.records
    assert (content.trace_id.hex(), content.span_id.hex()) == (TRACE, SPAN)
    assert (content.input, content.output) == (expected_in, expected_out)


@pytest.mark.parametrize("rec,reason", [
    (record(None, {"stringValue": "GET /health 200"}), "not a GenAI content event (event name none)"),
    (record("gen_ai.client.operation.exception", kv(score="1")),
     "not a GenAI content event (event name 'gen_ai.client.operation.exception')"),
    (record("gen_ai.evaluation.result", kv(score="1")), "gen_ai.evaluation.result without gen_ai.evaluation.name"),
    (record("gen_ai.user.message", kv(content="hi"), traceId="", spanId=""), "no span to attach it to"),
    (record("gen_ai.user.message", kv(content="hi"), spanId="zz"), "no span to attach it to"),
    (record("gen_ai.user.message", kv(content="hi"), severityNumber="LOUD"), "'LOUD' is not a SeverityNumber name"),
    (record("gen_ai.user.message", kv(content="hi"), timeUnixNano=str(2**64)), "invalid OTLP JSON"),
    ("nope", "a log record must be a JSON object"),
], ids=["plain-log", "other-genai-event", "nameless-evaluation", "no-ids", "bad-span-id", "unknown-severity", "time-beyond-uint64",
        "not-an-object"])
def test_other_records_are_refused_with_a_reason(rec, reason):
    decoded = decode(rec, record("gen_ai.user.message", kv(content="kept")))
    assert decoded.rejected == 1 and reason in decoded.error_message
    assert decoded.error_message.startswith("1 log record(s) rejected")
    assert [r.input[0]["content"] for r in decoded.records] == ["kept"]


def test_a_content_less_details_event_is_neither_stored_nor_refused():
    decoded = decode(record("gen_ai.client.inference.operation.details", None,
                            [attr("gen_ai.operation.name", {"stringValue": "chat"})]))
    assert (decoded.records, decoded.rejected) == ([], 0)


def test_record_keys_identify_records():
    one = decode(record("gen_ai.user.message", kv(content="hi"))).records[0]
    again = decode(record("gen_ai.user.message", kv(content="hi"))).records[0]
    later = decode(record("gen_ai.user.message", kv(content="hi"), timeUnixNano="1763800000000000001")).records[0]
    other = decode(record("gen_ai.user.message", kv(content="ho"))).records[0]
    assert one.key == again.key and len({one.key, later.key, other.key}) == 3


@pytest.mark.parametrize("body,message", [
    (b'{"resourceLogs": {}}', "resourceLogs must be a list"),
    (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": 3}]}]}', "resourceLogs[0].scopeLogs[0].logRecords must be a list"),
    (b'{"resourceLogs": [], "resource_logs": []}', "both 'resourceLogs' and 'resource_logs'"),
    (b"[]", "must be a JSON object"),
], ids=["envelope-not-a-list", "records-not-a-list", "ambiguous", "not-an-object"])
def test_a_broken_json_envelope_fails_the_request(body, message):
    with pytest.raises(DecodeError) as raised:
        decode_logs_json(body)
    assert message in str(raised.value)


def test_protobuf_invalid_utf8_refuses_only_its_record():
    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    for text in ("GOODTEXT", "BADTEXT!"):
        rec = records.add(time_unix_nano=1, trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(SPAN),
                          event_name="gen_ai.user.message")
        rec.body.kvlist_value.values.add(key="content").value.string_value = text
    body = request.SerializeToString().replace(b"BADTEXT!", b"BAD\xffTEXT")
    decoded = decode_logs_protobuf(body)
    assert decoded.rejected == 1 and "invalid UTF-8" in decoded.error_message
    assert [r.input for r in decoded.records] == [[{"content": "GOODTEXT", "role": "user"}]]
    whole = decode_logs_protobuf(request.SerializeToString())
    assert [r.input[0]["content"] for r in whole.records] == ["GOODTEXT", "BADTEXT!"]
    with pytest.raises(DecodeError, match="ExportLogsServiceRequest"):
        decode_logs_protobuf(b"\xff\xff\xff")


@pytest.mark.parametrize("own,records,expected", [
    ((None, None), [([{"role": "user"}], None), (None, [{"index": 0}]), ([{"role": "tool"}], None)],
     ('[{"role": "user"}, {"role": "tool"}]', '[{"index": 0}]')),
    (("from span", None), [([{"role": "user"}], [{"index": 0}])], ("from span", '[{"index": 0}]')),
    (("in", "out"), [([{"role": "user"}], [{"index": 0}])], ("in", "out")),
    ((None, None), [], (None, None)),
    ((None, None), [([], None)], (None, None)),
], ids=["concatenated-in-order", "span-content-wins", "both-own", "no-records", "empty-lists"])
def test_log_content_fills_in_what_the_span_lacks(own, records, expected):
    assert with_log_content(*own, records) == expected


def test_metric_points_are_counted_in_both_encodings():
    assert count_data_points_json(json.dumps({"resource_metrics": [{"scope_metrics": [{"metrics": [
        {"gauge": {"data_points": [{}, {}]}}, {"exponentialHistogram": {"dataPoints": [{}]}}, {"name": "no data"}]}]}]})
        .encode()) == 3
    assert count_data_points_protobuf(b"") == 0
    with pytest.raises(DecodeError, match="ExportMetricsServiceRequest"):
        count_data_points_protobuf(b"\xff\xff")
