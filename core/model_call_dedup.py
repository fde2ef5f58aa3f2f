"""One model call recorded by two instrumentations is counted once. Pure, no I/O.

Stacked instrumentations record one call twice: the Anthropic client's own GenAI span under
OpenInference's or OpenLLMetry's, the OpenAI Agents SDK's response span around the OpenAI
client's span, two exporters in one process. Both spans are kept (each shows what its library
saw); `duplicates()` says which of them do not count, and ingest (db/ingest.py) keeps tokens,
cost and call counts of every rollup in line with it.

The rule, over the spans of ONE trace (model calls are `core.span.is_model_call`):
- same response id: two model calls carrying the same non-empty response id (RESPONSE_ID_KEYS)
  are one call, wherever they sit in the trace (siblings, separate exporters);
- nested: a model call and its nearest model-call ancestor are one call when both are of the same
  category (llm/llm, embedding/embedding) and every span between them has arrived and is neither
  an agent nor a tool (CHAIN_BREAKERS: a sub-agent or a tool run inside a model call makes calls
  of its own). A missing span in between breaks the chain until it arrives;
- never: two model calls whose response ids are both known and differ (distinct answers), not
  even through a third span linked to both.
Linked calls form groups (transitively). In each group one span counts (the winner); every other
span is a duplicate of it. The winner is the span that carries usage (token counts), then the
one reporting more kinds of tokens, then a priced one, then the smallest span id: a function of
the group alone, so the outcome never depends on the order the spans arrived in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from core.span import Attributes, Tokens, is_model_call

# Where instrumentations put the provider's id of the answer: the GenAI conventions (OpenLLMetry,
# Logfire, the Anthropic and OpenAI clients' own spans) and the Vercel AI SDK.
RESPONSE_ID_KEYS = ("gen_ai.response.id", "ai.response.id")
# Categories that start work of their own: a model call below one is never a duplicate of a model
# call above it.
CHAIN_BREAKERS = frozenset({"agent", "tool"})
# Why a span does not count (spans.duplicate_reason).
SAME_RESPONSE_ID = "same_response_id"
NESTED = "nested"
REASONS = (SAME_RESPONSE_ID, NESTED)
_MAX_RESPONSE_ID = 512  # longer values are not ids
# What the trace page and the API say of a span that does not count.
NOT_COUNTED = "same model call recorded by two instrumentations"
REASON_TEXT = {SAME_RESPONSE_ID: "same response id", NESTED: "one span inside the other"}


def not_counted_note(reason: str | None) -> str:
    detail = REASON_TEXT.get(reason or "")
    return f"{NOT_COUNTED} ({detail})" if detail else NOT_COUNTED


def response_id(attributes: Attributes) -> str | None:
    for key in RESPONSE_ID_KEYS:
        value = attributes.get(key)
        if isinstance(value, str):
            value = value.strip()
            if value and len(value) <= _MAX_RESPONSE_ID:
                return value
    return None


def usage_kinds(tokens: Tokens) -> int:
    """How many kinds of token counts a span reports (0: no usage)."""
    return sum(v is not None for v in (tokens.input, tokens.output, tokens.cache_read, tokens.cache_write,
                                       tokens.reasoning))


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the rule reads of one span of the trace (every span, model call or not: the nested
    rule walks through the others)."""

    span_id: bytes
    parent_span_id: bytes | None
    category: str
    response_id: str | None = None
    usage_kinds: int = 0  # usage_kinds(tokens)
    priced: bool = False  # has a cost (not unpriced)


@dataclass(frozen=True, slots=True)
class Duplicate:
    of: bytes  # the span that counts
    reason: str  # SAME_RESPONSE_ID or NESTED


def _rank(span: CallFacts) -> tuple:
    # Sorted ascending: the first is the winner.
    return (span.usage_kinds == 0, -span.usage_kinds, not span.priced, span.span_id)


def nested_in(span: CallFacts, by_id: Mapping[bytes, CallFacts]) -> CallFacts | None:
    """The model call `span` is nested in under the rule above, or None."""
    seen = {span.span_id}
    parent_id = span.parent_span_id
    while parent_id is not None and parent_id not in seen:
        parent = by_id.get(parent_id)
        if parent is None:
            return None  # not arrived (yet): the chain is broken
        if is_model_call(parent.category):
            return parent if parent.category == span.category else None
        if parent.category in CHAIN_BREAKERS:
            return None
        seen.add(parent_id)
        parent_id = parent.parent_span_id
    return None


def duplicates(spans: Iterable[CallFacts]) -> dict[bytes, Duplicate]:
    """The model calls of one trace that do not count: span id -> the span that does, and why."""
    by_id: dict[bytes, CallFacts] = {}
    for span in spans:
        by_id.setdefault(span.span_id, span)
    calls = sorted((s for s in by_id.values() if is_model_call(s.category)), key=lambda s: s.span_id)
    if len(calls) < 2:
        return {}
    # Candidate links, in a fixed order (so conflicts resolve the same way whatever the arrival order).
    links: list[tuple[bytes, bytes]] = []
    first_with_id: dict[str, bytes] = {}
    for call in calls:
        if call.response_id is not None:
            other = first_with_id.setdefault(call.response_id, call.span_id)
            if other != call.span_id:
                links.append((other, call.span_id))
        outer = nested_in(call, by_id)
        if outer is not None:
            links.append(tuple(sorted((outer.span_id, call.span_id))))
    if not links:
        return {}
    links.sort()
    # Union-find whose groups remember their response id: never join two different ids.
    root: dict[bytes, bytes] = {c.span_id: c.span_id for c in calls}
    group_id: dict[bytes, str | None] = {c.span_id: c.response_id for c in calls}

    def find(x: bytes) -> bytes:
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    for a, b in links:
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        ida, idb = group_id[ra], group_id[rb]
        if ida is not None and idb is not None and ida != idb:
            continue
        keep, gone = min(ra, rb), max(ra, rb)
        root[gone] = keep
        group_id[keep] = ida if ida is not None else idb
    groups: dict[bytes, list[CallFacts]] = {}
    for call in calls:
        groups.setdefault(find(call.span_id), []).append(call)
    result: dict[bytes, Duplicate] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        winner = min(members, key=_rank)
        for span in members:
            if span is not winner:
                same = span.response_id is not None and span.response_id == winner.response_id
                result[span.span_id] = Duplicate(winner.span_id, SAME_RESPONSE_ID if same else NESTED)
    return result
