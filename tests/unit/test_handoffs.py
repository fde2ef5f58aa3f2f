"""core.handoffs: handoff_from links derived within one export, one table of scenarios."""

from __future__ import annotations

from typing import Any

import pytest

from core.handoffs import derived_handoff_edges, with_handoff_links
from core.normalize import normalize
from core.span import Link, RawSpan, Span

TRACE, OTHER_TRACE = b"\x01" * 16, b"\x09" * 16


def span(sid: int, name: str, attributes: dict[str, Any], start: int, end: int | None = None, *,
         trace: bytes = TRACE, links: tuple[Link, ...] = ()) -> Span:
    return normalize(RawSpan(
        trace_id=trace, span_id=bytes([sid]) * 8, parent_span_id=None, name=name, kind=1, start_ns=start,
        end_ns=end if end is not None else start + 5, status_code=0, status_message="", attributes=attributes,
        events=(), links=links, resource={},
    ))


def agent(sid: int, name: str, start: int, end: int | None = None, **extra: Any) -> Span:
    attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name, **extra.pop("attrs", {})}
    return span(sid, f"invoke_agent {name}", attributes, start, end, **extra)


def handoff(sid: int, source: str | None, target: str | None, start: int, **extra: Any) -> Span:
    attributes = {"gen_ai.operation.name": "handoff"}
    if source:
        attributes["gen_ai.handoff.from_agent"] = source
    if target:
        attributes["gen_ai.handoff.to_agent"] = target
    return span(sid, "handoff", attributes, start, **extra)


def links(spans: list[Span]) -> set[tuple[int, int]]:
    """(receiving span id byte, linked span id byte) of every derived handoff_from link."""
    return {(s.span_id[0], link.span_id[0]) for s in with_handoff_links(spans) for link in s.links
            if link.relation == "handoff_from" and link.attributes.get("causeline.link.derived") is True}


SCENARIOS = {
    "target named": ([agent(1, "Triage", 0, 100), handoff(2, "Triage", "Billing", 50), agent(3, "Billing", 101)],
                     {(3, 2)}),
    "GenAI gen_ai.transfer.* on an execute_tool span": (
        [span(2, "execute_tool transfer_to_billing", {
            "gen_ai.operation.name": "execute_tool", "gen_ai.agent.name": "Triage",
            "gen_ai.transfer.mode": "pass_control", "gen_ai.transfer.target.name": "Billing"}, 50),
         agent(3, "Billing", 101)],
        {(3, 2)}),
    "Logfire names": (
        [span(2, "Handoff: Triage → Billing", {}, 50), agent(3, "Billing", 101)], {(3, 2)}),
    "OpenInference names": (
        [span(2, "handoff to Billing", {"openinference.span.kind": "TOOL", "input.value": "Triage"}, 50),
         agent(3, "Billing", 101, attrs={"graph.node.parent_id": "Triage"})],
        {(3, 2)}),
    "target unknown: the next other agent": (
        [agent(1, "Triage", 0, 100), handoff(2, "Triage", None, 50), agent(3, "Billing", 101)], {(3, 2)}),
    "target unknown: not the handing agent itself": (
        [handoff(2, "Triage", None, 50), agent(3, "Triage", 101)], set()),
    "back and forth: each run takes its own handoff": (
        [agent(1, "A", 0), handoff(2, "A", "B", 10), agent(3, "B", 20), handoff(4, "B", "A", 30),
         agent(5, "A", 40), handoff(6, "A", "B", 50), agent(7, "B", 60)],
        {(3, 2), (5, 4), (7, 6)}),
    "handoff after the agent started is not its cause": (
        [agent(3, "Billing", 10), handoff(2, "Triage", "Billing", 50)], set()),
    "other trace never links": (
        [handoff(2, "Triage", "Billing", 50), agent(3, "Billing", 101, trace=OTHER_TRACE)], set()),
    "wrong target": ([handoff(2, "Triage", "Refunds", 50), agent(3, "Billing", 101)], set()),
    "parent agent must match the handoff's source": (
        [handoff(2, "Sales", "Billing", 50), agent(3, "Billing", 101, attrs={"graph.node.parent_id": "Triage"})],
        set()),
    "parent agent without a handoff span (CrewAI): the parent's run": (
        [agent(1, "Researcher", 0, 40), agent(4, "Researcher", 50, 60),
         agent(3, "Writer", 100, attrs={"graph.node.parent_id": "Researcher"})],
        {(3, 4)}),
    "parent run still running is not taken": (
        [agent(1, "Researcher", 0, 400), agent(3, "Writer", 100, attrs={"graph.node.parent_id": "Researcher"})],
        set()),
    "OpenLLMetry gen_ai.agent.handoff_parent": (
        [agent(1, "Triage", 0, 40), agent(3, "Billing", 100, attrs={"gen_ai.agent.handoff_parent": "Triage"})],
        {(3, 1)}),
    "no handoffs at all": ([agent(1, "A", 0), agent(3, "B", 100)], set()),
    "an SDK handoff_from link is kept, none added": (
        [handoff(2, "Triage", "Billing", 50),
         agent(3, "Billing", 101, links=(Link(TRACE, b"\x02" * 8, {"causeline.link.type": "handoff_from"}),))],
        set()),
}


@pytest.mark.parametrize(("spans", "expected"), SCENARIOS.values(), ids=SCENARIOS.keys())
def test_handoff_links(spans, expected):
    assert links(spans) == expected


def test_spans_without_handoffs_are_returned_unchanged():
    spans = [agent(1, "A", 0), span(2, "chat gpt-4o", {"gen_ai.operation.name": "chat"}, 1)]
    assert all(a is b for a, b in zip(with_handoff_links(spans), spans))


def test_derived_link_is_an_edge_and_keeps_the_sdk_links():
    existing = Link(TRACE, b"\x07" * 8, {"causeline.link.type": "data_from"})
    result = with_handoff_links([handoff(2, "A", "B", 10), agent(3, "B", 20, links=(existing,))])
    assert [link.relation for link in result[1].links] == ["data_from", "handoff_from"]
    assert result[1].links[1].span_id == b"\x02" * 8


# --- read time: the same derivation over stored spans and edges -----------------------------

def test_read_time_edges_link_a_handoff_exported_separately():
    from core.forensics_view import EdgeView, view_of_span

    handoff_span, receiver = handoff(2, "Triage", "Billing", 50), agent(3, "Billing", 101)
    views = [view_of_span(handoff_span), view_of_span(receiver)]  # stored by two exports: no link
    assert derived_handoff_edges(views, []) == [
        EdgeView(TRACE, b"\x03" * 8, "handoff_from", TRACE, b"\x02" * 8)]
    stored = [EdgeView(TRACE, b"\x03" * 8, "handoff_from", TRACE, b"\x02" * 8)]
    assert derived_handoff_edges(views, stored) == []


def test_read_time_edges_skip_a_handoff_already_taken():
    from core.forensics_view import EdgeView, view_of_span

    views = [view_of_span(s) for s in (handoff(2, "A", None, 50), agent(3, "B", 60), agent(4, "C", 70))]
    stored = [EdgeView(TRACE, b"\x03" * 8, "handoff_from", TRACE, b"\x02" * 8)]
    assert derived_handoff_edges(views, stored) == []
