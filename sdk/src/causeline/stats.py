"""Counters describing what the SDK did with the spans it was handed.

Every sampled span handed to Causeline is, at every moment, in exactly one of
four states, so ``spans_ended = spans_exported + spans_failed + spans_dropped +
spans_queued`` holds in every :func:`stats` snapshot:

* queued: waiting in the export queue or in the batch being sent right now;
* exported: accepted by the collector;
* failed: the collector was unreachable or refused, after the exporter's retries;
* dropped: never sent (the queue was full, or still queued when the exit wait ran out).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any


class Stats:
    """Counters of the export pipelines of this process.

    ``lock`` guards every counter. The pipeline moves a span from one state to
    another while holding it (it is also the lock of the pipeline's queue), so
    a snapshot never sees a span in two states or in none.
    """

    __slots__ = (
        "__weakref__",
        "lock",
        "spans_ended",
        "spans_queued",
        "spans_dropped",
        "spans_exported",
        "spans_failed",
        "spans_filtered",
        "spans_deduplicated",
        "export_calls",
        "export_failures",
        "last_export_error",
    )

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: (s := ref()) is not None and s._after_fork())

    def reset(self) -> None:
        self.spans_ended = 0  # handed to our processor (sampled spans only)
        self.spans_queued = 0  # in the queue or in the batch being exported
        self.spans_dropped = 0  # queue full, or abandoned when the exit wait ran out
        self.spans_exported = 0  # accepted by the collector
        self.spans_failed = 0  # export failed after the exporter's own retries
        self.spans_filtered = 0  # content removed/redacted from third-party spans
        self.spans_deduplicated = 0  # a second span of one model call, not sent (counted as handled)
        self.export_calls = 0
        self.export_failures = 0
        self.last_export_error: str | None = None

    def _after_fork(self) -> None:
        # A forked child is a new process: it starts counting afresh, with a new
        # lock (the parent's may have been held by another thread at fork time).
        self.lock = threading.Lock()
        self.reset()

    def add(self, field: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, field, getattr(self, field) + n)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "spans_ended": self.spans_ended,
                "spans_exported": self.spans_exported,
                "spans_failed": self.spans_failed,
                "spans_dropped": self.spans_dropped,
                "spans_queued": self.spans_queued,
                "spans_filtered": self.spans_filtered,
                "spans_deduplicated": self.spans_deduplicated,
                "export_calls": self.export_calls,
                "export_failures": self.export_failures,
                "last_export_error": self.last_export_error,
            }


def stats() -> dict[str, Any]:
    """What the SDK has done so far, as a plain dict.

    Keys: ``initialized``, ``enabled``, ``endpoint``, ``spans_ended``,
    ``spans_exported``, ``spans_failed``, ``spans_dropped``, ``spans_queued``,
    ``spans_filtered``, ``spans_deduplicated``, ``export_calls``, ``export_failures``,
    ``last_export_error``, ``internal_errors``, ``instrumentations``.
    Counters are cumulative since the first :func:`causeline.init` in this
    process, and ``spans_ended = spans_exported + spans_failed + spans_dropped
    + spans_queued`` in every snapshot.
    """
    from . import _internal, _state

    out: dict[str, Any] = {
        "initialized": _state.STATE.initialized,
        "enabled": _state.STATE.config.enabled if _state.STATE.config else False,
        "endpoint": _state.STATE.config.traces_endpoint if _state.STATE.config else None,
    }
    out.update(_state.STATE.stats.snapshot())
    out["internal_errors"] = _internal.error_count()
    out["instrumentations"] = dict(_state.STATE.instrumentations)
    return out
