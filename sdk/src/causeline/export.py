"""Background export with bounded memory that never blocks or raises into the host.

``CauselineSpanProcessor`` is the one processor Causeline adds to a tracer
provider (once, however often ``init`` runs). It forwards ended spans to the
current ``_Pipeline``: a bounded OpenTelemetry ``BatchSpanProcessor`` (its own
worker thread) around a ``_GuardedExporter`` that counts exported and failed
spans, never raises, and gates/redacts prompt content in spans from other
instrumentations. When the queue is full, new spans are dropped and counted
instead of waiting.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from . import _internal
from . import attributes as A
from ._state import SCOPE_NAME
from .config import Config
from .redaction import ContentPolicy
from .stats import Stats

export_logger = logging.getLogger("causeline.export")


class _RateLimitFilter(logging.Filter):
    """Let each message template through at most once a minute."""

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[Any, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        key = (record.levelno, record.msg)
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        self._last[key] = now
        return True


if not any(isinstance(f, _RateLimitFilter) for f in export_logger.filters):
    export_logger.addFilter(_RateLimitFilter())


def make_otlp_exporter(config: Config) -> SpanExporter:
    """OTLP/HTTP protobuf exporter to ``config.traces_endpoint``."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    compression = {"gzip": Compression.Gzip, "deflate": Compression.Deflate}.get(
        config.compression, Compression.NoCompression
    )
    exporter = OTLPSpanExporter(
        endpoint=config.traces_endpoint,
        headers=dict(config.headers),
        timeout=config.export_timeout,
        compression=compression,
    )
    # Route the exporter's retry warnings through our rate-limited logger.
    client = getattr(exporter, "_client", None)
    if client is not None and hasattr(client, "_logger"):
        client._logger = export_logger
    return exporter


# -- content gating for spans from other instrumentations -----------------------


def _is_content_key(key: str) -> bool:
    return key in A.CONTENT_KEYS or key.startswith(A.CONTENT_KEY_PREFIXES)


def _clean_value(value: Any, policy: ContentPolicy) -> Any:
    if isinstance(value, str):
        stripped = value.lstrip()
        if stripped[:1] in ("[", "{"):
            try:
                return policy.json(json.loads(value))
            except ValueError:
                pass
        return policy.redact_text(value)
    if isinstance(value, (list, tuple)):
        out = [_clean_value(v, policy) if isinstance(v, str) else v for v in value]
        return None if any(v is None for v in out) else tuple(out)
    return value


def _clean_attrs(attrs: Any, policy: ContentPolicy, all_keys: bool = False) -> tuple[dict[str, Any], bool]:
    changed = False
    out: dict[str, Any] = {}
    for key, value in (attrs or {}).items():
        if all_keys or _is_content_key(key):
            changed = True
            if not policy.enabled:
                continue
            value = _clean_value(value, policy)
            if value is None:
                continue
        out[key] = value
    return out, changed


def filter_foreign_span(span: ReadableSpan, policy: ContentPolicy) -> ReadableSpan | None:
    """A copy of ``span`` with content removed (capture off) or redacted (capture on);
    None when the span carries no content (use it unchanged)."""
    attrs, changed = _clean_attrs(span.attributes, policy)
    events: list[Event] = []
    for ev in span.events:
        content_event = ev.name in A.CONTENT_EVENT_NAMES
        ev_attrs, ev_changed = _clean_attrs(ev.attributes, policy, all_keys=content_event)
        if content_event and not policy.enabled:
            changed = True
            continue
        if ev_changed:
            changed = True
            events.append(Event(ev.name, ev_attrs, ev.timestamp))
        else:
            events.append(ev)
    if not changed:
        return None
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attrs,
        events=events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class _GuardedExporter(SpanExporter):
    """Counts results, filters foreign content, and never raises."""

    def __init__(self, inner: SpanExporter, stats: Stats, policy: ContentPolicy) -> None:
        self.inner = inner
        self.stats = stats
        self.policy = policy

    def _filter(self, spans: Sequence[ReadableSpan]) -> Sequence[ReadableSpan]:
        out: list[ReadableSpan] | None = None
        for i, span in enumerate(spans):
            scope = span.instrumentation_scope
            if scope is not None and scope.name == SCOPE_NAME:
                continue
            replaced = filter_foreign_span(span, self.policy)
            if replaced is not None:
                if out is None:
                    out = list(spans)
                out[i] = replaced
                self.stats.add("spans_filtered")
        return spans if out is None else out

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        n = len(spans)
        try:
            spans = self._filter(spans)
        except Exception as exc:  # never ship unfiltered content: drop the batch
            self.stats.add("spans_failed", n)
            _internal.record(exc, "export filter")
            return SpanExportResult.FAILURE
        self.stats.add("export_calls")
        error: str | None = None
        try:
            result = self.inner.export(spans)
        except Exception as exc:  # exporter bug or transport error: count it, never raise
            result = SpanExportResult.FAILURE
            error = repr(exc)
        if result is SpanExportResult.SUCCESS:
            self.stats.add("spans_exported", n)
        else:
            self.stats.add("spans_failed", n)
            self.stats.add("export_failures")
            self.stats.last_export_error = error or "exporter returned FAILURE (collector unreachable or refused)"
            _internal.warn_once(
                "export-failed",
                "causeline: could not export %d spans (collector down or slow?); see causeline.stats()",
                n,
            )
        return result

    def shutdown(self) -> None:
        try:
            self.inner.shutdown()
        except Exception as exc:
            _internal.record(exc, "exporter shutdown")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            flush = getattr(self.inner, "force_flush", None)
            return bool(flush(timeout_millis)) if flush else True
        except Exception as exc:
            _internal.record(exc, "exporter flush")
            return False


