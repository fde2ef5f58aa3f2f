"""OTLP/HTTP trace payloads → validated RawSpans (protobuf or JSON), with per-span rejections.

The whole request is refused (DecodeError → 400) only when it cannot be parsed at all.
A span that is individually wrong (bad ids, times, strings) is rejected on its own and
reported through partial_success; oversized attributes are truncated with a marker,
never dropped silently.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field

from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtoDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from core import wire
from core.otlp_json import DecodeError, enum_problem, load_json, short as _short
from core.span import Event, Link, RawSpan

TRUNCATED_ATTR = "causeline.truncated"  # keys whose values were cut
# {"attributes": n, "events": n, "links": n, "event_attributes": n, "link_attributes": n,
#  "array_values": n, "kvlist_values": n}: what a cap left out (on the resource: its own counts)
DROPPED_ATTR = "causeline.dropped"
MAX_KEY_CHARS = 256
MAX_DEPTH = 8  # nesting of array/kvlist values kept; deeper becomes a marker string
MAX_REPORTED_ERRORS = 5  # distinct reasons quoted in partial_success.error_message


@dataclass(frozen=True)
class Limits:
    max_attribute_chars: int = 64 * 1024
    max_attributes: int = 512
    max_events: int = 256
    max_links: int = 128


@dataclass
class Rejections:
    """What was refused, with the first few reasons quoted for partial_success.error_message."""
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    noun = "span(s)"

    def reject(self, reason: str, count: int = 1) -> None:
        self.rejected += count
        if len(self.reasons) < MAX_REPORTED_ERRORS:
            self.reasons.append(reason)

    @property
    def error_message(self) -> str:
        if not self.rejected:
            return ""
        more = self.rejected - len(self.reasons)
        text = "; ".join(self.reasons)
        return f"{self.rejected} {self.noun} rejected: {text}" + (f"; and {more} more" if more > 0 else "")


@dataclass
class Decoded(Rejections):
    spans: list[RawSpan] = field(default_factory=list)


# -- entry points -------------------------------------------------------------------------------

def decode_protobuf(body: bytes, limits: Limits = Limits()) -> Decoded:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except ProtoDecodeError as exc:
        # upb refuses the whole message for one bad string; retry span by span so only
        # the broken spans are rejected (or report precisely why nothing parses).
        return _decode_protobuf_leniently(body, limits, exc)
    out = Decoded()
    for resource_spans in request.resource_spans:
        resource = _resource(resource_spans.resource.attributes, limits)
        for scope_spans in resource_spans.scope_spans:
            scope = _scope(scope_spans.scope, limits)
            for pb_span in scope_spans.spans:
                _add_span(out, pb_span, resource, scope, limits)
    return out


def decode_json(body: bytes, limits: Limits = Limits()) -> Decoded:
    document = load_json(body, "ExportTraceServiceRequest")
    _hex_ids_to_base64(document)
    # The envelope (resources, scopes) is parsed without its spans, then each span on its own,
    # straight into a Span message: a span json_format refuses (an int beyond int64, 1e999, a
    # time beyond uint64) is rejected alone, and nothing is serialized and parsed again.
    span_lists = _detach_spans(document)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except _JSON_ERRORS as exc:
        raise DecodeError(f"invalid OTLP JSON: {_short(str(exc), 300)}") from None
    out = Decoded()
    for i, resource_spans in enumerate(request.resource_spans):
        resource = _resource(resource_spans.resource.attributes, limits)
        for j, scope_spans in enumerate(resource_spans.scope_spans):
            scope = _scope(scope_spans.scope, limits)
            for span_json in span_lists.get((i, j), ()):
                pb = PbSpan()
                try:
                    if not isinstance(span_json, dict):
                        raise TypeError(f"a span must be a JSON object, got {type(span_json).__name__}")
                    problem = _span_json_problem(span_json)
                    if problem:
                        raise ValueError(problem)
                    json_format.ParseDict(span_json, pb, ignore_unknown_fields=True)
                except _JSON_ERRORS as exc:
                    name = span_json.get("name") if isinstance(span_json, dict) else None
                    label = f"span {_short(name, 60)!r}" if isinstance(name, str) else "span"
                    out.reject(f"{label}: invalid OTLP JSON: {_short(str(exc), 200)}")
                    continue
                _add_span(out, pb, resource, scope, limits)
    return out


_JSON_ERRORS = (json_format.ParseError, ValueError, TypeError, OverflowError, RecursionError)


_SPAN_KIND = PbSpan.DESCRIPTOR.fields_by_name["kind"].enum_type
_STATUS_CODE = PbSpan.DESCRIPTOR.fields_by_name["status"].message_type.fields_by_name["code"].enum_type


def _span_json_problem(span_json: dict) -> str | None:
    problem = enum_problem(span_json, "kind", _SPAN_KIND)
    if problem is None:
        status = span_json.get("status")
        if isinstance(status, dict):
            problem = enum_problem(status, "code", _STATUS_CODE)
            if problem:
                problem = "status." + problem
    return problem


def _detach_spans(document: dict) -> dict[tuple[int, int], list]:
    """Take the span lists out of the document, by (resourceSpans index, scopeSpans index).

    Indexes match the parsed envelope's: json_format keeps the order of repeated fields and
    refuses the whole envelope when an element is not a message."""
    detached: dict[tuple[int, int], list] = {}
    for i, resource_spans in enumerate(_list(_get(document, "resourceSpans", "resource_spans"))):
        for j, scope_spans in enumerate(_list(_get(resource_spans, "scopeSpans", "scope_spans"))):
            if not isinstance(scope_spans, dict) or "spans" not in scope_spans:
                continue
            spans = scope_spans.pop("spans")
            if spans is None:
                continue
            if not isinstance(spans, list):
                raise DecodeError(f"invalid OTLP JSON: resourceSpans[{i}].scopeSpans[{j}].spans must be a list, "
                                  f"got {type(spans).__name__}")
            detached[(i, j)] = spans
    return detached


# -- spans --------------------------------------------------------------------------------------

def _add_span(out: Decoded, pb: PbSpan, resource: dict, scope: tuple[str, str], limits: Limits) -> None:
    problem = _span_problem(pb)
    if problem:
        out.reject(f"span {pb.span_id.hex() or '?'} ({_short(pb.name, 60)!r}): {problem}")
        return
    truncated: list[str] = []
    pb_attributes = pb.attributes
    dropped: dict[str, int] = {}
    attributes = _attributes(pb_attributes, limits, truncated, dropped)
    if len(pb_attributes) > limits.max_attributes:
        dropped["attributes"] = len(pb_attributes) - limits.max_attributes
    if pb.dropped_attributes_count:
        dropped["attributes_at_source"] = pb.dropped_attributes_count
    events: tuple[Event, ...] = ()
    if pb.events:  # most spans have none: skip building generators for them
        events = tuple(
            Event(_clean(e.name, limits, truncated, "event.name"), e.time_unix_nano,
                  _attributes(e.attributes, limits, truncated, dropped, "event_attributes"))
            for e in pb.events[: limits.max_events]
        )
        if len(pb.events) > limits.max_events:
            dropped["events"] = len(pb.events) - limits.max_events
    links: tuple[Link, ...] = ()
    if pb.links:
        kept = pb.links[: limits.max_links]
        links = tuple(
            Link(link.trace_id, link.span_id, _attributes(link.attributes, limits, truncated, dropped, "link_attributes"),
                 link.flags)
            for link in kept if len(link.trace_id) == 16 and len(link.span_id) == 8
        )
        bad_links = len(kept) - len(links)
        if len(pb.links) > limits.max_links or bad_links:
            dropped["links"] = max(0, len(pb.links) - limits.max_links) + bad_links
    name = _clean(pb.name, limits, truncated, "name")
    status = pb.status
    status_message = _clean(status.message, limits, truncated, "status.message") if status.message else ""
    if truncated:
        attributes[TRUNCATED_ATTR] = sorted(set(truncated))
    if dropped:
        attributes[DROPPED_ATTR] = dropped
    out.spans.append(RawSpan(
        trace_id=pb.trace_id,
        span_id=pb.span_id,
        parent_span_id=pb.parent_span_id or None,
        name=name,
        kind=pb.kind,
        start_ns=pb.start_time_unix_nano,
        end_ns=pb.end_time_unix_nano,
        status_code=status.code,
        status_message=status_message,
        attributes=attributes,
        events=events,
        links=links,
        resource=resource,
        scope_name=scope[0],
        scope_version=scope[1],
    ))


def _scope(scope: InstrumentationScope, limits: Limits) -> tuple[str, str]:
    return _clean(scope.name, limits, None, "")[:256], _clean(scope.version, limits, None, "")[:256]


def _span_problem(pb: PbSpan) -> str | None:
    if len(pb.trace_id) != 16 or not any(pb.trace_id):
        return f"trace_id must be 16 non-zero bytes (32 hex digits in JSON), got {len(pb.trace_id)} bytes"
    if len(pb.span_id) != 8 or not any(pb.span_id):
        return f"span_id must be 8 non-zero bytes (16 hex digits in JSON), got {len(pb.span_id)} bytes"
    if pb.parent_span_id and len(pb.parent_span_id) != 8:
        return f"parent_span_id must be empty or 8 bytes, got {len(pb.parent_span_id)} bytes"
    if pb.start_time_unix_nano == 0:
        return "start_time_unix_nano is missing"
    if pb.end_time_unix_nano < pb.start_time_unix_nano:
        return (f"end_time_unix_nano ({pb.end_time_unix_nano}) is before "
                f"start_time_unix_nano ({pb.start_time_unix_nano})")
    if pb.start_time_unix_nano >= 2**63 or pb.end_time_unix_nano >= 2**63:
        return "timestamp beyond year 2262"
    if not 0 <= pb.kind <= 5:
        return f"kind {pb.kind} is not a SpanKind (0-5)"
    if not 0 <= pb.status.code <= 2:
        return f"status.code {pb.status.code} is not a StatusCode (0-2)"
    return None


# -- attribute values ---------------------------------------------------------------------------

def _resource(kvs, limits: Limits) -> dict:
    """Resource attributes, with what their caps cut or left out recorded on the resource itself."""
    truncated: list[str] = []
    dropped: dict[str, int] = {}
    resource = _attributes(kvs, limits, truncated, dropped, "attributes")
    if truncated:
        resource[TRUNCATED_ATTR] = sorted(set(truncated))
    if dropped:
        resource[DROPPED_ATTR] = dropped
    return resource


def _count(dropped: dict[str, int] | None, what: str, n: int) -> None:
    if dropped is not None and n > 0:
        dropped[what] = dropped.get(what, 0) + n


def _attributes(kvs, limits: Limits, truncated: list[str] | None, dropped: dict[str, int] | None = None,
                what: str | None = None) -> dict:
    """KeyValues → dict. Values cut are listed in `truncated`; elements left out by a cap are counted
    in `dropped` (the attributes themselves under `what`; None: the caller counts them)."""
    result = {}
    if len(kvs) > limits.max_attributes:
        if what is not None:
            _count(dropped, what, len(kvs) - limits.max_attributes)
        kvs = kvs[: limits.max_attributes]
    for kv in kvs:
        key = kv.key
        if len(key) > MAX_KEY_CHARS or "\x00" in key:
            long_key = len(key) > MAX_KEY_CHARS
            key = key.replace("\x00", "\ufffd")[:MAX_KEY_CHARS]
            if long_key and truncated is not None:
                truncated.append(key)
        value = kv.value
        kind = value.WhichOneof("value")
        # Strings are most attributes: handle them inline, everything else in _value.
        if kind == "string_value":
            text = value.string_value
            result[key] = text if len(text) <= limits.max_attribute_chars and "\x00" not in text \
                else _clean(text, limits, truncated, key)
        else:
            result[key] = _value(value, limits, truncated, key, 0, dropped)
    return result


def _value(any_value, limits: Limits, truncated: list[str] | None, key: str, depth: int,
           dropped: dict[str, int] | None = None):
    kind = any_value.WhichOneof("value")
    if kind == "string_value":
        return _clean(any_value.string_value, limits, truncated, key)
    if kind == "int_value" or kind == "bool_value":
        return getattr(any_value, kind)
    if kind == "double_value":
        number = any_value.double_value
        return number if math.isfinite(number) else str(number)  # JSONB has no NaN/Infinity
    if kind is None:
        return None
    if depth >= MAX_DEPTH:
        _mark(truncated, key)
        return "[nested too deep]"
    cap = limits.max_attributes
    if kind == "array_value":
        values = any_value.array_value.values
        if len(values) > cap:
            _count(dropped, "array_values", len(values) - cap)
            _mark(truncated, key)
            values = values[:cap]
        return [_value(v, limits, truncated, key, depth + 1, dropped) for v in values]
    if kind == "kvlist_value":
        values = any_value.kvlist_value.values
        if len(values) > cap:
            _count(dropped, "kvlist_values", len(values) - cap)
            _mark(truncated, key)
            values = values[:cap]
        result = {}
        for kv in values:
            inner = _clean(kv.key, limits, None, "")
            if len(inner) > MAX_KEY_CHARS:
                inner = inner[:MAX_KEY_CHARS]
                _mark(truncated, key)
            result[inner] = _value(kv.value, limits, truncated, key, depth + 1, dropped)
        return result
    if kind == "bytes_value":
        raw = any_value.bytes_value
        if len(raw) > limits.max_attribute_chars:
            raw = raw[: limits.max_attribute_chars]
            _mark(truncated, key)
        return base64.b64encode(raw).decode("ascii")
    return None


def _mark(truncated: list[str] | None, key: str) -> None:
    if truncated is not None:
        truncated.append(key)


def _clean(text: str, limits: Limits, truncated: list[str] | None, key: str) -> str:
    """Strings go to PostgreSQL text/JSONB: NUL is not storable there, and size is capped."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if len(text) > limits.max_attribute_chars:
        cut = len(text) - limits.max_attribute_chars
        text = f"{text[: limits.max_attribute_chars]}…[truncated {cut} chars]"
        if truncated is not None:
            truncated.append(key)
    return text


