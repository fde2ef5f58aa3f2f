"""How captured input/output text is shown: chat messages by role, JSON pretty-printed, else as is.

Content arrives as text from many instrumentations: a JSON list of chat messages
({"role", "content"}, content a string or a list of parts), any other JSON, or plain text.
Pure: no I/O, no HTML (the template escapes)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Message:
    role: str
    text: str


@dataclass(frozen=True)
class Display:
    kind: str  # "messages" | "json" | "text"
    text: str = ""
    messages: tuple[Message, ...] = ()


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, dict):
        for key in ("text", "content"):
            if isinstance(part.get(key), str):
                return part[key]
    return json.dumps(part, indent=2, ensure_ascii=False, sort_keys=True)


def _message(item: dict) -> Message:
    content = item.get("content", item.get("parts"))
    if isinstance(content, list):
        text = "\n".join(_part_text(p) for p in content)
    elif content is None:
        rest = {k: v for k, v in item.items() if k != "role"}
        text = json.dumps(rest, indent=2, ensure_ascii=False, sort_keys=True) if rest else ""
    else:
        text = _part_text(content)
    return Message(str(item.get("role") or "?"), text)


def display(text: str | None) -> Display | None:
    if text is None:
        return None
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return Display("text", text)
    try:
        value = json.loads(stripped)
    except ValueError:
        return Display("text", text)
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        return Display("messages", messages=tuple(_message(m) for m in value))
    return Display("json", json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


PREVIEW_CHARS = 140


def preview(text: str | None, limit: int = PREVIEW_CHARS) -> str:
    """One line telling a run's input apart: the first user message of a chat (else the first
    message), or the text itself; whitespace collapsed, cut to `limit` characters with "…"."""
    shown = display(text)
    if shown is None:
        return ""
    if shown.kind == "messages":
        user = [m for m in shown.messages if m.role in ("user", "human")]
        line = (user or list(shown.messages))[0].text
    else:
        line = shown.text
    line = " ".join(line.split())
    return line if len(line) <= limit else line[:limit - 1].rstrip() + "…"
