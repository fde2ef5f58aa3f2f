"""Internal error policy: the SDK never raises into the host application.

Every public entry point wraps its own work (never the user's code) and hands
any exception to :func:`handle`, which counts it, remembers the last few and
logs a rate-limited warning. Tests (and anyone debugging the SDK) can turn on
re-raising with ``CAUSELINE_DEBUG_RAISE=1`` or by setting
``causeline._internal.raise_internal_errors = True``.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time

logger = logging.getLogger("causeline")

_TRUE = frozenset({"1", "true", "yes", "on"})

raise_internal_errors: bool = os.environ.get("CAUSELINE_DEBUG_RAISE", "").strip().lower() in _TRUE
"""Re-raise internal SDK errors instead of swallowing them (tests, debugging)."""

_recent: collections.deque[tuple[str, BaseException]] = collections.deque(maxlen=50)
_lock = threading.Lock()
_count = 0
_last_log: dict[str, float] = {}
_LOG_INTERVAL_S = 60.0


class CauselineInternalError(RuntimeError):
    """Raised (only in debug-raise mode) for problems inside the SDK itself."""


def record(exc: BaseException, where: str) -> None:
    """Count and remember an internal error and log it (rate-limited); never raises.

    Background threads use this directly: there is nobody to raise to, and the
    test fixture fails a test that left recorded errors behind.
    """
    global _count
    with _lock:
        _count += 1
        _recent.append((where, exc))
    if not raise_internal_errors:
        warn_once(f"internal:{where}", "causeline: internal error in %s ignored: %r", where, exc)


def handle(exc: BaseException, where: str) -> None:
    """Record an internal error; re-raise it only in debug-raise mode.

    Call from inside an ``except Exception`` block that guards SDK-only code
    (never around the user's own code).
    """
    record(exc, where)
    if raise_internal_errors:
        raise exc


def warn_once(key: str, msg: str, *args: object) -> None:
    """Log a warning at most once a minute per key (never spam the host's logs)."""
    now = time.monotonic()
    last = _last_log.get(key)
    if last is not None and now - last < _LOG_INTERVAL_S:
        return
    _last_log[key] = now
    try:
        logger.warning(msg, *args)
    except Exception:  # pragma: no cover - a broken logging setup must not hurt the host
        pass


def error_count() -> int:
    return _count


def recent_errors() -> list[tuple[str, BaseException]]:
    """The last internal errors as ``(where, exception)`` pairs (oldest first)."""
    with _lock:
        return list(_recent)


def clear_errors() -> None:
    global _count
    with _lock:
        _recent.clear()
        _count = 0
    _last_log.clear()
