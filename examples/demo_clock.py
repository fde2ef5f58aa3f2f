"""Virtual time for the demo agent: a week of agent runs recorded in a second or two.

The simulated providers do not sleep; they advance a virtual clock instead. The
OpenTelemetry SDK still stamps spans with the real clock, so the exporter maps every
real timestamp to the virtual time of that moment before the spans leave the process.
Order is kept (the map never goes backwards), and a span that spans a simulated
30-second timeout lasts 30 seconds.
"""

from __future__ import annotations

import bisect
import threading
import time
from typing import Sequence

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class VirtualClock:
    """Real nanoseconds -> virtual nanoseconds, piecewise: each checkpoint pins one real
    instant to one virtual instant, and real time runs on unchanged between checkpoints."""

    def __init__(self, start_ns: int) -> None:
        self._lock = threading.Lock()
        self._real = [time.time_ns()]
        self._virtual = [start_ns]

    def now_ns(self) -> int:
        return self.to_virtual(time.time_ns())

    def now(self) -> float:
        return self.now_ns() / 1e9

    def advance(self, seconds: float) -> None:
        """As if `seconds` had passed (a simulated request, a back-off)."""
        self._pin(int(seconds * 1e9))

    def jump_to(self, when: float) -> None:
        """Move on to the virtual time `when` (epoch seconds), if it is ahead."""
        self._pin(max(0, int(when * 1e9) - self.now_ns()))

    def _pin(self, delta_ns: int) -> None:
        with self._lock:
            real = time.time_ns()
            virtual = self._to_virtual(real) + delta_ns
            self._real.append(real)
            self._virtual.append(virtual)

    def to_virtual(self, real_ns: int) -> int:
        with self._lock:
            return self._to_virtual(real_ns)

    def _to_virtual(self, real_ns: int) -> int:
        i = max(0, bisect.bisect_right(self._real, real_ns) - 1)
        return self._virtual[i] + (real_ns - self._real[i])


class VirtualTimeExporter(SpanExporter):
    """Re-stamps spans and their events with virtual time, then hands them to `inner`
    (the ordinary OTLP exporter): the collector sees runs spread over the past."""

    def __init__(self, inner: SpanExporter, clock: VirtualClock) -> None:
        self.inner = inner
        self.clock = clock

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([self._restamp(span) for span in spans])

    def _restamp(self, span: ReadableSpan) -> ReadableSpan:
        at = self.clock.to_virtual
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=span.attributes,
            events=[Event(e.name, e.attributes, at(e.timestamp)) for e in span.events],
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=at(span.start_time),
            end_time=at(span.end_time),
            instrumentation_scope=span.instrumentation_scope,
        )

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)
