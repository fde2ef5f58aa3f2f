"""The span handle every Causeline context manager returns, error recording,
and the context keys that carry the current agent and a pending handoff."""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import _internal
from . import attributes as A
from ._state import STATE
from .links import LinkSpec, add_link_to, build_links

AGENT_KEY = otel_context.create_key("causeline.agent")
HANDOFF_KEY = otel_context.create_key("causeline.handoff")
# The handle whose block a context belongs to: lets an exit skip contexts of blocks already exited.
_HANDLE_KEY = otel_context.create_key("causeline.handle")

_INTERNAL = SpanKind.INTERNAL
_CLIENT = SpanKind.CLIENT
_STACK_LIMIT = 16384


# -- errors -----------------------------------------------------------------------


def error_type_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    if module in ("builtins", "__main__") or not module:
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def _is_error(exc: BaseException) -> bool:
    if isinstance(exc, GeneratorExit):
        return False
    if isinstance(exc, SystemExit):
        return exc.code not in (0, None)
    return True


def _status_code_of(exc: BaseException) -> int | None:
    for obj in (exc, getattr(exc, "response", None)):
        code = getattr(obj, "status_code", None) if obj is not None else None
        if isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599:
            return code
    return None


def record_error(span: trace.Span, exc: BaseException, error_type: str | None = None) -> None:
    """Status ERROR, ``error.type``, an ``exception`` event; messages redacted."""
    if not span.is_recording() or not _is_error(exc):
        return
    policy = STATE.policy
    etype = error_type or error_type_name(exc)
    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {type(exc).__name__}>"
    message = policy.redact_text(message) or ""
    try:
        stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:
        stack = ""
    stack = (policy.redact_text(stack[-_STACK_LIMIT:], limit=_STACK_LIMIT) or "") if stack else ""
    span.set_attribute(A.ERROR_TYPE, etype)
    code = _status_code_of(exc)
    if code is not None:
        span.set_attribute(A.HTTP_RESPONSE_STATUS_CODE, code)
    span.add_event(
        A.EXCEPTION_EVENT,
        {A.EXCEPTION_TYPE: etype, A.EXCEPTION_MESSAGE: message, A.EXCEPTION_STACKTRACE: stack},
    )
    span.set_status(Status(StatusCode.ERROR, f"{etype}: {message}"[:1024] if message else etype))


def _clean_str_list(values: Any) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        return [values]
    return [str(v) for v in values]


# -- base handle -------------------------------------------------------------------


