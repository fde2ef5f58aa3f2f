"""Counters describing what the SDK did with the spans it was handed.

``spans_ended`` = ``spans_exported`` + ``spans_failed`` + ``spans_dropped`` +
``spans_queued`` (+ the batch being exported right now, if any).
"""

from __future__ import annotations

import threading
from typing import Any


class Stats:
    """Thread-safe counters of one export pipeline."""

    __slots__ = (
        "_lock",
        "spans_ended",
        "spans_dropped",
        "spans_exported",
        "spans_failed",
        "spans_filtered",
        "export_calls",
        "export_failures",
        "last_export_error",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans_ended = 0  # handed to our processor (sampled spans only)
        self.spans_dropped = 0  # queue full: dropped without export
        self.spans_exported = 0  # accepted by the collector
        self.spans_failed = 0  # export failed after the exporter's own retries
        self.spans_filtered = 0  # content removed/redacted from third-party spans
        self.export_calls = 0
        self.export_failures = 0
        self.last_export_error: str | None = None

    def add(self, field: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, field, getattr(self, field) + n)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "spans_ended": self.spans_ended,
                "spans_exported": self.spans_exported,
                "spans_failed": self.spans_failed,
                "spans_dropped": self.spans_dropped,
                "spans_filtered": self.spans_filtered,
                "export_calls": self.export_calls,
                "export_failures": self.export_failures,
                "last_export_error": self.last_export_error,
            }


def stats() -> dict[str, Any]:
    """What the SDK has done so far, as a plain dict.

    Keys: ``initialized``, ``enabled``, ``endpoint``, ``spans_ended``,
    ``spans_exported``, ``spans_failed``, ``spans_dropped``, ``spans_queued``,
    ``spans_filtered``, ``export_calls``, ``export_failures``,
    ``last_export_error``, ``internal_errors``, ``instrumentations``.
    Counters are cumulative since the first :func:`causeline.init` in this process.
    """
    from . import _internal, _state

    out: dict[str, Any] = {
        "initialized": _state.STATE.initialized,
        "enabled": _state.STATE.config.enabled if _state.STATE.config else False,
        "endpoint": _state.STATE.config.traces_endpoint if _state.STATE.config else None,
    }
    out.update(_state.STATE.stats.snapshot())
    slot = _state.STATE.slot
    out["spans_queued"] = slot.queued() if slot is not None else 0
    out["internal_errors"] = _internal.error_count()
    out["instrumentations"] = dict(_state.STATE.instrumentations)
    return out
