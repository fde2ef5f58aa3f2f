"""Build OTLP ExportTraceServiceRequest payloads by hand, for cases the SDK cannot express."""

from __future__ import annotations

import itertools
import os
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

_counter = itertools.count(1)
BASE_NS = 1_763_800_000_000_000_000  # 2025-11-22


def trace_id() -> bytes:
    return os.urandom(16)


def span_id() -> bytes:
    return next(_counter).to_bytes(4, "big") + os.urandom(4)


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    return AnyValue(string_value=str(value))


def attrs(mapping: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in mapping.items()]


def span(tid: bytes, sid: bytes, *, parent: bytes | None = None, name: str = "step", start: int = BASE_NS,
         duration: int = 1_000_000, attributes: dict | None = None, status: int = 0, message: str = "",
         links: list[tuple[bytes, bytes, dict]] = ()) -> Span:
    pb = Span(trace_id=tid, span_id=sid, parent_span_id=parent or b"", name=name, kind=1,
              start_time_unix_nano=start, end_time_unix_nano=start + duration,
              status=Status(code=status, message=message))
    pb.attributes.extend(attrs(attributes or {}))
    for ltid, lsid, lattrs in links:
        link = pb.links.add(trace_id=ltid, span_id=lsid)
        link.attributes.extend(attrs(lattrs))
    return pb


def request(spans: list[Span], service: str = "demo-service") -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(attrs({"service.name": service}))
    ss = rs.scope_spans.add()
    ss.scope.name = "tests"
    ss.spans.extend(spans)
    return req


def llm_attrs(model: str = "gpt-4o", inp: int = 100, out: int = 20, **extra) -> dict:
    return {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": model,
            "gen_ai.response.model": model, "gen_ai.usage.input_tokens": inp, "gen_ai.usage.output_tokens": out,
            **extra}
