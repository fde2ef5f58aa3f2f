"""``@causeline.agent``, ``@causeline.step`` and ``@causeline.tool``.

Each works on plain functions, methods, coroutine functions, generator
functions and async generator functions, with or without parentheses, and the
object they return is also a context manager (``with causeline.step("plan"):``).

For generators the span covers the whole iteration, but the span is the
current span only while the generator's own code runs, never while the
consumer handles a yielded item.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from types import CoroutineType as _CoroutineType
from collections.abc import Callable
from typing import Any, TypeVar

from opentelemetry import context as otel_context

from . import _internal
from . import attributes as A
from ._state import STATE
from .handle import SpanHandle
from .spans import ToolCall, agent_run, end_when_collected, step_run, tool_call

F = TypeVar("F", bound=Callable[..., Any])
_MISSING = object()


def _end(h: SpanHandle, token: Any, exc: BaseException | None, result: Any = _MISSING) -> None:
    try:
        if token is not None:
            otel_context.detach(token)
        if result is not _MISSING and exc is None and STATE.policy.enabled and isinstance(h, ToolCall):
            h.set_result(result)
        h._finish(exc)
    except Exception as err:
        _internal.handle(err, "decorator end")


def _begin(
    make: Callable[[tuple[Any, ...], dict[str, Any]], SpanHandle], args: Any, kwargs: Any, attach: bool = True
) -> tuple[Any, Any]:
    """Start the span of one call (and make it current if ``attach``).

    Returns ``(handle, token)``, or ``(None, None)`` when the SDK failed: the
    call then runs uninstrumented."""
    try:
        h = make(args, kwargs)
        h._entered = True
        h._start()
        return h, (otel_context.attach(h._ctx) if attach else None)
    except Exception as exc:
        _internal.handle(exc, "decorator start")
        return None, None


def _attach(h: SpanHandle | None) -> Any:
    return otel_context.attach(h._ctx) if h is not None else None


def _detach(token: Any) -> None:
    if token is not None:
        otel_context.detach(token)


async def _await_then_end(h: SpanHandle, awaitable: Any) -> Any:
    """The span of a call that returned a coroutine ends when that coroutine is done."""
    token = _attach(h)
    try:
        result = await awaitable
    except BaseException as exc:
        _end(h, token, exc)
        raise
    _end(h, token, None, result)
    return result


def _wrap(fn: Callable[..., Any], make: Callable[[tuple[Any, ...], dict[str, Any]], SpanHandle]) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def agen_wrapper(*args: Any, **kwargs: Any) -> Any:
            # Without a span (h is None, the SDK failed) the same loop just forwards.
            h, _ = _begin(make, args, kwargs, attach=False)
            send: Any = None
            throw: BaseException | None = None
            try:
                agen = fn(*args, **kwargs)
                while True:
                    token = _attach(h)
                    try:
                        if throw is not None:
                            exc, throw = throw, None
                            item = await agen.athrow(exc)
                        else:
                            item = await agen.asend(send)
                    finally:
                        _detach(token)
                    try:
                        send = yield item
                    except GeneratorExit:
                        token = _attach(h)
                        try:
                            await agen.aclose()
                        finally:
                            _detach(token)
                        raise
                    except BaseException as exc:  # thrown in by the consumer: pass it on
                        throw = exc
            except StopAsyncIteration:
                if h is not None:
                    _end(h, None, None)
            except BaseException as exc:
                if h is not None:
                    _end(h, None, exc)
                raise

        return agen_wrapper

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            h, token = _begin(make, args, kwargs)
            if h is None:
                return await fn(*args, **kwargs)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                _end(h, token, exc)
                raise
            _end(h, token, None, result)
            return result

        return async_wrapper

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            h, _ = _begin(make, args, kwargs, attach=False)
            if h is None:
                return (yield from fn(*args, **kwargs))
            send: Any = None
            throw: BaseException | None = None
            try:
                gen = fn(*args, **kwargs)
                while True:
                    token = otel_context.attach(h._ctx)
                    try:
                        if throw is not None:
                            exc, throw = throw, None
                            item = gen.throw(exc)
                        else:
                            item = gen.send(send)
                    finally:
                        otel_context.detach(token)
                    try:
                        send = yield item
                    except GeneratorExit:
                        token = otel_context.attach(h._ctx)
                        try:
                            gen.close()
                        finally:
                            otel_context.detach(token)
                        raise
                    except BaseException as exc:
                        throw = exc
            except StopIteration as stop:
                _end(h, None, None)
                return stop.value
            except BaseException as exc:
                _end(h, None, exc)
                raise

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        h, token = _begin(make, args, kwargs)
        if h is None:
            return fn(*args, **kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            _end(h, token, exc)
            raise
        if isinstance(result, _CoroutineType):  # e.g. an object with ``async def __call__``
            try:
                _detach(token)
                coro = _await_then_end(h, result)
                end_when_collected(coro, h.end)  # never awaited: still end the span
                return coro
            except Exception as err:
                _internal.handle(err, "decorator await")
                return result
        _end(h, token, None, result)
        return result

    return wrapper


# One variable for every instrument used as a context manager: a per thread/task
# stack of (instrument, handle), since one instrument object can be entered
# concurrently from many tasks and threads (a variable per instrument would
# add an entry to the context for every ``with causeline.step(...)``).
_ACTIVE: contextvars.ContextVar[tuple[tuple[Any, SpanHandle], ...]] = contextvars.ContextVar(
    "causeline_active_instruments", default=()
)


class _Instrument:
    """What ``agent()``, ``step()`` and ``tool()`` return: a decorator that is
    also a (sync and async) context manager."""

    def __init__(self, kind: str, name: str | None, options: dict[str, Any]) -> None:
        self._kind = kind
        self._name = name
        self._options = options

    # ---- decorator -------------------------------------------------------------
    def __call__(self, fn: F) -> F:
        try:
            name = self._name or getattr(fn, "__name__", None) or "function"
            make = self._maker(name, fn)
        except Exception as exc:
            _internal.handle(exc, "decorate")
            return fn
        return _wrap(fn, make)  # type: ignore[return-value]

    def _maker(
        self, name: str, fn: Callable[..., Any] | None
    ) -> Callable[[tuple[Any, ...], dict[str, Any]], SpanHandle]:
        opts = self._options
        if self._kind == "agent":
            return lambda args, kwargs: agent_run(name, **opts)
        if self._kind == "step":
            return lambda args, kwargs: step_run(name, **opts)
        return _tool_maker(name, fn, opts)

    # ---- context manager ---------------------------------------------------------
    def __enter__(self) -> SpanHandle:
        try:
            h = self._maker(self._name or self._kind, None)((), {})
        except Exception as exc:
            _internal.handle(exc, "instrument enter")
            h = SpanHandle("causeline")
            h._entered = True
        _ACTIVE.set((*_ACTIVE.get(), (self, h)))
        return h.__enter__()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        stack = _ACTIVE.get()
        for i in range(len(stack) - 1, -1, -1):  # normally the last entry
            if stack[i][0] is self:
                _ACTIVE.set(stack[:i] + stack[i + 1 :])
                return stack[i][1].__exit__(exc_type, exc, tb)
        return False

    async def __aenter__(self) -> SpanHandle:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        return self.__exit__(exc_type, exc, tb)


def _bind_arguments(sig: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if sig is not None:
        try:
            bound = dict(sig.bind_partial(*args, **kwargs).arguments)
            bound.pop("self", None)
            bound.pop("cls", None)
            return bound
        except TypeError:
            pass
    return {"args": list(args), "kwargs": dict(kwargs)}


_FAST_TOOL_OPTIONS = frozenset({"description", "attributes", "tool_type"})


def _tool_maker(
    name: str, fn: Callable[..., Any] | None, opts: dict[str, Any]
) -> Callable[[tuple[Any, ...], dict[str, Any]], SpanHandle]:
    opts = dict(opts)
    if opts.get("description") is None and fn is not None and fn.__doc__:
        opts["description"] = inspect.cleandoc(fn.__doc__).split("\n", 1)[0][:256]
    sig: inspect.Signature | None = None
    if fn is not None:
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            sig = None
    capture_args = fn is not None
    state = STATE

    if not set(opts) <= _FAST_TOOL_OPTIONS:  # links etc.: resolve per call

        def make_slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> SpanHandle:
            arguments = _bind_arguments(sig, args, kwargs) if capture_args and state.policy.enabled else None
            return tool_call(name, arguments=arguments, **opts)

        return make_slow

    # The hot path: attributes computed once, one small object per call.
    attrs: dict[str, Any] = {
        A.OPERATION_NAME: A.OP_EXECUTE_TOOL,
        A.TOOL_NAME: name,
        A.TOOL_TYPE: opts.get("tool_type") or "function",
    }
    if opts.get("description"):
        attrs[A.TOOL_DESCRIPTION] = opts["description"]
    if opts.get("attributes"):
        attrs.update(opts["attributes"])

    def make(args: tuple[Any, ...], kwargs: dict[str, Any]) -> SpanHandle:
        arguments = _bind_arguments(sig, args, kwargs) if capture_args and state.policy.enabled else None
        return ToolCall(name, attrs, [], None, arguments)

    return make


def agent(name: str | Callable[..., Any] | None = None, **options: Any) -> Any:
    """Decorate an agent's entry point: each call is an ``invoke_agent`` span.

    ``@causeline.agent``, ``@causeline.agent("planner")``, or as a context
    manager ``with causeline.agent("planner") as run:``. ``options`` are those
    of :func:`causeline.agent_run` (``id``, ``description``, ``conversation_id``,
    ``user_id``, ``links``, ``attributes``, ...).
    """
    if callable(name):
        return _Instrument("agent", None, {})(name)
    return _Instrument("agent", name, options)


def step(name: str | Callable[..., Any] | None = None, **options: Any) -> Any:
    """Decorate a workflow step: each call is an ``invoke_workflow`` span.

    Also a context manager. ``options`` are those of :func:`causeline.step_run`
    (``uses_output_of``, ``retry_of``, ``fallback_of``, ``attempt``, ``links``, ``attributes``).
    """
    if callable(name):
        return _Instrument("step", None, {})(name)
    return _Instrument("step", name, options)


def tool(name: str | Callable[..., Any] | None = None, **options: Any) -> Any:
    """Decorate a tool: each call is an ``execute_tool`` span; with
    capture_content the bound arguments and the return value are recorded.

    Also a context manager. ``options`` are those of :func:`causeline.tool_call`
    (``description``, ``call_id``, ``tool_type``, ``links``, ``attributes``, ...);
    without a description, the first line of the docstring is used.
    """
    if callable(name):
        return _Instrument("tool", None, {})(name)
    return _Instrument("tool", name, options)
