"""core.otlp JSON path: a span json_format refuses is rejected alone; the envelope still fails whole."""

from __future__ import annotations

import json

import pytest

from core.otlp import DecodeError, decode_json

TRACE = "5b8efff798038103d269b633813fc60c"


def span(i: int, **changes) -> dict:
    return {"traceId": TRACE, "spanId": f"{i:016x}", "name": f"s{i}", "startTimeUnixNano": "1763800000000000000",
            "endTimeUnixNano": "1763800000500000000", **changes}


def body(spans: list, resource_attributes: list | None = None) -> bytes:
    document = {"resourceSpans": [{
        "resource": {"attributes": resource_attributes or [{"key": "service.name", "value": {"stringValue": "svc"}}]},
        "scopeSpans": [{"scope": {"name": "lib", "version": "1"}, "spans": spans}]}]}
    return json.dumps(document, allow_nan=True).replace("Infinity", "1e999").encode()


@pytest.mark.parametrize("bad,reason", [
    (span(2, attributes=[{"key": "a", "value": {"intValue": str(2**63)}}]), "Failed to parse intValue field"),
    (span(2, attributes=[{"key": "a", "value": {"doubleValue": float("inf")}}]), "Couldn't parse Infinity"),
    (span(2, startTimeUnixNano=str(2**64)), "Failed to parse startTimeUnixNano field"),
    (7, "a span must be a JSON object"),
], ids=["int-above-int64", "1e999", "time-above-uint64", "not-an-object"])
def test_a_span_json_format_refuses_is_rejected_alone(bad, reason):
    decoded = decode_json(body([span(1), bad, span(3)]))
    assert [s.name for s in decoded.spans] == ["s1", "s3"]
    assert decoded.rejected == 1 and reason in decoded.error_message
    assert decoded.spans[0].resource == {"service.name": "svc"}
    assert (decoded.spans[0].scope_name, decoded.spans[0].scope_version) == ("lib", "1")


def test_spans_of_several_resources_and_scopes_keep_their_own_resource():
    document = {"resourceSpans": [
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": f"svc{r}"}}]},
         "scopeSpans": [{"scope": {"name": f"lib{r}{s}"}, "spans": [span(10 * r + s + 1)]} for s in range(2)]}
        for r in range(2)]}
    decoded = decode_json(json.dumps(document).encode())
    assert [(x.name, x.resource["service.name"], x.scope_name) for x in decoded.spans] == [
        ("s1", "svc0", "lib00"), ("s2", "svc0", "lib01"), ("s11", "svc1", "lib10"), ("s12", "svc1", "lib11")]


def test_a_broken_envelope_still_fails_the_request():
    with pytest.raises(DecodeError, match="invalid OTLP JSON"):
        decode_json(body([span(1)], resource_attributes=[{"key": "a", "value": {"intValue": "nope"}}]))
    with pytest.raises(DecodeError, match="spans must be a list"):
        decode_json(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": "nope"}]}]}).encode())
