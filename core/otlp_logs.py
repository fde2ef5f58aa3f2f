"""OTLP/HTTP log payloads → the prompt and completion content of GenAI events, per span.

Only GenAI content events are kept (names in CONTENT_EVENTS, from `event_name` or, in
older SDKs, the `event.name` attribute), and only when they name the span they belong to;
evaluation results (`gen_ai.evaluation.result`) become scores (core/scores.py), on their span
or, without one, on their trace.
Any other log record is refused and counted in partial_success: Causeline is not a log
store, and a record it does not keep is never dropped without a word. A record that is
individually wrong is refused alone; the request fails whole (DecodeError → 400) only
when it cannot be parsed at all, as for traces (core/otlp.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtoDecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from core import wire
from core.otlp import Limits, Rejections, any_value, hex_ids_to_base64, key_values
from core.otlp_json import DecodeError, enum_problem, load_json, short
from core.scores import EVALUATION_EVENT, ScoreError, ScoreInput, from_evaluation_event

# GenAI semconv 1.28–1.36: one event per message; the role is implied by the name.
MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CHOICE_EVENT = "gen_ai.choice"  # one completion choice: output
# GenAI semconv >= 1.37: one event per call, the messages in its attributes.
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
CONTENT_EVENTS = frozenset(MESSAGE_EVENTS) | {CHOICE_EVENT, DETAILS_EVENT}

_SEVERITY = LogRecord.DESCRIPTOR.fields_by_name["severity_number"].enum_type


@dataclass(frozen=True)
class ContentRecord:
    """The content one GenAI event adds to its span: `input` / `output` are message lists (None:
    none in that direction). `key` identifies the record, so a redelivered export stores it once."""
    trace_id: bytes
    span_id: bytes
    key: bytes
    time_ns: int
    seq: int  # position in its request: orders records with the same time
    event_name: str
    input: list | None
    output: list | None


@dataclass
class DecodedLogs(Rejections):
    records: list[ContentRecord] = field(default_factory=list)
    scores: list[ScoreInput] = field(default_factory=list)  # from gen_ai.evaluation.result events
    noun = "log record(s)"


# -- entry points -------------------------------------------------------------------------------

def decode_logs_protobuf(body: bytes, limits: Limits = Limits()) -> DecodedLogs:
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except ProtoDecodeError as exc:
        return _decode_leniently(body, limits, exc)
    out = DecodedLogs()
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                _add_record(out, record, limits)
    return out


def decode_logs_json(body: bytes, limits: Limits = Limits()) -> DecodedLogs:
    document = load_json(body, "ExportLogsServiceRequest")
    out = DecodedLogs()
    for i, resource_logs in enumerate(_list(document, "resourceLogs", "")):
        for j, scope_logs in enumerate(_list(resource_logs, "scopeLogs", f"resourceLogs[{i}].")):
            for record_json in _list(scope_logs, "logRecords", f"resourceLogs[{i}].scopeLogs[{j}]."):
                record = LogRecord()
                try:
                    if not isinstance(record_json, dict):
                        raise TypeError(f"a log record must be a JSON object, got {type(record_json).__name__}")
                    problem = enum_problem(record_json, "severityNumber", _SEVERITY)
                    if problem:
                        raise ValueError(problem)
                    hex_ids_to_base64(record_json)
                    json_format.ParseDict(record_json, record, ignore_unknown_fields=True)
                except (json_format.ParseError, ValueError, TypeError, OverflowError, RecursionError) as exc:
                    out.reject(f"log record: invalid OTLP JSON: {short(str(exc), 200)}")
                    continue
                _add_record(out, record, limits)
    return out


def _list(obj, json_name: str, where: str) -> list:
    """A repeated field of the envelope: absent is empty, anything but a list refuses the request."""
    if not isinstance(obj, dict):
        raise DecodeError(f"invalid OTLP JSON: {where.rstrip('.') or 'the body'} must be an object")
    snake = "".join("_" + c.lower() if c.isupper() else c for c in json_name)
    value = obj.get(json_name, obj.get(snake))
    if value is None:
        return []
    if not isinstance(value, list):
        raise DecodeError(f"invalid OTLP JSON: {where}{json_name} must be a list, got {type(value).__name__}")
    return value


# -- one record ---------------------------------------------------------------------------------

def _add_record(out: DecodedLogs, record: LogRecord, limits: Limits) -> None:
    attributes = key_values(record.attributes, limits, None)
    name = record.event_name or attributes.get("event.name")
    if name == EVALUATION_EVENT:
        _add_score(out, record, attributes)
        return
    if not isinstance(name, str) or name not in CONTENT_EVENTS:
        shown = f"{short(name, 60)!r}" if isinstance(name, str) and name else "none"
        out.reject(f"log record not stored: not a GenAI content event (event name {shown})")
        return
    if len(record.trace_id) != 16 or not any(record.trace_id) or len(record.span_id) != 8 or not any(record.span_id):
        out.reject(f"{name}: no span to attach it to (trace_id must be 16 and span_id 8 non-zero bytes, "
                   f"got {len(record.trace_id)} and {len(record.span_id)})")
        return
    body = any_value(record.body, limits, None, "body", 0) if record.HasField("body") else None
    messages_in, messages_out = _content(name, body, attributes)
    messages_in, messages_out = messages_in or None, messages_out or None
    if messages_in is None and messages_out is None:
        return  # a GenAI event captured without content: nothing to keep, nothing lost
    time_ns = record.time_unix_nano or record.observed_time_unix_nano
    if time_ns >= 2**63:
        out.reject(f"{name}: timestamp beyond year 2262")
        return
    identity = orjson.dumps([name, record.time_unix_nano, record.observed_time_unix_nano, messages_in, messages_out],
                            default=str)
    key = hashlib.sha256(record.trace_id + record.span_id + identity).digest()[:16]
    out.records.append(ContentRecord(record.trace_id, record.span_id, key, time_ns, len(out.records), name,
                                     messages_in, messages_out))


def _add_score(out: DecodedLogs, record: LogRecord, attributes: dict) -> None:
    # The event SHOULD name the span it evaluates; a trace alone scores the whole run.
    if len(record.trace_id) != 16 or not any(record.trace_id):
        out.reject(f"{EVALUATION_EVENT}: no trace to attach it to (trace_id must be 16 non-zero bytes)")
        return
    span_id = bytes(record.span_id) if len(record.span_id) == 8 and any(record.span_id) else None
    try:
        out.scores.append(from_evaluation_event(attributes, bytes(record.trace_id), span_id,
                                                record.time_unix_nano or record.observed_time_unix_nano))
    except ScoreError as exc:
        out.reject(str(exc))


def _content(name: str, body, attributes: dict) -> tuple[list | None, list | None]:
    role = MESSAGE_EVENTS.get(name)
    if role is not None:
        message = dict(body) if isinstance(body, dict) else ({"content": body} if body is not None else {})
        message.setdefault("role", role)  # 1.28+ leaves the role out when the event name says it
        return [message], None
    if name == CHOICE_EVENT:
        return None, [body if isinstance(body, dict) else {"message": {"content": body}}]
    # DETAILS_EVENT: the messages are attributes (structured, or JSON strings from older SDKs).
    inputs = _messages(attributes.get("gen_ai.input.messages"))
    instructions = _messages(attributes.get("gen_ai.system_instructions"))
    if instructions:  # the event's attributes are not kept otherwise: shown as the system turn
        inputs = [{"role": "system", "parts": instructions}, *(inputs or [])]
    return inputs, _messages(attributes.get("gen_ai.output.messages"))


def _messages(value) -> list | None:
    if isinstance(value, str):
        try:
            # JSONB cannot hold NUL, which a JSON string may spell as an escape.
            parsed = json.loads(value.replace("\\u0000", "\\ufffd"))
            orjson.dumps(parsed)  # a lone surrogate escape ("\\ud800") parses, but is not storable text
        except (ValueError, TypeError, RecursionError):  # orjson.JSONEncodeError is a TypeError
            return [{"content": value}] if value.strip() else None
        value = parsed
    if value is None:
        return None
    return value if isinstance(value, list) else [value]


# -- lenient protobuf path ----------------------------------------------------------------------

def _decode_leniently(body: bytes, limits: Limits, original: ProtoDecodeError) -> DecodedLogs:
    """ExportLogsServiceRequest → ResourceLogs → ScopeLogs → LogRecord at the wire level, each
    record parsed on its own, so one bad string refuses only its record."""
    out = DecodedLogs()
    try:
        for resource_logs in wire.fields(body, 1):
            for scope_logs in wire.fields(resource_logs, 2):
                for record_bytes in wire.fields(scope_logs, 2):
                    record = LogRecord()
                    try:
                        record.ParseFromString(record_bytes)
                    except ProtoDecodeError:
                        out.reject("log record has invalid UTF-8 in a string field or is malformed")
                        continue
                    _add_record(out, record, limits)
    except wire.WireError as exc:
        raise DecodeError(f"body is not a valid protobuf ExportLogsServiceRequest: {exc}") from None
    if not out.records and not out.rejected:
        raise DecodeError(f"body is not a valid protobuf ExportLogsServiceRequest: {original}")
    return out


__all__ = ["CONTENT_EVENTS", "ContentRecord", "DecodedLogs", "decode_logs_json", "decode_logs_protobuf"]