# -- JSON ids -----------------------------------------------------------------------------------

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _hex_ids_to_base64(document: dict) -> None:
    """OTLP/JSON ids are hex, but json_format reads bytes as base64: convert in place.

    An id that is not hex becomes empty, so its span is rejected for its id length
    (with a message) rather than the whole request failing.
    """
    for resource_spans in _list(document.get("resourceSpans", document.get("resource_spans"))):
        for scope_spans in _list(_get(resource_spans, "scopeSpans", "scope_spans")):
            for span in _list(_get(scope_spans, "spans")):
                if not isinstance(span, dict):
                    continue
                _convert_ids(span)
                for link in _list(span.get("links")):
                    if isinstance(link, dict):
                        _convert_ids(link)


def _convert_ids(obj: dict) -> None:
    for name in _ID_FIELDS:
        snake = _snake(name)
        key = name if name in obj else snake if snake in obj else None
        if key is None:
            continue
        value = obj[key]
        try:
            raw = bytes.fromhex(value) if isinstance(value, str) else b""
        except ValueError:
            raw = b""
        obj[key] = base64.b64encode(raw).decode("ascii")


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _get(obj, *names):
    if not isinstance(obj, dict):
        return None
    for name in names:
        if name in obj:
            return obj[name]
    return None


def _list(value) -> list:
    return value if isinstance(value, list) else []


