"""From an inflated body to rows ready for the writer.

CPU-bound: runs in the decoder worker processes (so decoding is not limited to the one core the
collector's GIL allows). Everything passed in and returned is plain picklable data for that reason;
prepare_copy() returns the rows already encoded as COPY data, so the collector's main process only
forwards bytes (no per-row unpickling or formatting there)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from dataclasses import dataclass
from typing import Sequence

from core.handoffs import with_handoff_links
from core.normalize import normalize
from core.otlp import Limits, decode_json, decode_protobuf
from core.pricing import PriceOverride, price_span
from core.redaction import RedactionPolicy, redact_span
from db.ingest_rows import Encoded, edge_rows, encode, span_row

from collector.media import JSON


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


@dataclass
class Ready:
    data: Encoded
    rejected: int
    error_message: str


def prepare_copy(
    body: bytes, media: str, *, project_id: int, limits: Limits, overrides: Sequence[PriceOverride],
    redaction: RedactionPolicy | None = None,
) -> Ready:
    """prepare(), with the rows encoded for the writer's COPY."""
    prepared = prepare(body, media, project_id=project_id, limits=limits, overrides=overrides, redaction=redaction)
    ready = Ready(encode(prepared.rows, prepared.edges), prepared.rejected, prepared.error_message)
    del prepared
    if len(body) >= TRIM_AFTER_BYTES:
        _trim_heap()
    return ready


# After decoding a body this large, freed memory is handed back to the OS: glibc keeps freed heap
# pages otherwise, and each worker's RSS would stay at the peak of the largest body it ever decoded
# (a 32 MiB body: +83 MiB kept; +4 MiB after trimming). Smaller bodies are not worth the call.
TRIM_AFTER_BYTES = 1 << 20


@functools.cache
def _libc():
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def _trim_heap() -> None:
    trim = getattr(_libc(), "malloc_trim", None)  # glibc only
    if trim is not None:
        trim(0)


_M_MMAP_THRESHOLD = -3  # glibc's mallopt() parameters
_M_ARENA_MAX = -8
# glibc gives threads up to 8 malloc arenas per core, each keeping the freed memory of the threads
# that used it (the collector runs a thread per request waiting on the pool or the writer).
ARENAS = 2


def release_large_buffers() -> None:
    """Allocate buffers of 128 KiB and more (request bodies, COPY data) with mmap, always, so that
    freeing one returns its memory to the OS; glibc otherwise raises that threshold to the largest
    buffer freed so far, and a collector that handled a burst of large bodies keeps their memory
    as a fragmented heap. And at most ARENAS malloc arenas. Called once per process (collector and
    workers); glibc only."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
        mallopt(_M_ARENA_MAX, ARENAS)


def init_worker(parent: int | None = None) -> None:
    """Initializer of each decode worker process; `parent`: the collector's pid, whose exit ends the
    worker (collector/parent_watch.py). Ctrl-C in a terminal interrupts the whole process
    group: the server shuts its workers down itself, so a worker ignores SIGINT rather than dying
    mid-task with a traceback."""
    import signal

    from collector.parent_watch import exit_with_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is not None:
        exit_with_parent(parent)
    release_large_buffers()


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
    return prepare_copy(request.SerializeToString(), "application/x-protobuf", project_id=0, limits=Limits(),
                        overrides=(), redaction=RedactionPolicy()).data.count
