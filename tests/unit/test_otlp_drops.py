"""core.otlp: every cap that leaves something out says so (causeline.dropped / causeline.truncated)."""

from __future__ import annotations

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from core.otlp import Limits, decode_protobuf
from tests import otlp_payloads as P

LIMITS = Limits(max_attributes=16, max_events=4, max_links=4, max_attribute_chars=1000)


def decode(request):
    decoded = decode_protobuf(request.SerializeToString(), LIMITS)
    assert decoded.rejected == 0, decoded.error_message
    return decoded.spans[0]


def test_event_and_link_attribute_caps_are_counted():
    pb = P.span(P.trace_id(), P.span_id(), links=[(P.trace_id(), P.span_id(), {f"l{i}": i for i in range(20)})])
    event = pb.events.add(name="e", time_unix_nano=P.BASE_NS)
    event.attributes.extend(P.attrs({f"e{i}": i for i in range(18)}))
    dropped = decode(P.request([pb])).attributes["causeline.dropped"]
    assert dropped == {"event_attributes": 2, "link_attributes": 4}


def test_resource_attribute_caps_are_recorded_on_the_resource():
    request = P.request([P.span(P.trace_id(), P.span_id())])
    resource = request.resource_spans[0].resource
    resource.attributes.extend(P.attrs({f"r{i}": i for i in range(20)}))
    resource.attributes.extend(P.attrs({"long": "x" * 2000}))
    span = decode(request)
    assert span.resource["causeline.dropped"] == {"attributes": 22 - 16}  # service.name + 20 + long
    assert span.resource["service.name"] == "demo-service"


def test_resource_values_cut_are_listed():
    request = P.request([P.span(P.trace_id(), P.span_id())], service="s" * 2000)
    span = decode(request)
    assert span.resource["causeline.truncated"] == ["service.name"]


def test_array_and_kvlist_element_caps_and_long_keys_are_recorded():
    pb = P.span(P.trace_id(), P.span_id(), attributes={"arr": list(range(20))})
    kv = AnyValue()
    kv.kvlist_value.values.extend(KeyValue(key=f"k{i}", value=AnyValue(int_value=i)) for i in range(17))
    pb.attributes.append(KeyValue(key="kv", value=kv))
    pb.attributes.append(KeyValue(key="K" * 300, value=AnyValue(int_value=1)))
    pb.attributes.append(KeyValue(key="bytes", value=AnyValue(bytes_value=b"\x01" * 2000)))
    span = decode(P.request([pb]))
    assert len(span.attributes["arr"]) == 16 and len(span.attributes["kv"]) == 16
    assert span.attributes["causeline.dropped"] == {"array_values": 4, "kvlist_values": 1}
    assert span.attributes["causeline.truncated"] == sorted(["K" * 256, "arr", "bytes", "kv"])
    assert span.attributes["K" * 256] == 1
