"""Logfire (pydantic's OTel SDK, and its OpenAI Agents integration): what its spans mean beyond
their names. Recorded from logfire 5.4 (tests/fixtures/sources/logfire-*.json).

- The OTLP span name is the message *template* ("Agent run: {name!r}"); the rendered text is
  `logfire.msg` ("Agent run: 'Triage'"). The template classifies, the rendered text is shown.
- A failed OpenAI Agents span gets no status and no exception event: the SDK's SpanError is
  the `error` attribute, JSON {"message": ..., "data": {...}}, and the span level is raised to
  error (`logfire.level_num` 17).
- `gen_ai.usage.raw` is the provider's usage object as JSON: the only place reasoning tokens
  (and, for Chat Completions, cache reads) are sent.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from core.coerce import as_count, as_str

MESSAGE = "logfire.msg"
ERROR = "error"
LEVEL = "logfire.level_num"
ERROR_LEVEL = 17  # logfire's numbering: warn 13, error 17, fatal 21
USAGE_RAW = "gen_ai.usage.raw"
# The OpenAI Agents integration's own span type. Tasks and turns are wrappers (a run's steps),
# not work of their own: classified as workflow, so a failed model call explains its agent.
SDK_SPAN_TYPE = "sdk_span_type"
SDK_SPAN_TYPES: dict[str, tuple[str, str | None]] = {"task": ("workflow", None), "turn": ("workflow", None)}
NAME_MAX_CHARS = 1000  # a rendered message may embed arguments; the name is a label

# (Tokens slot, path in the raw usage object): Responses API, then Chat Completions names.
_RAW_USAGE_PATHS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (2, ("input_tokens_details", "cached_tokens")),
    (2, ("prompt_tokens_details", "cached_tokens")),
    (3, ("input_tokens_details", "cache_write_tokens")),
    (4, ("output_tokens_details", "reasoning_tokens")),
    (4, ("completion_tokens_details", "reasoning_tokens")),
)


def rendered_name(attributes: Mapping[str, Any], name: str) -> str | None:
    """The rendered message when the span name is a Logfire template, else None."""
    if "{" not in name:
        return None
    message = as_str(attributes.get(MESSAGE))
    if message is None:
        return None
    if len(message) > NAME_MAX_CHARS:
        return f"{message[:NAME_MAX_CHARS]}…[truncated {len(message) - NAME_MAX_CHARS} chars]"
    return message


def error_message(attributes: Mapping[str, Any]) -> str | None:
    """The OpenAI Agents SpanError Logfire recorded, as one line of text; None if there is none.

    Only the documented shape counts (an object with a "message"): a bare `error` attribute
    from other code says nothing we can read safely."""
    value = attributes.get(ERROR)
    if isinstance(value, str):
        if not value.startswith("{"):
            return None
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return None
    if not isinstance(value, Mapping):
        return None
    message = as_str(value.get("message"))
    if message is None:
        return None
    data = value.get("data")
    detail = as_str(data.get("error")) if isinstance(data, Mapping) else None
    return f"{message}: {detail}" if detail else message


def level_is_error(attributes: Mapping[str, Any]) -> bool:
    level = attributes.get(LEVEL)
    count = as_count(level) if level is not None else None
    return count is not None and count >= ERROR_LEVEL


def raw_usage(attributes: Mapping[str, Any], counts: list[int | None]) -> None:
    """Fill the still-missing cache and reasoning slots of `counts` from gen_ai.usage.raw."""
    value = attributes.get(USAGE_RAW)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return
    if not isinstance(value, Mapping):
        return
    for slot, (outer, inner) in _RAW_USAGE_PATHS:
        if counts[slot] is None:
            details = value.get(outer)
            if isinstance(details, Mapping) and details.get(inner) is not None:
                counts[slot] = as_count(details.get(inner))