class SpanHandle:
    """A running (or finished) Causeline span.

    Attributes: ``span`` (the OpenTelemetry span), ``attempt`` (1-based, for
    retries/fallbacks, else None). Use the handle as a link target
    (``causeline.fallback(of=handle)``) even after its block has ended.
    """

    __slots__ = (
        "span",
        "attempt",
        "_name",
        "_kind",
        "_attrs",
        "_links",
        "_ctx",
        "_token",
        "_prev",
        "_exited",
        "_ended",
        "_defer_end",
        "_started_at",
        "_entered",
    )

    _operation = ""

    def __init__(
        self,
        name: str,
        kind: SpanKind = _INTERNAL,
        attrs: dict[str, Any] | None = None,
        links: list[Any] | None = None,
        attempt: int | None = None,
    ) -> None:
        self.span: trace.Span = trace.INVALID_SPAN
        self.attempt = attempt
        self._name = name
        self._kind = kind
        self._attrs = attrs
        self._links = links
        self._ctx: Any = None
        self._token: Any = None
        self._prev: Any = None
        self._exited = False
        self._ended = False
        self._defer_end = False
        self._started_at = 0.0
        self._entered = False

    # ---- lifecycle (SDK-internal; guarded by callers) -------------------------
    def _context_values(self, ctx: Any) -> Any:
        """Hook: add Causeline values to the context the span's children see."""
        return ctx

    def _before_start(self) -> None:
        """Hook: compute attributes/links that depend on the current context."""

    def _add_current_agent(self) -> None:
        """A ``_before_start`` for spans inside an agent: record ``gen_ai.agent.name``."""
        agent = otel_context.get_value(AGENT_KEY)
        if agent is not None:
            attrs = dict(self._attrs) if self._attrs else {}
            attrs[A.AGENT_NAME] = agent
            self._attrs = attrs

    def _start(self) -> None:
        self._before_start()
        attrs = self._attrs
        if self.attempt is not None:
            attrs = dict(attrs) if attrs else {}
            attrs[A.ATTEMPT] = int(self.attempt)
        self.span = STATE.tracer.start_span(self._name, kind=self._kind, attributes=attrs, links=self._links or ())
        self._started_at = time.monotonic()
        self._ctx = otel_context.set_value(
            _HANDLE_KEY, self, self._context_values(trace.set_span_in_context(self.span)))
        self._on_started()

    def _on_started(self) -> None:
        """Hook: work that needs the started span (e.g. captured input)."""

    def _finish(self, exc: BaseException | None) -> None:
        if self._ended:
            return
        span = self.span
        if exc is not None:
            record_error(span, exc)
        else:
            self._on_success()
        self._ended = True
        span.end()

    def _on_success(self) -> None:
        """Hook: attributes recorded when the block ends without an exception."""

    # ---- context manager -----------------------------------------------------
    def __enter__(self) -> SpanHandle:
        try:
            if not self._entered:
                self._entered = True
                self._prev = otel_context.get_current()
                self._start()
                self._token = otel_context.attach(self._ctx)
        except Exception as exc:
            _internal.handle(exc, f"{type(self).__name__} start")
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        try:
            token, self._token = self._token, None
            self._exited = True
            if token is not None:
                self._restore_context(token)
            if exc is not None or not self._defer_end:
                self._finish(exc)
        except Exception as err:
            _internal.handle(err, f"{type(self).__name__} end")
        return False  # never swallow the user's exception

    def _restore_context(self, token: Any) -> None:
        """Make current again the context from before this block, skipping blocks that already
        exited: with blocks exited out of order (a, b entered; a, then b exited) a plain reset
        would leave a's ended span current. While another block's context is on top (b still
        open when a exits), leave it there."""
        if otel_context.get_current() is not self._ctx:
            return
        target = self._prev
        while True:
            owner = otel_context.get_value(_HANDLE_KEY, target)
            if owner is None or not owner._exited:
                break
            target = owner._prev
        if target is self._prev:
            otel_context.detach(token)
        else:
            otel_context.attach(target)  # a reset would bring back the exited block's context

    async def __aenter__(self) -> SpanHandle:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        return self.__exit__(exc_type, exc, tb)

    # ---- public helpers ---------------------------------------------------------
    @property
    def span_context(self) -> trace.SpanContext:
        return self.span.get_span_context()

    def get_span_context(self) -> trace.SpanContext:
        return self.span.get_span_context()

    @property
    def trace_id(self) -> str:
        """The trace id as 32 hex digits."""
        return format(self.span.get_span_context().trace_id, "032x")

    @property
    def span_id(self) -> str:
        """The span id as 16 hex digits."""
        return format(self.span.get_span_context().span_id, "016x")

    def is_recording(self) -> bool:
        return self.span.is_recording()

    def set_attribute(self, key: str, value: Any) -> SpanHandle:
        try:
            self.span.set_attribute(key, value)
        except Exception as exc:
            _internal.handle(exc, "set_attribute")
        return self

    def set_attributes(self, attributes: Mapping[str, Any]) -> SpanHandle:
        try:
            self.span.set_attributes(dict(attributes))
        except Exception as exc:
            _internal.handle(exc, "set_attributes")
        return self

    def add_link(self, link: LinkSpec | Any, type: str | None = None) -> SpanHandle:
        """Link this running span to another (a LinkSpec, handle, span or SpanContext)."""
        try:
            add_link_to(self.span, link, type)
        except Exception as exc:
            _internal.handle(exc, "add_link")
        return self

    def record_exception(self, exc: BaseException, error_type: str | None = None) -> SpanHandle:
        """Mark the span failed by ``exc`` without raising it (a handled failure)."""
        try:
            record_error(self.span, exc, error_type)
        except Exception as err:
            _internal.handle(err, "record_exception")
        return self

    def set_error(self, error_type: str, message: str | None = None) -> SpanHandle:
        """Mark the span failed without an exception (e.g. invalid output)."""
        try:
            if self.span.is_recording():
                self.span.set_attribute(A.ERROR_TYPE, error_type)
                msg = STATE.policy.redact_text(message) if message else None
                self.span.set_status(Status(StatusCode.ERROR, msg or error_type))
        except Exception as exc:
            _internal.handle(exc, "set_error")
        return self

    def end(self) -> None:
        """End the span now (only needed for spans whose end was deferred)."""
        try:
            self._finish(None)
        except Exception as exc:
            _internal.handle(exc, "end")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r} span_id={self.span_id}>"


class CurrentSpan(SpanHandle):
    """A handle for a span someone else started (see :func:`current_span`)."""

    __slots__ = ()

    def __init__(self, span: trace.Span) -> None:
        super().__init__(getattr(span, "name", "span"))
        self.span = span
        self._ended = True  # never end a span we did not start
        self._entered = True


def current_span() -> SpanHandle:
    """A handle for the active span (any instrumentation), e.g. as a link target."""
    return CurrentSpan(trace.get_current_span())


def add_link(link: LinkSpec | Any, type: str | None = None) -> None:
    """Add a typed link to the currently active span."""
    try:
        add_link_to(trace.get_current_span(), link, type)
    except Exception as exc:
        _internal.handle(exc, "add_link")


def _links_and_attempt(
    links: Any, fallback_of: Any, retry_of: Any, uses_output_of: Any, handoff_from: Any, attempt: int | None
) -> tuple[list[Any], int | None]:
    if links is None and fallback_of is None and retry_of is None and uses_output_of is None and handoff_from is None:
        return [], attempt
    return build_links(
        links,
        fallback_of=fallback_of,
        retry_of=retry_of,
        uses_output_of=uses_output_of,
        handoff_from=handoff_from,
        attempt=attempt,
    )


def _with_user_attrs(attrs: dict[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    if extra:
        attrs.update(extra)
    return attrs
