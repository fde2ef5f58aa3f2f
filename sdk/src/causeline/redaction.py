"""Content capture policy: redaction first, then truncation.

Prompt, completion, tool argument and tool result text is recorded only when
``capture_content=True``. Every string then passes through the built-in
patterns (e-mail addresses, API keys/tokens, payment card numbers) and the
user's callables, in that order, and is truncated to ``max_content_length``
characters with a visible marker. A redactor that raises drops the whole value
(fail closed).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from . import _internal

TRUNCATION_MARKER = "…[truncated {} chars]"
EMAIL_PLACEHOLDER = "[REDACTED_EMAIL]"
API_KEY_PLACEHOLDER = "[REDACTED_API_KEY]"
CARD_PLACEHOLDER = "[REDACTED_CARD]"

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")

# Well-known key shapes, then "key=..." / "Bearer ..." assignments.
API_KEY_RE = re.compile(
    r"""
    (?:
        \bsk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_\-]{16,}      # OpenAI / Anthropic / Stripe style
      | \b(?:rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}               # Stripe restricted/publishable
      | \bAKIA[0-9A-Z]{16}\b                                      # AWS access key id
      | \bAIza[0-9A-Za-z_\-]{35}                                  # Google API key
      | \bgh[pousr]_[A-Za-z0-9]{36,}                              # GitHub tokens
      | \bgithub_pat_[A-Za-z0-9_]{22,}
      | \bxox[abposr]-[A-Za-z0-9\-]{10,}                          # Slack tokens
      | \bhf_[A-Za-z0-9]{30,}                                     # Hugging Face
      | \bcl_(?:live|test)_[A-Za-z0-9_\-]{16,}                    # Causeline ingest keys
      | \beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}  # JWT
    )
    """,
    re.VERBOSE,
)
ASSIGNMENT_RE = re.compile(
    r"(?i)\b((?:api[_\-]?key|secret(?:[_\-]?key)?|access[_\-]?token|auth[_\-]?token|password|passwd)"
    r"\"?\s*[:=]\s*\"?)([^\s\"',;]{6,})"
)
BEARER_RE = re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9._~+/\-]{12,}=*)")
CARD_RE = re.compile(r"(?<![\d\-])(?:\d[ \-]?){12,18}\d(?![\d\-])")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_sub(match: re.Match[str]) -> str:
    digits = re.sub(r"[ \-]", "", match.group(0))
    if 13 <= len(digits) <= 19 and _luhn_ok(digits):
        return CARD_PLACEHOLDER
    return match.group(0)


def redact_builtin(text: str) -> str:
    """Apply the built-in patterns to one string."""
    if "@" in text:
        text = EMAIL_RE.sub(EMAIL_PLACEHOLDER, text)
    text = API_KEY_RE.sub(API_KEY_PLACEHOLDER, text)
    text = BEARER_RE.sub(lambda m: m.group(1) + API_KEY_PLACEHOLDER, text)
    text = ASSIGNMENT_RE.sub(lambda m: m.group(1) + API_KEY_PLACEHOLDER, text)
    text = CARD_RE.sub(_card_sub, text)
    return text


class _RedactionFailed(Exception):
    pass


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + TRUNCATION_MARKER.format(len(text) - limit)


class ContentPolicy:
    """Decides whether content is recorded and cleans it when it is."""

    __slots__ = ("enabled", "max_length", "redactors", "builtin")

    def __init__(
        self,
        enabled: bool = False,
        max_length: int = 4096,
        redactors: Iterable[Callable[[str], str]] = (),
        builtin: bool = True,
    ) -> None:
        self.enabled = enabled
        self.max_length = max_length
        self.redactors = tuple(redactors)
        self.builtin = builtin

    # -- strings --------------------------------------------------------
    def _clean(self, text: str, limit: int | None = None) -> str:
        if self.builtin:
            text = redact_builtin(text)
        for fn in self.redactors:
            try:
                out = fn(text)
            except Exception as exc:  # a user redactor failed: drop the value (fail closed)
                raise _RedactionFailed(repr(fn)) from exc
            if not isinstance(out, str):
                raise _RedactionFailed(f"redactor {fn!r} returned {type(out).__name__}, not str")
            text = out
        return truncate(text, self.max_length if limit is None else limit)

    def redact_text(self, text: str, limit: int | None = None) -> str | None:
        """Redact and truncate ``text`` regardless of ``enabled`` (used for error messages)."""
        try:
            return self._clean(text, limit)
        except _RedactionFailed as exc:
            _internal.warn_once("redactor", "causeline: a redactor failed (%s); value dropped", exc)
            return None

    def text(self, value: Any) -> str | None:
        """A captured text value, or None when capture is off or redaction failed."""
        if not self.enabled or value is None:
            return None
        return self.redact_text(value if isinstance(value, str) else _to_text(value))

    # -- structured values ---------------------------------------------
    def _walk(self, obj: Any, depth: int) -> Any:
        if isinstance(obj, str):
            return self._clean(obj)
        if obj is None or isinstance(obj, (bool, int, float)):
            return obj
        if depth > 12:
            return self._clean(_to_text(obj))
        if isinstance(obj, dict):
            return {str(k): self._walk(v, depth + 1) for k, v in list(obj.items())[:500]}
        if isinstance(obj, (list, tuple, set, frozenset)):
            items = list(obj)
            out = [self._walk(v, depth + 1) for v in items[:500]]
            if len(items) > 500:
                out.append(TRUNCATION_MARKER.format(f"{len(items) - 500} items"))
            return out
        if isinstance(obj, (bytes, bytearray)):
            return f"<{len(obj)} bytes>"
        dumped = _plain(obj)
        if dumped is not obj:
            return self._walk(dumped, depth + 1)
        return self._clean(_to_text(obj))

    def json(self, value: Any) -> str | None:
        """``value`` as redacted, truncated JSON (a plain string stays a plain string)."""
        if not self.enabled:
            return None
        try:
            if isinstance(value, str):
                return self._clean(value)
            cleaned = self._walk(value, 0)
            text = json.dumps(cleaned, ensure_ascii=False, default=str, separators=(",", ":"))
            return truncate(text, self.max_length * 8)
        except _RedactionFailed as exc:
            _internal.warn_once("redactor", "causeline: a redactor failed (%s); value dropped", exc)
            return None

    def messages(self, value: Any, role: str = "user", finish_reason: str | None = None) -> str | None:
        """GenAI ``gen_ai.input.messages``/``gen_ai.output.messages`` JSON for ``value``."""
        if not self.enabled or value is None:
            return None
        return self.json(to_messages(value, role, finish_reason))


def _plain(obj: Any) -> Any:
    """Best effort conversion of model objects (pydantic, dataclasses) to plain data."""
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        try:
            return dump()
        except Exception:
            return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        try:
            return dataclasses.asdict(obj)
        except Exception:
            return obj
    return obj


def _to_text(value: Any) -> str:
    try:
        return value if isinstance(value, str) else repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def _text_part(content: Any) -> dict[str, Any]:
    return {"type": "text", "content": content}


def _message(msg: Any, role: str) -> dict[str, Any]:
    msg = _plain(msg)
    if isinstance(msg, str):
        return {"role": role, "parts": [_text_part(msg)]}
    if not isinstance(msg, dict):
        return {"role": role, "parts": [_text_part(_to_text(msg))]}
    if "parts" in msg:  # already in GenAI form
        return dict(msg)
    out: dict[str, Any] = {"role": msg.get("role", role)}
    parts: list[Any] = []
    content = msg.get("content")
    if isinstance(content, str):
        parts.append(_text_part(content))
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                parts.append(_text_part(part.get("text", part.get("content"))))
            else:
                parts.append(part)
    elif content is not None:
        parts.append(_text_part(_to_text(content)))
    for call in msg.get("tool_calls") or ():
        call = _plain(call)
        if isinstance(call, dict):
            fn = call.get("function") or {}
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.get("id"),
                    "name": fn.get("name", call.get("name")),
                    "arguments": fn.get("arguments", call.get("arguments")),
                }
            )
    if out["role"] == "tool" and "tool_call_id" in msg:
        parts = [{"type": "tool_call_response", "id": msg["tool_call_id"], "response": content}]
    out["parts"] = parts
    if "finish_reason" in msg:
        out["finish_reason"] = msg["finish_reason"]
    return out


def to_messages(value: Any, role: str = "user", finish_reason: str | None = None) -> list[dict[str, Any]]:
    """Normalize a string, an OpenAI-style message list or GenAI messages to GenAI messages."""
    value = _plain(value)
    items = value if isinstance(value, (list, tuple)) else [value]
    msgs = [_message(m, role) for m in items]
    if finish_reason is not None:
        for m in msgs:
            m.setdefault("finish_reason", finish_reason)
    return msgs
