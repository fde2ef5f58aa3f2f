"""Ambiguous OTLP input is refused or resolved one way, never a span lost or relabelled in silence."""

from __future__ import annotations

import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from core.otlp import DecodeError, decode_json, decode_protobuf

TRACE = "5b8efff798038103d269b633813fc60c"


def span(i: int, **changes) -> dict:
    return {"traceId": TRACE, "spanId": f"{i:016x}", "name": f"s{i}", "startTimeUnixNano": "1763800000000000000",
            "endTimeUnixNano": "1763800000500000000", **changes}


def resource_spans(service: str, *spans: dict, scope_key: str = "scopeSpans") -> dict:
    return {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            scope_key: [{"spans": list(spans)}]}


ONE = json.dumps(span(1))
TWO = json.dumps(span(2))


@pytest.mark.parametrize("body,conflict", [
    (json.dumps({"resourceSpans": [resource_spans("a", span(1))], "resource_spans": [resource_spans("b", span(2))]}),
     "both 'resourceSpans' and 'resource_spans'"),
    (json.dumps({"resourceSpans": [{**resource_spans("a", span(1)), "scope_spans": [{"spans": [span(2)]}]}]}),
     "both 'scopeSpans' and 'scope_spans'"),
    ('{"resourceSpans": [{"scopeSpans": [{"spans": [%s]}]}], "resourceSpans": [{"scopeSpans": [{"spans": [%s]}]}]}'
     % (ONE, TWO), "key 'resourceSpans' appears twice"),
    ('{"resourceSpans": [{"scopeSpans": [{"spans": [%s], "spans": [%s]}]}]}' % (ONE, TWO), "key 'spans' appears twice"),
    ('{"resourceSpans": [{"resource": {"attributes": []}, "resource": {"attributes": []}, "scopeSpans": []}]}',
     "key 'resource' appears twice"),
    (json.dumps({"resourceSpans": [resource_spans("a", {**span(1), "trace_id": TRACE})]}),
     "both 'traceId' and 'trace_id'"),
    (json.dumps({"resourceSpans": [resource_spans("a", span(1, attributes=[
        {"key": "k", "value": {"stringValue": "x", "string_value": "y"}}]))]}),
     "both 'stringValue' and 'string_value'"),
], ids=["resourceSpans-twice-named", "scopeSpans-twice-named", "duplicate-envelope-key", "duplicate-spans-key",
        "duplicate-resource", "traceId-twice-named", "attribute-value-twice-named"])
def test_a_field_given_twice_refuses_the_request_and_names_it(body, conflict):
    with pytest.raises(DecodeError, match="invalid OTLP JSON") as raised:
        decode_json(body.encode())
    assert conflict in str(raised.value)


@pytest.mark.parametrize("body", [
    json.dumps({"resourceSpans": [resource_spans("a", span(1)), resource_spans("b", span(2))]}),
    json.dumps({"resource_spans": [resource_spans("a", span(1), scope_key="scope_spans")]}),
    json.dumps({"resourceSpans": [resource_spans("a", {**span(1), "parent_span_id": "00000000000000aa"})]}),
], ids=["two-resources", "snake-case-only", "one-snake-field"])
def test_unambiguous_bodies_still_pass(body):
    decoded = decode_json(body.encode())
    assert decoded.spans and not decoded.rejected


@pytest.mark.parametrize("changes,reason", [
    ({"kind": "NOPE"}, "kind 'NOPE' is not a SpanKind name"),
    ({"status": {"code": "STATUS_CODE_NOPE"}}, "status.code 'STATUS_CODE_NOPE' is not a StatusCode name"),
    ({"kind": 9}, "kind 9 is not a SpanKind (0-5)"),
], ids=["kind-name", "status-code-name", "kind-number"])
def test_an_unknown_enum_rejects_its_span_with_a_reason(changes, reason):
    decoded = decode_json(json.dumps({"resourceSpans": [resource_spans("a", span(1, **changes), span(2))]}).encode())
    assert [s.name for s in decoded.spans] == ["s2"]
    assert decoded.rejected == 1 and reason in decoded.error_message