# -- lenient protobuf path ----------------------------------------------------------------------

def _decode_protobuf_leniently(body: bytes, limits: Limits, original: ProtoDecodeError) -> Decoded:
    """Walk ExportTraceServiceRequest → ResourceSpans → ScopeSpans → Span at the wire level and
    parse each span on its own. Raises DecodeError when the envelope itself is broken."""
    out = Decoded()
    try:
        for resource_bytes in wire.fields(body, 1):
            resource_msg = Resource()
            resource_ok = _parse_into(resource_msg, wire.merged(resource_bytes, 1))
            resource = _resource(resource_msg.attributes, limits) if resource_ok else {}
            for scope_bytes in wire.fields(resource_bytes, 2):
                scope_msg = InstrumentationScope()
                _parse_into(scope_msg, wire.merged(scope_bytes, 1))
                scope = _scope(scope_msg, limits)
                for span_bytes in wire.fields(scope_bytes, 2):
                    if not resource_ok:
                        out.reject("resource has invalid UTF-8 or is malformed")
                        continue
                    pb = PbSpan()
                    if not _parse_into(pb, span_bytes):
                        out.reject("span has invalid UTF-8 in a string field or is malformed")
                        continue
                    _add_span(out, pb, resource, scope, limits)
    except wire.WireError as exc:
        raise DecodeError(f"body is not a valid protobuf ExportTraceServiceRequest: {exc}") from None
    if not out.spans and not out.rejected:
        raise DecodeError(f"body is not a valid protobuf ExportTraceServiceRequest: {original}")
    return out


def _parse_into(message, data: bytes | None) -> bool:
    if data is None:
        return True
    try:
        message.ParseFromString(data)
        return True
    except ProtoDecodeError:
        return False


# For the other OTLP signals (core/otlp_logs.py): the same value rules and id handling.
key_values = _attributes
any_value = _value
hex_ids_to_base64 = _convert_ids

__all__ = ["DecodeError", "Decoded", "Limits", "Rejections", "any_value", "decode_json", "decode_protobuf",
           "hex_ids_to_base64", "key_values"]
