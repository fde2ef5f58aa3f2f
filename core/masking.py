"""Masking captured content for readers without the `read_content` permission (viewers).

A viewer sees runs, timings, costs and errors, but not what users and models said. Content
travels in `input`/`output`, in content attributes of every convention (core/content.py
lists the sources), and in content events; all of them are replaced by one marker.
"""

from __future__ import annotations

from typing import Any

from core.content import CONTENT_EVENT_KEYS, CONTENT_KEYS, FLAT_PREFIXES

MASK = "[masked: your role cannot read captured content]"

# Content that core/content.py does not fold into input/output but that is content all the same.
_EXTRA_KEYS = frozenset({
    "gen_ai.system_instructions", "llm.prompts", "llm.prompt_template.template",
    "llm.prompt_template.variables", "gen_ai.tool.definitions", "logfire.msg", "prompt", "all_messages_events",
    "events", "input", "output", "pydantic_ai.all_messages", "gen_ai.response.text", "mlflow.spanInputs",
    "mlflow.spanOutputs", "lmnr.span.input", "lmnr.span.output",
    "gen_ai.evaluation.explanation",  # an evaluator's reasons may quote the prompt (docs/evaluation.md)
})
_EXTRA_PREFIXES = ("retrieval.documents.", "reranker.", "embedding.embeddings.", "llm.prompts.",
                   "gen_ai.request.messages", "gen_ai.response.messages", "message.")
_CONTENT_EVENT_PREFIXES = ("gen_ai.content.", "gen_ai.user.", "gen_ai.system.", "gen_ai.assistant.",
                           "gen_ai.tool.message", "gen_ai.choice", "gen_ai.client.inference.operation.details")


def is_content_attribute(key: str) -> bool:
    return (key in CONTENT_KEYS or key in _EXTRA_KEYS or key in CONTENT_EVENT_KEYS
            or key.startswith(FLAT_PREFIXES) or key.startswith(_EXTRA_PREFIXES))


def is_content_event(name: str) -> bool:
    """Events that are content as a whole (a message, a choice): all their attributes are content."""
    return name.startswith(_CONTENT_EVENT_PREFIXES)


def mask_attributes(attributes: dict[str, Any] | None) -> dict[str, Any]:
    return {k: (MASK if is_content_attribute(k) else v) for k, v in (attributes or {}).items()}


def mask_events(events: list | None) -> list:
    """Events keep their name and time; content events lose all attributes, others their content ones."""
    masked = []
    for event in events or []:
        if not isinstance(event, dict):
            masked.append(MASK)
            continue
        name = str(event.get("name") or "")
        attributes = event.get("attributes")
        if is_content_event(name):
            attributes = {"content": MASK} if attributes else attributes
        elif isinstance(attributes, dict):
            attributes = mask_attributes(attributes)
        masked.append({**event, "attributes": attributes})
    return masked


def mask_text(value: str | None) -> str | None:
    return None if value is None else MASK