@pytest.mark.parametrize("changes,kind,code", [
    ({"kind": "SPAN_KIND_CLIENT", "status": {"code": "STATUS_CODE_ERROR"}}, 3, 2),
    ({"kind": 2, "status": {"code": 1}}, 2, 1),
    ({"kind": "4", "status": {"code": "2"}}, 4, 2),
], ids=["names", "numbers", "numbers-in-strings"])
def test_known_enum_names_and_numbers_are_read(changes, kind, code):
    decoded = decode_json(json.dumps({"resourceSpans": [resource_spans("a", span(1, **changes))]}).encode())
    assert [(s.kind, s.status_code) for s in decoded.spans] == [(kind, code)]


# -- protobuf: a message field given twice is merged, whichever parser path reads it ----------

def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited field, built by hand: the generated classes never repeat a singular field."""
    length, size = b"", len(payload)
    while True:
        length += bytes([size & 0x7F | (0x80 if size > 0x7F else 0)])
        size >>= 7
        if not size:
            return bytes([number << 3 | 2]) + length + payload


def _attr(key: str, value: str) -> KeyValue:
    kv = KeyValue(key=key)
    kv.value.string_value = value
    return kv


def _pb_span(i: int, name: str) -> Span:
    return Span(trace_id=bytes.fromhex(TRACE), span_id=i.to_bytes(8, "big"), name=name,
                start_time_unix_nano=1_763_800_000_000_000_000, end_time_unix_nano=1_763_800_000_500_000_000)


def _request_with_repeated_resource_and_scope(*, broken_span: bool) -> bytes:
    first = Resource(attributes=[_attr("service.name", "first"), _attr("only.first", "1")])
    second = Resource(attributes=[_attr("service.name", "second")])
    spans = [_pb_span(1, "good")] + ([_pb_span(2, "BADNAME")] if broken_span else [])
    scope_spans = (_field(1, InstrumentationScope(name="lib-first", version="1").SerializeToString())
                   + _field(1, InstrumentationScope(name="lib-second").SerializeToString())
                   + b"".join(_field(2, s.SerializeToString()) for s in spans))
    scope_spans = scope_spans.replace(b"BADNAME", b"BAD\xffAME")  # invalid UTF-8: the lenient path
    resource_spans = _field(1, first.SerializeToString()) + _field(1, second.SerializeToString()) + \
        _field(2, scope_spans)
    return _field(1, resource_spans)


@pytest.mark.parametrize("broken_span", [False, True], ids=["whole-message-parse", "span-by-span-fallback"])
def test_a_repeated_resource_or_scope_is_merged_like_protobuf_on_both_paths(broken_span):
    body = _request_with_repeated_resource_and_scope(broken_span=broken_span)
    if not broken_span:  # the reference: what protobuf itself makes of the bytes
        parsed = ExportTraceServiceRequest.FromString(body)
        assert [kv.key for kv in parsed.resource_spans[0].resource.attributes] == [
            "service.name", "only.first", "service.name"]
    decoded = decode_protobuf(body)
    assert decoded.rejected == (1 if broken_span else 0)
    [good] = decoded.spans
    # Repeated attributes are concatenated by the merge, and the last value of a key wins.
    assert good.resource == {"service.name": "second", "only.first": "1"}
    # Scalars: the last one given wins; a field left out of the last keeps the earlier value.
    assert (good.scope_name, good.scope_version) == ("lib-second", "1")


def test_both_paths_agree_on_every_repeated_field():
    whole = decode_protobuf(_request_with_repeated_resource_and_scope(broken_span=False)).spans[0]
    fallback = decode_protobuf(_request_with_repeated_resource_and_scope(broken_span=True)).spans[0]
    assert (whole.resource, whole.scope_name, whole.scope_version) == \
        (fallback.resource, fallback.scope_name, fallback.scope_version)


def test_resource_spans_message_type_is_the_one_encoded():
    # Guards the hand-built bytes above against drifting from the real schema.
    built = ResourceSpans(resource=Resource(), scope_spans=[ScopeSpans()]).SerializeToString()
    assert built == _field(1, b"") + _field(2, b"")
