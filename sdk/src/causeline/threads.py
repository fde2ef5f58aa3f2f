"""Carry the current span (and agent) into threads.

``asyncio`` tasks copy the context by themselves. Threads do not, so a span
started in a worker thread would become a new root. Two remedies:

* :func:`wrap` captures the caller's context for one callable;
* ``init(auto_instrument=...)`` with ``"threading"`` (on by default) patches
  ``threading.Thread`` and ``concurrent.futures.ThreadPoolExecutor.submit`` to
  do the same for every thread and pool task started while a span is active.
  :func:`uninstrument_threads` undoes it.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from opentelemetry import context as otel_context

from . import _internal

F = TypeVar("F", bound=Callable[..., Any])

_patched: dict[str, Any] = {}
_lock = threading.Lock()


def _run_in(ctx: Any, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    token = otel_context.attach(ctx)
    try:
        return fn(*args, **kwargs)
    finally:
        otel_context.detach(token)


def wrap(fn: F) -> F:
    """Return ``fn`` bound to the current context: call it from any thread and
    the spans it makes are children of the span active now."""
    ctx = otel_context.get_current()

    @functools.wraps(fn)
    def bound(*args: Any, **kwargs: Any) -> Any:
        return _run_in(ctx, fn, args, kwargs)

    return bound  # type: ignore[return-value]


def instrument_threads() -> bool:
    """Propagate the context into new threads and thread-pool tasks (idempotent)."""
    with _lock:
        if _patched:
            return True
        original_start = threading.Thread.start
        original_submit = concurrent.futures.ThreadPoolExecutor.submit

        def start(self: threading.Thread, *args: Any, **kwargs: Any) -> Any:
            try:
                ctx = otel_context.get_current()
                run = self.run  # the subclass's run() too
                self.run = functools.partial(_run_in, ctx, run, (), {})  # type: ignore[method-assign]
            except Exception as exc:  # pragma: no cover
                _internal.record(exc, "thread start")
            return original_start(self, *args, **kwargs)

        def submit(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            ctx = otel_context.get_current()
            return original_submit(self, _run_in, ctx, fn, args, kwargs)

        threading.Thread.start = start  # type: ignore[method-assign]
        concurrent.futures.ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]
        _patched.update(start=original_start, submit=original_submit)
        return True


def uninstrument_threads() -> None:
    """Undo :func:`instrument_threads`."""
    with _lock:
        if not _patched:
            return
        threading.Thread.start = _patched["start"]  # type: ignore[method-assign]
        concurrent.futures.ThreadPoolExecutor.submit = _patched["submit"]  # type: ignore[method-assign]
        _patched.clear()
