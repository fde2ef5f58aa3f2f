"""Captured prompt/response content: one readable string per direction.

Representation (what `Span.input` / `Span.output` hold):
- a string attribute is kept exactly as sent (GenAI `gen_ai.input.messages` is
  already a JSON string; OpenInference `input.value` may be JSON or plain text);
- a structured attribute (list/dict after OTLP flattening) is JSON-encoded;
- flattened per-message attributes (OpenInference `llm.input_messages.N.message.*`,
  OpenLLMetry `gen_ai.prompt.N.*`) become a JSON list, one object per message in
  index order, keyed by the rest of the attribute path (`role`, `content`,
  `tool_calls.0.tool_call.function.name`, ...);
- old span events (`gen_ai.content.prompt` / `gen_ai.content.completion`) give
  their `gen_ai.prompt` / `gen_ai.completion` attribute.
Sources are tried newest convention first; `gen_ai.system_instructions` is not
folded in (it stays in `attributes`). Content that arrives as GenAI log events
(POST /v1/logs, core/otlp_logs.py) is stored apart and filled in when a span is
read (with_log_content), so it does not matter whether the log or the span came first.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from core import vercel_ai
from core.coerce import to_json
from core.span import Event

# Prefixes of flattened per-message attributes: scanned once per span.
INPUT_MESSAGES = "llm.input_messages."
OUTPUT_MESSAGES = "llm.output_messages."
PROMPT_MESSAGES = "gen_ai.prompt."
COMPLETION_MESSAGES = "gen_ai.completion."
FLAT_PREFIXES = (INPUT_MESSAGES, OUTPUT_MESSAGES, PROMPT_MESSAGES, COMPLETION_MESSAGES)

# Sources in precedence order, newest convention first. An entry that is one of
# FLAT_PREFIXES stands for the flattened messages under that prefix.
_INPUT_SOURCES: tuple[str, ...] = (
    "gen_ai.input.messages",        # OTel GenAI >= 1.37
    "gen_ai.tool.call.arguments",   # OTel GenAI tool spans
    INPUT_MESSAGES,                 # OpenInference, flattened
    "input.value",                  # OpenInference
    PROMPT_MESSAGES,                # OpenLLMetry, flattened
    "traceloop.entity.input",       # OpenLLMetry workflows/tasks/tools
    "tool_arguments",               # pydantic-ai < 1.0 tool spans
    "tool.parameters",              # OpenInference tool definition, last resort
    *vercel_ai.INPUT_KEYS,          # Vercel AI SDK
)
_OUTPUT_SOURCES: tuple[str, ...] = (
    "gen_ai.output.messages",
    "gen_ai.tool.call.result",
    OUTPUT_MESSAGES,
    "output.value",
    COMPLETION_MESSAGES,
    "traceloop.entity.output",
    "tool_response",                # pydantic-ai < 1.0 tool spans
    "final_result",                 # pydantic-ai agent run spans
    *vercel_ai.OUTPUT_KEYS,         # Vercel AI SDK
)
_DIRECT_KEYS = frozenset(_INPUT_SOURCES + _OUTPUT_SOURCES) - frozenset(FLAT_PREFIXES)
_EVENT_SOURCES = {
    "input": ("gen_ai.content.prompt", "gen_ai.prompt"),
    "output": ("gen_ai.content.completion", "gen_ai.completion"),
}
_MAX_MESSAGE_INDEX_DIGITS = 6  # "llm.input_messages.99999999999.x" is garbage


def scan_attributes(
    attributes: Mapping[str, Any], prefixes: tuple[str, ...]
) -> tuple[dict[str, list[tuple[str, Any]]], bool]:
    """One pass over the keys: (suffix, value) pairs per matching prefix, and
    whether any direct content attribute is present (most spans have none, and
    then content extraction can be skipped)."""
    found: dict[str, list[tuple[str, Any]]] = {}
    direct = False
    for key in attributes:
        if key in _DIRECT_KEYS:
            direct = True
        elif type(key) is str and key.startswith(prefixes):
            for prefix in prefixes:
                if key.startswith(prefix):
                    found.setdefault(prefix, []).append((key[len(prefix):], attributes[key]))
                    break
    return found, direct


def extract_content(
    attributes: Mapping[str, Any], flat: Mapping[str, list[tuple[str, Any]]], events: Iterable[Event]
) -> tuple[str | None, str | None]:
    """(input, output) content strings, None where nothing was captured."""
    return (
        _first_content(attributes, flat, _INPUT_SOURCES) or _event_content(events, *_EVENT_SOURCES["input"]),
        _first_content(attributes, flat, _OUTPUT_SOURCES) or _event_content(events, *_EVENT_SOURCES["output"]),
    )


# Logfire's OpenAI Agents integration keeps content under generic names (`input`, `output` on
# tools; `raw_input`, `response` on model calls), read only on Logfire spans.
LOGFIRE_TEMPLATE = "logfire.msg_template"
_LOGFIRE_INPUT = ("input", "raw_input")
_LOGFIRE_OUTPUT = ("output", "response")


def logfire_content(attributes: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(input, output) of a Logfire span from its own attribute names."""
    return _first_content(attributes, {}, _LOGFIRE_INPUT), _first_content(attributes, {}, _LOGFIRE_OUTPUT)


