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
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

from . import _internal

TRUNCATION_MARKER = "…[truncated {} chars]"
ITEMS_MARKER = "…[truncated {} items]"  # the last item of a cut list; a cut dict gets the key "…"
EMAIL_PLACEHOLDER = "[REDACTED_EMAIL]"
API_KEY_PLACEHOLDER = "[REDACTED_API_KEY]"
CARD_PLACEHOLDER = "[REDACTED_CARD]"

# Every pattern runs in linear time: repetitions are bounded, and matches may
# start only at the beginning of a run of the characters they consume, so a
# failed attempt never rescans a long run from each of its positions (an
# unbounded ``[...]+@`` took seconds on 40k characters of "aaaa...@").
EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,8}\.[A-Za-z]{2,24}"
)

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
      | (?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}  # JWT
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


_CUT_MARGIN = 2048  # characters kept past the limit, so secrets crossing it are still seen whole
_CUT_EDGE = 1024  # characters never kept from the end of a cut value (a secret split by the cut)
_MAX_ITEMS = 500  # items per list/dict in structured content
_MAX_KEY_LENGTH = 256
_MIN_STRING = 16
_encode_str = json.encoder.encode_basestring  # the exact JSON form of a string (ensure_ascii=False)


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
        if limit is None:
            limit = self.max_length
        # Cut before redacting: the patterns and the user's redactors only ever
        # see ``limit + _CUT_MARGIN`` characters, however long the value is.
        dropped = len(text) - (limit + _CUT_MARGIN)
        if dropped > 0:
            text = text[: limit + _CUT_MARGIN]
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
        if dropped <= 0:
            return truncate(text, limit)
        # The cut may have split a secret so that its remaining start no longer
        # matches a pattern; it is the unredacted tail of ``text``: never keep it.
        keep = max(0, min(limit, len(text) - _CUT_EDGE))
        return text[:keep] + TRUNCATION_MARKER.format(len(text) - keep + dropped)

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
    def _walk(self, obj: Any, depth: int, budget: list[int]) -> Any:
        """Plain, redacted data for ``obj``; ``budget[0]`` is the JSON size still
        available: once spent, remaining items are dropped (a marker item says
        how many), so the JSON is always complete and the walk stays bounded."""
        if isinstance(obj, str):
            text = self._clean(obj, min(self.max_length, max(budget[0], _MIN_STRING)))
            budget[0] -= len(_encode_str(text))
            return text
        if obj is None or isinstance(obj, bool):
            budget[0] -= 5
            return obj
        if isinstance(obj, int):
            if obj.bit_length() > 128:  # huge ints: str() may even refuse them
                return self._walk(f"<{obj.bit_length()}-bit int>", depth, budget)
            budget[0] -= len(repr(obj))
            return obj
        if isinstance(obj, float):
            budget[0] -= len(repr(obj))
            return obj if math.isfinite(obj) else str(obj)  # NaN/Infinity are not JSON
        if depth > 12:
            return self._walk(_to_text(obj), depth, budget)
        if isinstance(obj, dict):
            budget[0] -= 2
            out: dict[str, Any] = {}
            for i, (k, v) in enumerate(obj.items()):
                if i >= _MAX_ITEMS or budget[0] <= 0:
                    out["…"] = ITEMS_MARKER.format(len(obj) - i)
                    break
                key = self._clean(k if isinstance(k, str) else _to_text(k), _MAX_KEY_LENGTH)
                budget[0] -= len(_encode_str(key)) + 2
                out[key] = self._walk(v, depth + 1, budget)
            return out
        if isinstance(obj, (list, tuple, set, frozenset)):
            budget[0] -= 2
            items: list[Any] = []
            for i, v in enumerate(obj):
                if i >= _MAX_ITEMS or budget[0] <= 0:
                    items.append(ITEMS_MARKER.format(len(obj) - i))
                    break
                budget[0] -= 1
                items.append(self._walk(v, depth + 1, budget))
            return items
        if isinstance(obj, (bytes, bytearray)):
            return self._walk(f"<{len(obj)} bytes>", depth, budget)
        dumped = _plain(obj)
        if dumped is not obj:
            return self._walk(dumped, depth + 1, budget)
        return self._walk(_to_text(obj), depth, budget)

    def json(self, value: Any) -> str | None:
        """``value`` as redacted JSON of about ``8 * max_length`` characters at
        most (a plain string stays a plain string, cut at ``max_length``)."""
        if not self.enabled:
            return None
        try:
            if isinstance(value, str):
                return self._clean(value)
            cleaned = self._walk(value, 0, [self.max_length * 8])
            return json.dumps(cleaned, ensure_ascii=False, default=str, separators=(",", ":"))
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
