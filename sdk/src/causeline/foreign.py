"""Content gating for spans from other instrumentations.

Causeline's own spans are built with the content policy applied. Spans made by
other instrumentations (OpenAI, Anthropic, ...) may carry prompts and
completions: at export time their content attributes and events are removed
(capture off) or redacted (capture on), on a copy; the application's own
exporters still get the original span.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan

from . import attributes as A
from .redaction import ContentPolicy


# Spans that are nothing but a raw request/response dump: every attribute is content
# (litellm's child of litellm_request: llm.<provider>.messages, .choices, ...).
RAW_CONTENT_SPAN_NAMES = frozenset({"raw_gen_ai_request"})


def _is_content_key(key: str) -> bool:
    return key in A.CONTENT_KEYS or key.startswith(A.CONTENT_KEY_PREFIXES)


def _clean_value(value: Any, policy: ContentPolicy) -> Any:
    if isinstance(value, str):
        stripped = value.lstrip()
        if stripped[:1] in ("[", "{"):
            try:
                return policy.json(json.loads(value))
            except ValueError:
                pass
        return policy.redact_text(value)
    if isinstance(value, (list, tuple)):
        out = [_clean_value(v, policy) if isinstance(v, str) else v for v in value]
        return None if any(v is None for v in out) else tuple(out)
    return value


def _clean_attrs(attrs: Any, policy: ContentPolicy, all_keys: bool = False) -> tuple[dict[str, Any], bool]:
    changed = False
    out: dict[str, Any] = {}
    for key, value in (attrs or {}).items():
        if all_keys or _is_content_key(key):
            changed = True
            if not policy.enabled:
                continue
            value = _clean_value(value, policy)
            if value is None:
                continue
        out[key] = value
    return out, changed


def filter_foreign_span(span: ReadableSpan, policy: ContentPolicy) -> ReadableSpan | None:
    """A copy of ``span`` with content removed (capture off) or redacted (capture on);
    None when the span carries no content (use it unchanged)."""
    attrs, changed = _clean_attrs(span.attributes, policy, all_keys=span.name in RAW_CONTENT_SPAN_NAMES)
    events: list[Event] = []
    for ev in span.events:
        content_event = ev.name in A.CONTENT_EVENT_NAMES
        ev_attrs, ev_changed = _clean_attrs(ev.attributes, policy, all_keys=content_event)
        if content_event and not policy.enabled:
            changed = True
            continue
        if ev_changed:
            changed = True
            events.append(Event(ev.name, ev_attrs, ev.timestamp))
        else:
            events.append(ev)
    if not changed:
        return None
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attrs,
        events=events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
