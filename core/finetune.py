"""Fine-tuning examples from captured model calls: one JSON line per distinct prompt/completion.

A model call's stored input and output (any convention Causeline stores: a JSON list of chat
messages with string content or parts, OpenAI choices, or plain text) become chat messages
with plain-text content. Two formats:
- `openai`: exactly OpenAI's chat fine-tuning line, {"messages": [{"role", "content"}, ...]},
  roles system/user/assistant, ending with the assistant's answer;
- `generic`: the same messages plus `prompt` / `completion` text and `metadata` (trace, span,
  model, agent, tokens), for other trainers.
An example is the messages: identical ones (a cached or repeated call) are written once
(`Deduper`). Text is redacted with the project's redaction policy before it is written.
Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable

from core.evaluators import output_text

FORMATS = ("openai", "generic")
ROLES = {"system": "system", "developer": "system", "user": "user", "human": "user", "assistant": "assistant",
         "ai": "assistant", "model": "assistant"}


@dataclass(frozen=True)
class CallContent:
    trace_id: bytes
    span_id: bytes
    input: str | None
    output: str | None
    model: str | None = None
    agent: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [_text(p) for p in content]
        texts = [t for t in texts if t]
        return "\n".join(texts) if texts else None
    if isinstance(content, dict):
        for key in ("content", "text", "message.content"):
            if isinstance(content.get(key), str):
                return content[key]
    return None


def input_messages(text: str | None) -> list[dict[str, str]] | None:
    """The prompt as chat messages (plain text: one user message); None when nothing usable."""
    if text is None or not text.strip():
        return None
    stripped = text.strip()
    value: Any = None
    if stripped[0] in "[{":
        try:
            value = json.loads(stripped)
        except (ValueError, RecursionError):
            value = None
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if not isinstance(value, list) or not value or not all(isinstance(m, dict) for m in value):
        return [{"role": "user", "content": text}]
    messages = []
    for m in value:
        role = ROLES.get(str(m.get("role", m.get("message.role", ""))).lower())
        content = _text(m.get("content", m.get("parts", m.get("message.content"))))
        if role is None or not content:
            continue  # tool results and calls have no place in a plain chat example
        messages.append({"role": role, "content": content})
    return messages if any(m["role"] == "user" for m in messages) else None


def example(call: CallContent, redact: Callable[[str], str] = lambda t: t) -> list[dict[str, str]] | None:
    """The call as chat messages ending with the assistant's answer, redacted; None when it
    has no usable prompt or answer."""
    prompt = input_messages(call.input)
    answer = output_text(call.output)
    if not prompt or answer is None or not answer.strip():
        return None
    messages = [*prompt, {"role": "assistant", "content": answer}]
    return [{"role": m["role"], "content": redact(m["content"])} for m in messages]


def line(call: CallContent, messages: list[dict[str, str]], fmt: str) -> bytes:
    """One JSON Lines record (with its newline)."""
    if fmt == "openai":
        record: dict[str, Any] = {"messages": messages}
    else:
        prompt = "\n\n".join(f"{m['role']}: {m['content']}" for m in messages[:-1])
        record = {"messages": messages, "prompt": prompt, "completion": messages[-1]["content"], "metadata": {
            "trace_id": call.trace_id.hex(), "span_id": call.span_id.hex(), "model": call.model,
            "agent": call.agent, "input_tokens": call.input_tokens, "output_tokens": call.output_tokens}}
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"


class Deduper:
    """Remembers the examples seen (16 bytes of a digest each) and says whether one is new."""

    def __init__(self) -> None:
        self._seen: set[bytes] = set()

    def new(self, messages: list[dict[str, str]]) -> bool:
        key = hashlib.sha256(json.dumps(messages, ensure_ascii=False, sort_keys=True).encode()).digest()[:16]
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


@dataclass
class Preview:
    calls: int = 0  # model calls matching the filters
    examples: int = 0  # distinct usable examples (what an export writes)
    duplicates: int = 0
    unusable: int = 0  # no captured prompt or answer
    input_tokens: int = 0  # of the examples, as the instrumentation reported them
    output_tokens: int = 0

    def count(self, call: CallContent, messages: list | None, new: bool) -> None:
        self.calls += 1
        if messages is None:
            self.unusable += 1
        elif not new:
            self.duplicates += 1
        else:
            self.examples += 1
            self.input_tokens += call.input_tokens or 0
            self.output_tokens += call.output_tokens or 0


def export_lines(calls, fmt: str, redact: Callable[[str], str] = lambda t: t):
    """JSON Lines of the distinct usable examples among `calls` (an iterator: streamed)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    seen = Deduper()
    for call in calls:
        messages = example(call, redact)
        if messages is not None and seen.new(messages):
            yield line(call, messages, fmt)


def preview(calls, redact: Callable[[str], str] = lambda t: t) -> Preview:
    """What export_lines would write, counted (duplicates are judged after redaction, as written)."""
    seen, counts = Deduper(), Preview()
    for call in calls:
        messages = example(call, redact)
        counts.count(call, messages, messages is not None and seen.new(messages))
    return counts