class _Pipeline:
    """A bounded batch processor + guarded exporter, with drop counting."""

    def __init__(self, exporter: SpanExporter, config: Config, stats: Stats, policy: ContentPolicy) -> None:
        self.stats = stats
        self.exporter = _GuardedExporter(exporter, stats, policy)
        self.max_queue = config.max_queue_size
        self.shutdown_timeout = config.shutdown_timeout
        self.bsp = BatchSpanProcessor(
            self.exporter,
            max_queue_size=config.max_queue_size,
            schedule_delay_millis=config.schedule_delay_millis,
            max_export_batch_size=min(config.max_export_batch_size, config.max_queue_size),
            export_timeout_millis=config.export_timeout * 1000,
        )
        bp = getattr(self.bsp, "_batch_processor", None)
        queue = getattr(bp, "_queue", None)
        # Used only to see "full" before handing a span over; without it the
        # processor still bounds memory (dropping the oldest span), uncounted.
        self._queue: collections.deque[Any] | None = queue if isinstance(queue, collections.deque) else None
        self._lock = threading.Lock()
        self._closed = False
        self._flush_cond = threading.Condition()
        self._flush_requested = 0  # flush calls so far
        self._flush_done = 0  # calls served by a completed flush round
        self._flush_running = False

    def queued(self) -> int:
        q = self._queue
        return len(q) if q is not None else 0

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if ctx is None or not ctx.trace_flags.sampled or self._closed:
            return
        stats = self.stats
        q = self._queue
        if q is not None and len(q) >= self.max_queue:
            with stats._lock:
                stats.spans_ended += 1
                stats.spans_dropped += 1
            _internal.warn_once(
                "queue-full",
                "causeline: export queue full (%d spans); dropping spans, see causeline.stats()",
                self.max_queue,
            )
            return
        with stats._lock:
            stats.spans_ended += 1
        self.bsp.on_end(span)

    def force_flush(self, timeout: float) -> bool:
        """Flush in a background thread, waiting at most ``timeout`` seconds.

        At most one flush thread runs per pipeline: a call made while a flush is
        in progress waits for it, and for one more round covering the spans
        ended since, which that same thread runs next (so a hanging collector
        never piles up threads, however often the host calls ``flush``)."""
        if self._closed:
            return True
        deadline = time.monotonic() + max(timeout, 0.0)
        cond = self._flush_cond
        with cond:
            self._flush_requested += 1
            wanted = self._flush_requested
            start = not self._flush_running
            self._flush_running = True
        if start:
            try:
                threading.Thread(target=self._flush_loop, name="causeline-flush", daemon=True).start()
            except Exception as exc:  # e.g. no threads left (or at interpreter exit)
                with cond:
                    self._flush_running = False
                _internal.record(exc, "flush")
                return False
        with cond:
            while self._flush_done < wanted:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                cond.wait(left)
        return True

    def _flush_loop(self) -> None:
        cond = self._flush_cond
        try:
            while True:
                with cond:
                    target = self._flush_requested
                    if self._flush_done >= target:
                        self._flush_running = False
                        return
                try:
                    self.bsp.force_flush()
                except Exception as exc:
                    _internal.record(exc, "flush")
                with cond:
                    self._flush_done = target
                    cond.notify_all()
        except BaseException:  # pragma: no cover - let the next flush start a thread
            with cond:
                self._flush_running = False
            raise

    def shutdown(self, timeout: float | None = None) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        timeout = self.shutdown_timeout if timeout is None else timeout
        bp = getattr(self.bsp, "_batch_processor", None)
        try:
            if bp is not None and hasattr(bp, "shutdown"):
                bp.shutdown(timeout_millis=int(timeout * 1000))
            else:  # pragma: no cover - other SDK versions
                self.bsp.shutdown()
        except Exception as exc:
            _internal.handle(exc, "shutdown")


class CauselineSpanProcessor(SpanProcessor):
    """The single processor Causeline adds to a tracer provider.

    It delegates to the current pipeline, so ``init`` can be called again
    (new endpoint, key or exporter) without stacking processors.
    """

    def __init__(self) -> None:
        self.pipeline: _Pipeline | None = None

    def swap(self, pipeline: _Pipeline | None) -> _Pipeline | None:
        old, self.pipeline = self.pipeline, pipeline
        return old

    def queued(self) -> int:
        p = self.pipeline
        return p.queued() if p is not None else 0

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        return None

    def _on_ending(self, span: Any) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        p = self.pipeline
        if p is None:
            return
        try:
            p.on_end(span)
        except Exception as exc:
            _internal.handle(exc, "on_end")

    def shutdown(self) -> None:
        p = self.pipeline
        if p is not None:
            p.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        p = self.pipeline
        return p.force_flush(timeout_millis / 1000) if p is not None else True
