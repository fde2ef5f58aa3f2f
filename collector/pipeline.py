"""From an inflated body to rows ready for the writer.

CPU-bound: runs in a worker thread, or in a worker process when CAUSELINE_INGEST_PROCESSES > 0
(so decoding is not limited to the one core the collector's GIL allows). Everything passed in
and returned is plain picklable data for that reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from core.handoffs import with_handoff_links
from core.normalize import normalize
from core.otlp import Limits, decode_json, decode_protobuf
from core.pricing import PriceOverride, price_span
from core.redaction import RedactionPolicy, redact_span
from db.ingest import edge_rows, span_row

from collector.body import JSON


@dataclass
class Prepared:
    rows: list[tuple]
    edges: list[tuple]
    rejected: int
    error_message: str


def prepare(
    body: bytes, media: str, *, project_id: int, limits: Limits, overrides: Sequence[PriceOverride],
    redaction: RedactionPolicy | None = None,
) -> Prepared:
    """Raises core.otlp.DecodeError when the body is not an OTLP export at all. Content is
    redacted (core.redaction) before anything else sees it."""
    decoded = decode_json(body, limits) if media == JSON else decode_protobuf(body, limits)
    rows, edges = [], []
    # Handoff links are derived across the spans of one export (core.handoffs).
    spans = with_handoff_links([price_span(redact_span(normalize(raw), redaction), overrides) for raw in decoded.spans])
    for raw, span in zip(decoded.spans, spans):
        scope = f"{raw.scope_name} {raw.scope_version}".strip() or None
        rows.append(span_row(project_id, span, scope))
        edges.extend(edge_rows(project_id, span))
    return Prepared(rows, edges, decoded.rejected, decoded.error_message)


def warm_up() -> int:
    """Run once in each worker process at start, so the first request does not pay for
    imports, for loading the price tables and for compiling the default redaction."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add(
        trace_id=b"\x01" * 16, span_id=b"\x01" * 8, name="chat gpt-4o", start_time_unix_nano=1, end_time_unix_nano=2)
    for key, value in (("gen_ai.operation.name", "chat"), ("gen_ai.request.model", "gpt-4o")):
        span.attributes.add(key=key).value.string_value = value
    span.attributes.add(key="gen_ai.usage.input_tokens").value.int_value = 1
    return len(prepare(request.SerializeToString(), "application/x-protobuf", project_id=0, limits=Limits(),
                       overrides=(), redaction=RedactionPolicy()).rows)
