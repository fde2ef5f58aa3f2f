"""Causeline's span processor: a bounded queue, one export thread, and an exit
wait that is short when nothing can be delivered.

``CauselineSpanProcessor`` is the one processor Causeline adds to a tracer
provider (once, however often ``init`` runs). It forwards ended spans to the
current ``Pipeline``, which batches them like OpenTelemetry's
``BatchSpanProcessor`` but is our own code, so that:

* every span moves between the states counted in :class:`~causeline.stats.Stats`
  (queued, exported, failed, dropped) under the stats lock, which is also the
  queue's lock: ``stats()`` adds up at every moment;
* a full queue drops the new span and counts it, without waiting;
* ``shutdown`` waits at most ``shutdown_timeout``, and at most
  ``shutdown_timeout_unreachable`` while the collector is known to be down;
  what is still queued then is counted as dropped.
"""

from __future__ import annotations

import collections
import os
import threading
import time
import weakref
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from . import _internal
from .config import Config
from .export import GuardedExporter, Reachability
from .redaction import ContentPolicy
from .stats import Stats

# After the exit wait ran out, how long shutdown still lets the batch in flight
# finish (the exporter's own shutdown has cut its retries short), so that the
# counts printed after shutdown() are final in the usual case.
_ABANDON_GRACE_S = 0.2
# How often shutdown looks whether the collector went down meanwhile.
_POLL_S = 0.05


