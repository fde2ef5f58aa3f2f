"""Agent runs, workflow steps, tool calls and model calls.

Every handle is a context manager (``with`` and ``async with``). The span
starts when the block is entered and ends when it is left; an exception
leaving the block is recorded on the span (status, ``error.type``, an
``exception`` event) and propagates unchanged. Problems inside the SDK itself
never reach the caller (see ``causeline._internal``).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context

from . import _internal
from . import attributes as A
from ._state import STATE
from .handle import (
    _CLIENT,
    _INTERNAL,
    AGENT_KEY,
    HANDOFF_KEY,
    SpanHandle,
    _clean_str_list,
    _links_and_attempt,
    _with_user_attrs,
)
from .links import handoff_from as _handoff_link

_STREAM_TEXT_MARGIN = 4096


def _run_collected(end: Callable[[], None]) -> None:
    try:
        end()
    except Exception as exc:  # runs from the garbage collector: nobody to raise to
        _internal.record(exc, "end on collect")


def end_when_collected(obj: Any, end: Callable[[], None]) -> None:
    """Call ``end`` (which must be idempotent) once ``obj`` is garbage collected,
    e.g. a stream or coroutine dropped without being consumed."""
    weakref.finalize(obj, _run_collected, end).atexit = False


# -- agents -------------------------------------------------------------------------


class AgentRun(SpanHandle):
    """An ``invoke_agent`` span. Children see ``gen_ai.agent.name``."""

    __slots__ = ("agent_name", "_explicit_handoff")

    def __init__(self, name: str, attrs: dict[str, Any], links: list[Any], attempt: int | None, explicit_handoff: bool):
        super().__init__(f"{A.OP_INVOKE_AGENT} {name}", _INTERNAL, attrs, links, attempt)
        self.agent_name = name
        self._explicit_handoff = explicit_handoff

    def _before_start(self) -> None:
        if self._explicit_handoff:
            return
        pending = otel_context.get_value(HANDOFF_KEY)
        if not pending:
            return
        try:
            target = pending.pop()  # one-shot: only the first agent run inside the handoff links to it
        except IndexError:  # taken by a concurrent agent run
            return
        link = _handoff_link(target).to_otel()
        if link is not None:
            self._links = [*(self._links or ()), link]

    def _context_values(self, ctx: Any) -> Any:
        ctx = otel_context.set_value(AGENT_KEY, self.agent_name, ctx)
        if otel_context.get_value(HANDOFF_KEY, ctx) is not None:
            ctx = otel_context.set_value(HANDOFF_KEY, None, ctx)
        return ctx


def agent_run(
    name: str,
    *,
    id: str | None = None,
    description: str | None = None,
    conversation_id: str | None = None,
    user_id: str | None = None,
    handoff_from: Any = None,
    uses_output_of: Any = None,
    links: Sequence[Any] | None = None,
    attempt: int | None = None,
    retry_of: Any = None,
    attributes: Mapping[str, Any] | None = None,
) -> AgentRun:
    """Context manager for one agent invocation (an ``invoke_agent`` span).

    An agent run started inside :func:`handoff` links to it (``handoff_from``)
    automatically; pass ``handoff_from=`` to link to a handoff that already ended.
    """
    try:
        attrs: dict[str, Any] = {A.OPERATION_NAME: A.OP_INVOKE_AGENT, A.AGENT_NAME: name}
        if id is not None:
            attrs[A.AGENT_ID] = str(id)
        if description is not None:
            attrs[A.AGENT_DESCRIPTION] = description
        if conversation_id is not None:
            attrs[A.CONVERSATION_ID] = str(conversation_id)
        if user_id is not None:
            attrs[A.USER_ID] = str(user_id)
        lk, attempt = _links_and_attempt(links, None, retry_of, uses_output_of, handoff_from, attempt)
        return AgentRun(name, _with_user_attrs(attrs, attributes), lk, attempt, handoff_from is not None)
    except Exception as exc:
        _internal.handle(exc, "agent_run")
        return AgentRun(str(name), {}, [], None, True)


# -- workflow steps --------------------------------------------------------------------


class StepRun(SpanHandle):
    """An ``invoke_workflow`` span for one named step."""

    __slots__ = ()


def step_run(
    name: str,
    *,
    uses_output_of: Any = None,
    retry_of: Any = None,
    fallback_of: Any = None,
    attempt: int | None = None,
    links: Sequence[Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> StepRun:
    """Context manager for one workflow step (``invoke_workflow`` span)."""
    try:
        attrs: dict[str, Any] = {A.OPERATION_NAME: A.OP_INVOKE_WORKFLOW, A.WORKFLOW_NAME: name}
        lk, attempt = _links_and_attempt(links, fallback_of, retry_of, uses_output_of, None, attempt)
        return StepRun(f"{A.OP_INVOKE_WORKFLOW} {name}", _INTERNAL, _with_user_attrs(attrs, attributes), lk, attempt)
    except Exception as exc:
        _internal.handle(exc, "step")
        return StepRun(str(name))


# -- tools -------------------------------------------------------------------------------


class ToolCall(SpanHandle):
    """An ``execute_tool`` span. Arguments and result are recorded only with capture_content."""

    __slots__ = ("_result", "_has_result", "_arguments")

    def __init__(self, name: str, attrs: dict[str, Any], links: list[Any], attempt: int | None, arguments: Any = None):
        super().__init__(f"{A.OP_EXECUTE_TOOL} {name}", _INTERNAL, attrs, links, attempt)
        self._result: Any = None
        self._has_result = False
        self._arguments = arguments

    _before_start = SpanHandle._add_current_agent

    def _on_started(self) -> None:
        if self._arguments is not None:
            self.set_arguments(self._arguments)
            self._arguments = None

    def _set_content(self, key: str, value: Any) -> ToolCall:
        try:
            text = STATE.policy.json(value)
            if text is not None:
                self.span.set_attribute(key, text)
        except Exception as exc:
            _internal.handle(exc, key)
        return self

    def set_arguments(self, arguments: Any) -> ToolCall:
        """Record the call's arguments (``gen_ai.tool.call.arguments``; capture_content only)."""
        return self._set_content(A.TOOL_CALL_ARGUMENTS, arguments)

    def set_result(self, result: Any) -> ToolCall:
        """Record the call's result (``gen_ai.tool.call.result``; capture_content only)."""
        return self._set_content(A.TOOL_CALL_RESULT, result)