def _first_content(
    attributes: Mapping[str, Any], flat: Mapping[str, list[tuple[str, Any]]], sources: tuple[str, ...]
) -> str | None:
    for source in sources:
        if source in flat:
            text = _messages_json(flat[source])
        else:
            text = _readable(attributes.get(source))
        if text:
            return text
    return None


def _readable(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace") or None
    return to_json(value)


def _messages_json(pairs: list[tuple[str, Any]]) -> str | None:
    """Flattened `N.message.role` / `N.role` pairs as a JSON list of messages."""
    messages: dict[int, dict[str, Any]] = {}
    for suffix, value in pairs:
        index, dot, field = suffix.partition(".")
        if not dot or not field or not index.isdecimal() or len(index) > _MAX_MESSAGE_INDEX_DIGITS:
            continue
        if field.startswith("message."):  # OpenInference nests under "message"
            field = field[len("message."):]
        messages.setdefault(int(index), {})[field] = value
    if not messages:
        return None
    return to_json([messages[i] for i in sorted(messages)])


def _event_content(events: Iterable[Event], event_name: str, attribute: str) -> str | None:
    # Old GenAI conventions (<= 1.27) carried content on span events.
    for event in events:
        if getattr(event, "name", None) == event_name:
            attrs = getattr(event, "attributes", None)
            if isinstance(attrs, Mapping):
                text = _readable(attrs.get(attribute))
                if text:
                    return text
    return None


def with_log_content(
    own_input: str | None, own_output: str | None, records: Iterable[tuple[list | None, list | None]],
) -> tuple[str | None, str | None]:
    """A span's content with what its GenAI log events carried (core/otlp_logs.py) filled in.

    `records` are (input messages, output messages) in time order; each direction is their
    messages concatenated, as one JSON list like the span attributes give. What the span
    itself captured wins: instrumentations that send both carry the same content twice."""
    if own_input is not None and own_output is not None:
        return own_input, own_output
    inputs: list = []
    outputs: list = []
    for messages_in, messages_out in records:
        inputs.extend(messages_in or ())
        outputs.extend(messages_out or ())
    return (own_input if own_input is not None else (to_json(inputs) if inputs else None),
            own_output if own_output is not None else (to_json(outputs) if outputs else None))


# What counts as captured content, for masking (core/masking.py).
CONTENT_KEYS = _DIRECT_KEYS
CONTENT_EVENT_KEYS = frozenset(key for _, key in _EVENT_SOURCES.values())
