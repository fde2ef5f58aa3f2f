"""Routing decisions, guardrails, handoffs and typed links (ARCHITECTURE.md section 6)."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from sdk_helpers import HOST_PROVIDER, link_types, parent_id

import causeline
from causeline import _internal


def test_routing_decision_span_with_chosen_child(rec):
    with causeline.agent_run("router-agent"):
        with causeline.routing_decision(
            "model-router", candidates=["gpt-4o", "claude-sonnet-4-5"], policy="cost-then-latency"
        ) as route:
            route.choose("gpt-4o", reason="cheapest healthy candidate")
            with causeline.model_call("openai", route.chosen):
                pass
    span = rec.one("route model-router")
    a = span.attributes
    assert a["gen_ai.operation.name"] == "route"
    assert a["causeline.route.router"] == "model-router"
    assert tuple(a["causeline.route.candidates"]) == ("gpt-4o", "claude-sonnet-4-5")
    assert a["causeline.route.chosen"] == "gpt-4o"
    assert a["causeline.route.reason"] == "cheapest healthy candidate"
    assert a["causeline.route.policy"] == "cost-then-latency"
    assert a["gen_ai.agent.name"] == "router-agent"
    assert parent_id(rec.one("chat gpt-4o")) == span.context.span_id


def test_routing_decision_known_up_front_and_linked_later(rec):
    with causeline.routing_decision("r", ["a", "b"], chosen="b", reason="a is down", policy="availability") as d:
        pass
    with causeline.model_call("openai", "b", links=[causeline.caused_by(d)]):
        pass
    route = rec.one("route r")
    assert route.attributes["causeline.route.chosen"] == "b"
    assert link_types(rec.one("chat b")) == [("caused_by", route.context.span_id)]


def test_guardrail_passed_blocked_default_and_exception(rec):
    with causeline.guardrail("pii") as g:
        g.passed()
    with causeline.guardrail("json-schema") as g:
        g.blocked("output is not valid JSON", action="retry")
    with causeline.guardrail("length"):
        pass
    with pytest.raises(ValueError):
        with causeline.guardrail("validator"):
            raise ValueError("missing field 'total'")

    ok = rec.one("apply_guardrail pii").attributes
    assert ok["gen_ai.operation.name"] == "apply_guardrail"
    assert ok["causeline.guardrail.name"] == "pii"
    assert ok["causeline.guardrail.passed"] is True
    assert ok["causeline.guardrail.action"] == "allow"

    blocked = rec.one("apply_guardrail json-schema")
    assert blocked.attributes["causeline.guardrail.passed"] is False
    assert blocked.attributes["causeline.guardrail.action"] == "retry"
    assert blocked.attributes["error.type"] == "guardrail_blocked"
    assert blocked.status.status_code == StatusCode.ERROR
    assert blocked.status.description == "output is not valid JSON"

    default = rec.one("apply_guardrail length").attributes
    assert default["causeline.guardrail.passed"] is True

    raised = rec.one("apply_guardrail validator")
    assert raised.attributes["causeline.guardrail.passed"] is False
    assert raised.attributes["causeline.guardrail.action"] == "block"
    assert raised.attributes["error.type"] == "ValueError"
    assert raised.status.status_code == StatusCode.ERROR


def test_handoff_links_receiving_agent(rec):
    @causeline.agent("billing")
    def billing():
        return "refunded"

    with causeline.agent_run("triage"):
        with causeline.handoff("billing", mode="pass_control") as h:
            assert billing() == "refunded"
    triage = rec.one("invoke_agent triage")
    hand = rec.one("execute_tool transfer_to_billing")
    target = rec.one("invoke_agent billing")
    a = hand.attributes
    assert a["gen_ai.operation.name"] == "execute_tool"
    assert a["gen_ai.tool.name"] == "transfer_to_billing"
    assert a["gen_ai.transfer.mode"] == "pass_control"
    assert a["gen_ai.transfer.target.name"] == "billing"
    assert a["gen_ai.transfer.target.type"] == "agent"
    assert a["gen_ai.agent.name"] == "triage"  # the source agent
    assert parent_id(hand) == triage.context.span_id
    assert link_types(target) == [("handoff_from", hand.context.span_id)]
    assert h.to_agent == "billing"


def test_handoff_link_only_on_first_agent_inside(rec):
    with causeline.handoff("planner"):
        with causeline.agent_run("planner"):
            with causeline.agent_run("sub-agent"):
                pass
    assert link_types(rec.one("invoke_agent planner"))[0][0] == "handoff_from"
    assert link_types(rec.one("invoke_agent sub-agent")) == []


def test_handoff_to_agent_started_after_the_block(rec):
    with causeline.agent_run("triage"):
        with causeline.handoff("refunds", mode="return_to_caller") as h:
            pass
    with causeline.agent_run("refunds", handoff_from=h):
        pass
    hand = rec.one("execute_tool transfer_to_refunds")
    assert hand.attributes["gen_ai.transfer.mode"] == "return_to_caller"
    assert link_types(rec.one("invoke_agent refunds")) == [("handoff_from", hand.context.span_id)]
    # h.link() is the same thing as a LinkSpec
    assert h.link().type == "handoff_from"


def test_uses_output_of_and_link_helpers(rec):
    with causeline.step("retrieve") as retrieve:
        pass
    with causeline.step("rank") as rank:
        pass
    with causeline.step_run("answer", uses_output_of=[retrieve, rank]):
        pass
    with causeline.tool_call("summarize", links=[causeline.uses_output_of(retrieve), causeline.follows(rank)]):
        pass
    r_id = rec.one("invoke_workflow retrieve").context.span_id
    k_id = rec.one("invoke_workflow rank").context.span_id
    assert link_types(rec.one("invoke_workflow answer")) == [("data_from", r_id), ("data_from", k_id)]
    assert link_types(rec.one("execute_tool summarize")) == [("data_from", r_id), ("follows", k_id)]


def test_link_targets_can_be_otel_spans_contexts_and_current_span(rec):
    tracer = HOST_PROVIDER.get_tracer("app")
    with tracer.start_as_current_span("app-span") as app_span:
        here = causeline.current_span()
    with causeline.step("s", links=[causeline.uses_output_of(app_span), causeline.link(here.span_context)]):
        pass
    app_id = app_span.get_span_context().span_id
    assert link_types(rec.one("invoke_workflow s")) == [("data_from", app_id), (None, app_id)]


def test_add_link_after_start(rec):
    with causeline.step("early") as early:
        pass
    with causeline.step("late") as late:
        late.add_link(causeline.retry(of=early))
        causeline.add_link(causeline.caused_by(early))
    span = rec.one("invoke_workflow late")
    early_id = rec.one("invoke_workflow early").context.span_id
    assert link_types(span) == [("retry_of", early_id), ("caused_by", early_id)]
    assert span.attributes["causeline.attempt"] == 2


def test_invalid_links_are_skipped(rec):
    with causeline.step("x", links=[None, trace.INVALID_SPAN, causeline.uses_output_of(None)]):
        pass
    assert rec.one("invoke_workflow x").links == ()


def test_unknown_link_type_is_an_sdk_error_not_a_crash(rec):
    with pytest.raises(ValueError):  # tests surface internal errors...
        causeline.link(trace.INVALID_SPAN, "bogus")
    _internal.clear_errors()
    _internal.raise_internal_errors = False  # ...the host never sees them
    spec = causeline.link(trace.INVALID_SPAN, "bogus")
    assert spec.type == "bogus"
    assert _internal.error_count() == 1
    _internal.clear_errors()


def test_link_helper_attempt_defaults():
    span = trace.INVALID_SPAN
    assert causeline.fallback(of=span).attempt == 2
    assert causeline.retry(of=span, attempt=4).attempt == 4
    assert causeline.uses_output_of(span).attempt is None


@pytest.mark.parametrize(
    ("make", "span_name"),
    [
        (lambda: causeline.routing_decision("r", ["a"]), "route r"),
        (lambda: causeline.guardrail("g"), "apply_guardrail g"),
        (lambda: causeline.handoff("next"), "execute_tool transfer_to_next"),
        (lambda: causeline.agent_run("a"), "invoke_agent a"),
        (lambda: causeline.step_run("s"), "invoke_workflow s"),
        (lambda: causeline.tool_call("t"), "execute_tool t"),
        (lambda: causeline.model_call("p", "m"), "chat m"),
    ],
)
def test_every_context_manager_async_and_with_exceptions(rec, make, span_name):
    class Boom(Exception):
        pass

    async def main():
        async with causeline.agent_run("outer") as outer:
            with pytest.raises(Boom):
                async with make():
                    await asyncio.sleep(0)
                    raise Boom("x")
            async with make():
                await asyncio.sleep(0)
        return outer

    outer = asyncio.run(main())
    spans = rec.named(span_name)
    assert len(spans) == 2
    failed, ok = sorted(spans, key=lambda s: s.start_time)
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.attributes["error.type"].endswith("Boom")
    assert ok.status.status_code == StatusCode.UNSET
    assert all(parent_id(s) == outer.span.get_span_context().span_id for s in spans)


def test_handoff_link_goes_only_to_the_first_of_sibling_agents(rec):
    with causeline.handoff("billing"):
        with causeline.agent_run("billing"):
            pass
        with causeline.agent_run("audit"):
            pass
    assert [t for t, _ in link_types(rec.one("invoke_agent billing"))] == ["handoff_from"]
    assert link_types(rec.one("invoke_agent audit")) == []
