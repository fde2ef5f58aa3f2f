"""Handoffs: one agent passing control to another, read from every source's representation,
and the `handoff_from` links derived from them. Pure, no I/O.

A handoff span is a tool span that says it hands off (tables below); it names the source
agent and, when the source knows it, the target. Third-party sources never link the
receiving agent run to the handoff, so Causeline derives that link: `with_handoff_links` at
ingest within one export, `derived_handoff_edges` at read time over a whole trace (the
handoff and the agent run it starts usually end, and so are exported, seconds apart). The receiving agent span (category agent, same trace, started no earlier than the
handoff) gets a `handoff_from` link to the latest earlier handoff that names it as target,
or, when the handoff does not name its target (OpenLLMetry sends "unknown"), to the latest
earlier handoff from another agent. Each handoff is taken by one agent span. An agent span
that names the agent it took over from (OpenInference `graph.node.parent_id`, OpenLLMetry
`gen_ai.agent.handoff_parent`) only takes a handoff from that agent; when there is no
handoff span at all (CrewAI sends none), the link goes to that agent's latest span that
ended before this one started. Spans that already carry a handoff_from link (the Causeline
SDK sets it) are left alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, NamedTuple, Sequence

from core.coerce import as_str, first_str
from core.forensics_view import EdgeView
from core.span import Link, Span

HANDOFF_FROM = "handoff_from"
LINK_TYPE = "causeline.link.type"
DERIVED = "causeline.link.derived"  # marks a link Causeline derived, not one the source sent

# gen_ai.operation.name values of handoff spans: OTel contrib bridge, OpenLLMetry.
HANDOFF_OPERATIONS = frozenset({"agent_handoff", "handoff"})
TARGET_KEYS = ("gen_ai.transfer.target.name", "gen_ai.handoff.to_agent", "to_agent")
SOURCE_KEYS = ("gen_ai.handoff.from_agent", "from_agent")
# Any of these makes a tool span a handoff.
MARKER_KEYS = ("gen_ai.transfer.target.name", "gen_ai.transfer.mode", "gen_ai.handoff.to_agent",
               "gen_ai.handoff.from_agent")
# On an agent span: the agent it took over from.
PARENT_AGENT_KEYS = ("graph.node.parent_id", "gen_ai.agent.handoff_parent")

_LOGFIRE_PREFIX = "Handoff:"           # Logfire "Handoff: a → b" (template "Handoff: {from_agent} → {to_agent}")
_OPENINFERENCE_PREFIX = "handoff to "  # OpenInference "handoff to b" (input.value a, output.value b)
_OPENLLMETRY_SUFFIX = ".handoff"       # OpenLLMetry "a → b.handoff", b may be "unknown"
_UNKNOWN = "unknown"


class Handoff(NamedTuple):
    source: str | None
    target: str | None


def handoff(attributes: Mapping[str, Any], operation: str | None, name: str, category: str) -> Handoff | None:
    """The handoff a span stands for, or None when it is not a handoff span."""
    if category != "tool":
        return None
    named_source = named_target = None
    if name.startswith(_LOGFIRE_PREFIX):
        if "{" not in name:  # the template form names no one
            named_source, named_target = _arrow(name[len(_LOGFIRE_PREFIX):])
    elif name.startswith(_OPENINFERENCE_PREFIX):
        named_target = as_str(name[len(_OPENINFERENCE_PREFIX):])
        named_source = as_str(attributes.get("input.value"))
    elif name.endswith(_OPENLLMETRY_SUFFIX) and "→" in name:
        named_source, named_target = _arrow(name[: -len(_OPENLLMETRY_SUFFIX)])
    elif not (
        operation in HANDOFF_OPERATIONS
        or any(key in attributes for key in MARKER_KEYS)
        or as_str(attributes.get("traceloop.span.kind")) == "handoff"
    ):
        return None
    return Handoff(
        _known(first_str(attributes, SOURCE_KEYS) or named_source),
        _known(first_str(attributes, TARGET_KEYS) or named_target),
    )


def _arrow(text: str) -> tuple[str | None, str | None]:
    source, arrow, target = text.partition("→")
    return (as_str(source), as_str(target)) if arrow else (None, None)


def _known(name: str | None) -> str | None:
    return None if name == _UNKNOWN else name


# --- links -----------------------------------------------------------------------------

def with_handoff_links(spans: Sequence[Span]) -> list[Span]:
    """`spans` (one export) with a derived handoff_from link added to each receiving agent span."""
    traces: dict[bytes, list[int]] = {}
    for index, span in enumerate(spans):
        if span.category in ("tool", "agent"):
            traces.setdefault(span.trace_id, []).append(index)
    result = list(spans)
    for indexes in traces.values():
        members = [spans[i] for i in indexes]
        for index, source in _receivers(members, _has_handoff_link, set()).items():
            span = members[index]
            link = Link(source.trace_id, source.span_id, {LINK_TYPE: HANDOFF_FROM, DERIVED: True})
            result[indexes[index]] = dataclasses.replace(span, links=(*span.links, link))
    return result


def derived_handoff_edges(spans: Sequence[Any], edges: Sequence[Any]) -> list[EdgeView]:
    """The same derivation over stored spans (core.forensics_view.SpanView) and edges, at read
    time: a handoff and its receiving agent run are usually exported in different requests, so
    the ingest-time links miss them. Agent spans with a stored handoff_from edge, and handoffs
    already taken by one, are left alone."""
    stored = [e for e in edges if e.relation == HANDOFF_FROM]
    receivers = {(e.trace_id, e.span_id) for e in stored}
    taken = {e.linked_span_id for e in stored}
    traces: dict[bytes, list[Any]] = {}
    for span in spans:
        if span.category in ("tool", "agent"):
            traces.setdefault(span.trace_id, []).append(span)
    derived = []
    for members in traces.values():
        for index, source in _receivers(members, lambda s: (s.trace_id, s.span_id) in receivers, taken).items():
            agent = members[index]
            derived.append(EdgeView(agent.trace_id, agent.span_id, HANDOFF_FROM, source.trace_id, source.span_id))
    return derived


def _receivers(spans: list[Any], linked: Callable[[Any], bool], taken: set[bytes]) -> dict[int, Any]:
    """Position in `spans` (tool and agent spans of one trace) → the span its link goes to."""
    handoffs = []
    for span in spans:
        found = handoff(span.attributes, _operation(span.attributes), span.name, span.category)
        if found is not None:
            handoffs.append((span, found))
    agents = sorted(
        (i for i, s in enumerate(spans) if s.category == "agent" and not linked(s)),
        key=lambda i: (spans[i].start_ns, spans[i].span_id),
    )
    if not agents or not (handoffs or any(_parent_agent(spans[i]) for i in agents)):
        return {}
    taken = set(taken)
    found_links: dict[int, Any] = {}
    for i in agents:
        agent = spans[i]
        parent = _parent_agent(agent)
        best = None
        for candidate, (source, target) in handoffs:
            if candidate.span_id in taken or candidate.start_ns > agent.start_ns:
                continue
            if target is not None and target != agent.agent_name:
                continue
            if target is None and (source is None or source == agent.agent_name):
                continue
            if parent is not None and source is not None and source != parent:
                continue
            if best is None or (candidate.start_ns, candidate.span_id) > (best.start_ns, best.span_id):
                best = candidate
        if best is not None:
            taken.add(best.span_id)
        elif parent is not None:
            best = _latest_run_of(spans, parent, agent)
        if best is not None:
            found_links[i] = best
    return found_links


def _latest_run_of(spans: list[Any], agent_name: str, after: Any) -> Any | None:
    runs = [s for s in spans if s.category == "agent" and s.agent_name == agent_name
            and s.span_id != after.span_id and s.end_ns <= after.start_ns]
    return max(runs, key=lambda s: (s.end_ns, s.span_id), default=None)


def _operation(attributes: Any) -> str | None:
    sent = as_str(attributes.get("gen_ai.operation.name")) if isinstance(attributes, Mapping) else None
    return sent.lower() if sent else None


def _parent_agent(span: Any) -> str | None:
    attributes = span.attributes if isinstance(span.attributes, Mapping) else {}
    parent = first_str(attributes, PARENT_AGENT_KEYS)
    return parent if parent != span.agent_name else None


def _has_handoff_link(span: Span) -> bool:
    return any(link.relation == HANDOFF_FROM for link in span.links)