def tool_call(
    name: str,
    *,
    arguments: Any = None,
    call_id: str | None = None,
    description: str | None = None,
    tool_type: str = "function",
    uses_output_of: Any = None,
    retry_of: Any = None,
    attempt: int | None = None,
    links: Sequence[Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> ToolCall:
    """Context manager for one tool execution (``execute_tool`` span)."""
    try:
        attrs: dict[str, Any] = {A.OPERATION_NAME: A.OP_EXECUTE_TOOL, A.TOOL_NAME: name, A.TOOL_TYPE: tool_type}
        if call_id is not None:
            attrs[A.TOOL_CALL_ID] = str(call_id)
        if description:
            attrs[A.TOOL_DESCRIPTION] = description
        lk, attempt = _links_and_attempt(links, None, retry_of, uses_output_of, None, attempt)
        return ToolCall(name, _with_user_attrs(attrs, attributes), lk, attempt, arguments)
    except Exception as exc:
        _internal.handle(exc, "tool_call")
        return ToolCall(str(name), {}, [], None)


# -- model calls -----------------------------------------------------------------------------


class ModelCall(SpanHandle):
    """A model call span (``chat {model}``, kind CLIENT)."""

    __slots__ = ("provider", "model", "_input", "_system", "_output_recorded", "_first_chunk", "_texts", "_text_len")

    def __init__(self, name: str, attrs: dict[str, Any], links: list[Any], attempt: int | None):
        super().__init__(name, _CLIENT, attrs, links, attempt)
        self.provider: str = attrs.get(A.PROVIDER_NAME, "")
        self.model: str = attrs.get(A.REQUEST_MODEL, "")
        self._input: Any = None
        self._system: Any = None
        self._output_recorded = False
        self._first_chunk = False
        self._texts: list[str] | None = None
        self._text_len = 0

    _before_start = SpanHandle._add_current_agent

    def _on_started(self) -> None:
        if self._input is not None or self._system is not None:
            self.record_input(self._input, system_instructions=self._system)
            self._input = self._system = None

    def record_input(self, messages: Any = None, *, system_instructions: Any = None) -> ModelCall:
        """Record the prompt (``gen_ai.input.messages``; capture_content only)."""
        try:
            policy = STATE.policy
            if policy.enabled and self.span.is_recording():
                if messages is not None:
                    value = policy.messages(messages, role="user")
                    if value is not None:
                        self.span.set_attribute(A.INPUT_MESSAGES, value)
                if system_instructions is not None:
                    sys_value = (
                        policy.json([{"type": "text", "content": system_instructions}])
                        if isinstance(system_instructions, str)
                        else policy.json(system_instructions)
                    )
                    if sys_value is not None:
                        self.span.set_attribute(A.SYSTEM_INSTRUCTIONS, sys_value)
        except Exception as exc:
            _internal.handle(exc, "record_input")
        return self

    def record_usage(
        self,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read: int | None = None,
        cache_write: int | None = None,
        reasoning: int | None = None,
    ) -> ModelCall:
        """Token usage of this call. Per the GenAI conventions ``input_tokens``
        includes cached tokens and ``output_tokens`` includes reasoning tokens."""
        try:
            span = self.span
            for key, value in (
                (A.USAGE_INPUT_TOKENS, input_tokens),
                (A.USAGE_OUTPUT_TOKENS, output_tokens),
                (A.USAGE_CACHE_READ_INPUT_TOKENS, cache_read),
                (A.USAGE_CACHE_WRITE_INPUT_TOKENS, cache_write),
                (A.USAGE_REASONING_OUTPUT_TOKENS, reasoning),
            ):
                if value is not None:
                    span.set_attribute(key, int(value))
        except Exception as exc:
            _internal.handle(exc, "record_usage")
        return self

    def record_response(
        self,
        model: str | None = None,
        finish_reasons: str | Sequence[str] | None = None,
        output: Any = None,
        id: str | None = None,
    ) -> ModelCall:
        """The served model, finish reasons, response id and (capture_content only) output."""
        try:
            span = self.span
            if model is not None:
                span.set_attribute(A.RESPONSE_MODEL, str(model))
            reasons = _clean_str_list(finish_reasons)
            if reasons:
                span.set_attribute(A.RESPONSE_FINISH_REASONS, reasons)
            if id is not None:
                span.set_attribute(A.RESPONSE_ID, str(id))
            if output is not None:
                self._output_recorded = True
                value = STATE.policy.messages(output, role="assistant", finish_reason=reasons[0] if reasons else None)
                if value is not None:
                    span.set_attribute(A.OUTPUT_MESSAGES, value)
        except Exception as exc:
            _internal.handle(exc, "record_response")
        return self

    # ---- streaming --------------------------------------------------------------
    def _chunk_seen(self) -> None:
        if not self._first_chunk:
            self._first_chunk = True
            self.span.set_attribute(A.RESPONSE_TIME_TO_FIRST_CHUNK, time.monotonic() - self._started_at)

    def stream(self, chunks: Iterable[Any] | AsyncIterable[Any]) -> Any:
        """Wrap a streamed response: the span stays open until the stream is
        exhausted, fails or is closed, even after the ``with`` block ends.

        Records ``gen_ai.response.time_to_first_chunk``; string chunks are
        joined into the output (capture_content only) unless
        :meth:`record_response` was given an output. A stream that is dropped
        without being iterated ends the span when it is garbage collected.
        """
        try:
            self._defer_end = True
            self._texts = []
            is_async = hasattr(chunks, "__aiter__")
            wrapped = self._astream(chunks) if is_async else self._sstream(chunks)  # type: ignore[arg-type]
            end_when_collected(wrapped, self._stream_done)
            return wrapped
        except Exception as exc:
            self._defer_end = False
            _internal.handle(exc, "stream")
            return chunks

    def _stream_done(self, exc: BaseException | None = None) -> None:
        try:
            if self._ended:  # already ended (e.g. by the garbage collector, see stream())
                return
            texts, self._texts = self._texts, None
            if exc is None and texts and not self._output_recorded and STATE.policy.enabled:
                self.record_response(output="".join(texts))
            self._defer_end = False
            self._finish(exc)
        except Exception as err:
            _internal.handle(err, "stream end")

    def _seen(self, chunk: Any) -> None:
        try:
            self._chunk_seen()
            texts = self._texts
            if texts is not None and isinstance(chunk, str) and STATE.policy.enabled:
                # Keep only what the recorded output can show (plus the redaction margin).
                room = STATE.policy.max_length + _STREAM_TEXT_MARGIN - self._text_len
                if room > 0:
                    texts.append(chunk[:room])
                    self._text_len += min(len(chunk), room)
        except Exception as exc:
            _internal.handle(exc, "stream chunk")

    def _sstream(self, chunks: Iterable[Any]) -> Any:
        try:
            for chunk in chunks:
                self._seen(chunk)
                yield chunk
        except BaseException as exc:
            self._stream_done(exc)
            raise
        self._stream_done(None)

    async def _astream(self, chunks: AsyncIterable[Any]) -> Any:
        try:
            async for chunk in chunks:
                self._seen(chunk)
                yield chunk
        except BaseException as exc:
            self._stream_done(exc)
            raise
        self._stream_done(None)


def model_call(
    provider: str,
    model: str,
    *,
    operation: str = A.OP_CHAT,
    input: Any = None,
    system_instructions: Any = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    top_p: float | None = None,
    stream: bool | None = None,
    conversation_id: str | None = None,
    attempt: int | None = None,
    fallback_of: Any = None,
    retry_of: Any = None,
    uses_output_of: Any = None,
    links: Sequence[Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> ModelCall:
    """Context manager for one model call (``chat {model}`` span, kind CLIENT)."""
    try:
        attrs: dict[str, Any] = {
            A.OPERATION_NAME: operation,
            A.PROVIDER_NAME: provider,
            A.REQUEST_MODEL: model,
        }
        for key, value in (
            (A.REQUEST_TEMPERATURE, temperature),
            (A.REQUEST_MAX_TOKENS, max_tokens),
            (A.REQUEST_TOP_P, top_p),
            (A.REQUEST_STREAM, stream),
            (A.CONVERSATION_ID, conversation_id),
        ):
            if value is not None:
                attrs[key] = value
        lk, attempt = _links_and_attempt(links, fallback_of, retry_of, uses_output_of, None, attempt)
        call = ModelCall(f"{operation} {model}", _with_user_attrs(attrs, attributes), lk, attempt)
        call._input = input
        call._system = system_instructions
        return call
    except Exception as exc:
        _internal.handle(exc, "model_call")
        return ModelCall(f"chat {model}", {}, [], None)
