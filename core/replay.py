"""Replay of a captured model call: the request rebuilt from what was captured. Pure, no I/O.

The captured input (any convention Causeline stores: GenAI `gen_ai.input.messages` with parts,
OpenInference messages, OpenAI-style `{"messages": [...]}` request bodies, plain text) becomes
chat messages with plain-text content by the fine-tuning export's rule (core.finetune.input_messages);
`gen_ai.system_instructions`, kept apart by the GenAI conventions, is put first as the system
message. Tool calls and tool results are left out (an OpenAI-compatible server needs the tool
definitions to accept them), which the caller is told.

A replay is refused, with the reason, when it would not send what the application sent: nothing
was captured, the content was erased (`causeline erase`), or it carries redaction placeholders
or truncation markers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from core.erasure import ERASED_ATTR
from core.finetune import input_messages

MAX_MODELS = 8
# What redaction (core/redaction.py, the SDK's) and truncation leave in captured text.
REDACTION_MARKERS = ("[REDACTED_", "[REDACTED:", "…[truncated ")


class ReplayRefused(ValueError):
    """Why this call cannot be replayed (shown to the person who asked)."""


@dataclass(frozen=True)
class ReplayRequest:
    messages: list[dict[str, str]]
    max_tokens: int
    dropped_parts: bool  # tool calls or results were left out


def parse_models(text: str) -> list[str]:
    """CAUSELINE_REPLAY_MODELS: comma-separated model names, de-duplicated, at most MAX_MODELS."""
    seen: list[str] = []
    for name in (text or "").split(","):
        name = name.strip()
        if name and name not in seen:
            seen.append(name)
    return seen[:MAX_MODELS]


def _system_text(value: Any) -> str | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value.strip() or None
    if isinstance(value, list):
        texts = [p.get("content") or p.get("text") for p in value if isinstance(p, dict)]
        texts = [t for t in texts if isinstance(t, str) and t]
        return "\n".join(texts) or None
    return None


def _has_tool_parts(text: str) -> bool:
    return any(marker in text for marker in ('"tool_call"', '"tool_call_response"', '"tool_calls"', '"role": "tool"',
                                             '"role":"tool"'))


def replay_request(input_text: str | None, attributes: Mapping[str, Any] | None,
                   default_max_tokens: int = 1024) -> ReplayRequest:
    """The messages to send again; raises ReplayRefused."""
    attributes = attributes or {}
    if attributes.get(ERASED_ATTR):
        raise ReplayRefused("this call's content was erased (causeline erase): there is nothing to replay")
    system = _system_text(attributes.get("gen_ai.system_instructions"))
    if input_text is None or not input_text.strip():
        raise ReplayRefused("the prompt of this call was not captured (content capture was off for it)")
    for text in (input_text, system or ""):
        found = next((m for m in REDACTION_MARKERS if m in text), None)
        if found is not None:
            what = "truncated" if "truncated" in found else "redacted"
            raise ReplayRefused(f"the captured prompt was {what} ({found.strip()}…): a replay would not send what the "
                                "application sent")
    messages = input_messages(input_text)
    if not messages:
        raise ReplayRefused("the captured prompt has no user message to send")
    if system and not any(m["role"] == "system" for m in messages):
        messages = [{"role": "system", "content": system}, *messages]
    max_tokens = attributes.get("gen_ai.request.max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 0 < max_tokens <= 32_768:
        max_tokens = default_max_tokens
    return ReplayRequest(messages, max_tokens, _has_tool_parts(input_text))