class Pipeline:
    """A bounded queue, a worker thread exporting in batches, and counting."""

    def __init__(
        self,
        exporter: SpanExporter,
        config: Config,
        stats: Stats,
        policy: ContentPolicy,
        reachability: Reachability | None = None,
    ) -> None:
        self.stats = stats
        self.reachability = reachability or Reachability()
        self.exporter = GuardedExporter(exporter, stats, policy, self.reachability)
        self.max_queue = config.max_queue_size
        self.batch_size = min(config.max_export_batch_size, config.max_queue_size)
        self.delay = config.schedule_delay_millis / 1000
        self.shutdown_timeout = config.shutdown_timeout
        self.unreachable_timeout = config.shutdown_timeout_unreachable
        self._init_state()
        self._closed = False  # no new spans (shutdown started)
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: (p := ref()) is not None and p._init_state())

    def _init_state(self) -> None:
        # Also run in a forked child: the parent's queue and thread are the parent's.
        self._lock = self.stats.lock
        self._cond = threading.Condition(self._lock)
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._accepted = 0  # spans put in the queue, ever
        self._taken = 0  # spans taken out by the worker (or abandoned)
        self._settled = 0  # spans taken whose export finished
        self._flush_upto = 0  # export at once until _taken reaches this
        self._closing = False  # drain, then stop
        self._abandon = False  # stop now: the exit wait ran out
        self._worker: threading.Thread | None = None

    # -- producer side (the application's threads) ---------------------------------------

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if ctx is None or not ctx.trace_flags.sampled or self._closed:
            return
        stats = self.stats
        queue = self._queue
        with self._lock:  # the condition's own lock: cheaper to enter than the condition
            stats.spans_ended += 1
            if len(queue) < self.max_queue:
                queue.append(span)
                stats.spans_queued += 1
                self._accepted += 1
                if len(queue) == self.batch_size:
                    self._cond.notify()
                if self._worker is None:
                    self._start_worker()
                return
            stats.spans_dropped += 1
        _internal.warn_once(
            "queue-full",
            "causeline: export queue full (%d spans); dropping spans, see causeline.stats()",
            self.max_queue,
        )

    def _start_worker(self) -> None:
        # Called with the lock held.
        worker = threading.Thread(target=self._run, name="causeline-export", daemon=True)
        try:
            worker.start()
        except Exception as exc:  # e.g. no threads left, or at interpreter exit
            _internal.record(exc, "export thread")
            return
        self._worker = worker

    # -- the export thread ---------------------------------------------------------------

    def _run(self) -> None:
        cond = self._cond
        queue = self._queue
        next_export = time.monotonic() + self.delay
        while True:
            with cond:
                while True:
                    if self._abandon:
                        return
                    if queue and (
                        len(queue) >= self.batch_size
                        or self._closing
                        or self._taken < self._flush_upto
                        or time.monotonic() >= next_export
                    ):
                        break
                    if not queue and self._closing:
                        return
                    if not queue:
                        next_export = time.monotonic() + self.delay
                    cond.wait(max(next_export - time.monotonic(), 0.0) if queue else self.delay)
                n = min(len(queue), self.batch_size)
                batch = [queue.popleft() for _ in range(n)]
                self._taken += n
            try:
                ok = self.exporter.export(batch)
            except BaseException as exc:  # pragma: no cover - the guard never raises
                ok = False
                _internal.record(exc, "export")
            with cond:
                self.stats.spans_queued -= n
                if ok:
                    self.stats.spans_exported += n
                else:
                    self.stats.spans_failed += n
                self._settled += n
                cond.notify_all()
            next_export = time.monotonic() + self.delay

    # -- flush and shutdown ---------------------------------------------------------------

    def queued(self) -> int:
        with self._cond:
            return self._accepted - self._settled

    def force_flush(self, timeout: float) -> bool:
        """Export everything queued so far; wait at most ``timeout`` seconds.

        The export thread does the work, so a hanging collector never piles up
        threads, however often the host calls ``flush``."""
        deadline = time.monotonic() + max(timeout, 0.0)
        cond = self._cond
        with cond:
            target = self._accepted
            if self._settled >= target:
                return True
            self._flush_upto = max(self._flush_upto, target)
            cond.notify_all()
            while self._settled < target:
                left = deadline - time.monotonic()
                if left <= 0 or self._abandon:
                    return self._settled >= target
                cond.wait(left)
        return True

    def shutdown(self, timeout: float | None = None) -> None:
        """Drain the queue, waiting at most ``timeout`` (default ``shutdown_timeout``)
        seconds, and at most ``shutdown_timeout_unreachable`` while the collector is
        known to be down; then stop the exporter. Spans still queued are counted as dropped."""
        cond = self._cond
        with cond:
            if self._closed:
                return
            self._closed = True
            self._closing = True
            cond.notify_all()
        timeout = self.shutdown_timeout if timeout is None else max(timeout, 0.0)
        started = time.monotonic()
        drained = False
        abandoned = 0
        with cond:
            while True:
                drained = self._settled >= self._accepted
                if drained:
                    break
                limit = min(timeout, self.unreachable_timeout) if self.reachability.down else timeout
                left = started + limit - time.monotonic()
                if left <= 0:
                    break
                cond.wait(min(left, _POLL_S))
            if not drained:
                abandoned = self._abandon_queue()
        # Stops the exporter's retries too (so an in-flight batch returns at once).
        self.exporter.shutdown()
        if not drained:
            with cond:
                deadline = time.monotonic() + _ABANDON_GRACE_S
                while self._settled < self._taken and (left := deadline - time.monotonic()) > 0:
                    cond.wait(left)
        if abandoned:
            _internal.warn_once(
                "exit-undelivered",
                "causeline: %d spans not sent: the collector did not take them within the exit wait "
                "(shutdown_timeout); see causeline.stats()",
                abandoned,
            )

    def _abandon_queue(self) -> int:
        # Called with the lock held: what the worker has not taken is dropped now.
        n = len(self._queue)
        self._queue.clear()
        self._abandon = True
        self._taken += n
        self._settled += n
        self.stats.spans_queued -= n
        self.stats.spans_dropped += n
        self._cond.notify_all()
        return n


class CauselineSpanProcessor(SpanProcessor):
    """The single processor Causeline adds to a tracer provider.

    It delegates to the current pipeline, so ``init`` can be called again
    (new endpoint, key or exporter) without stacking processors.
    """

    def __init__(self) -> None:
        self.pipeline: Pipeline | None = None

    def swap(self, pipeline: Pipeline | None) -> Pipeline | None:
        old, self.pipeline = self.pipeline, pipeline
        return old

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
