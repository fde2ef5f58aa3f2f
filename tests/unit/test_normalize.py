"""core.normalize: one table of cases per telemetry convention family."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.normalize import _normalize, normalize, step_name
from core.span import CATEGORIES, ERROR_CLASSES, STATUSES, Event, RawSpan, Span, Tokens


def raw(
    attributes: dict[str, Any] | None = None,
    *,
    name: str = "span",
    status_code: int = 0,
    status_message: str = "",
    events: tuple[Event, ...] = (),
    resource: dict[str, Any] | None = None,
) -> RawSpan:
    return RawSpan(
        trace_id=b"\x01" * 16, span_id=b"\x02" * 8, parent_span_id=None, name=name, kind=1,
        start_ns=1_000, end_ns=2_000, status_code=status_code, status_message=status_message,
        attributes=attributes or {}, events=events, links=(), resource=resource or {},
    )


def exception(exc_type: str | None = None, message: str | None = None) -> Event:
    attrs = {k: v for k, v in (("exception.type", exc_type), ("exception.message", message)) if v is not None}
    return Event(name="exception", time_ns=1_500, attributes=attrs)


def check(span: Span, expected: dict[str, Any]) -> None:
    actual = {field: getattr(span, field) for field in expected}
    assert actual == expected


def run_table(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    kwargs, expected = case
    check(normalize(raw(**kwargs)), expected)


# --- OTel GenAI, current names ------------------------------------------------

OTEL_GENAI = {
    "chat": (
        dict(name="chat gpt-4o", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30,
            "gen_ai.conversation.id": "conv-1", "gen_ai.agent.name": "triage",
        }, resource={"service.name": "support-bot"}),
        dict(category="llm", operation="chat", provider="openai", request_model="gpt-4o",
             response_model="gpt-4o-2024-08-06", tokens=Tokens(input=120, output=30), session_id="conv-1",
             agent_name="triage", service_name="support-bot", status="unset", error_class=None),
    ),
    "text_completion": (dict(attributes={"gen_ai.operation.name": "text_completion"}), dict(category="llm")),
    "generate_content": (dict(attributes={"gen_ai.operation.name": "generate_content"}), dict(category="llm")),
    "embeddings": (
        dict(attributes={"gen_ai.operation.name": "embeddings", "gen_ai.usage.input_tokens": 8}),
        dict(category="embedding", operation="embeddings", tokens=Tokens(input=8)),
    ),
    "retrieval": (dict(attributes={"gen_ai.operation.name": "retrieval"}), dict(category="retrieval")),
    "execute_tool": (
        dict(name="execute_tool get_weather", attributes={
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
            "gen_ai.tool.call.id": "call_1", "gen_ai.tool.call.arguments": '{"city": "Paris"}',
            "gen_ai.tool.call.result": '{"temp": 21}',
        }),
        dict(category="tool", operation="execute_tool", tool_name="get_weather",
             input='{"city": "Paris"}', output='{"temp": 21}'),
    ),
    "tool name from span name": (
        dict(name="execute_tool lookup", attributes={"gen_ai.operation.name": "execute_tool"}),
        dict(category="tool", tool_name="lookup"),
    ),
    "invoke_agent drops agent-level usage": (
        dict(name="invoke_agent planner", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner",
            "gen_ai.usage.input_tokens": 900, "gen_ai.usage.output_tokens": 300,
        }),
        dict(category="agent", operation="invoke_agent", agent_name="planner", tokens=Tokens()),
    ),
    "agent name from span name": (
        dict(name="invoke_agent Researcher", attributes={"gen_ai.operation.name": "invoke_agent"}),
        dict(agent_name="Researcher"),
    ),
    "create_agent": (dict(attributes={"gen_ai.operation.name": "create_agent"}), dict(category="agent")),
    "invoke_workflow": (
        dict(attributes={"gen_ai.operation.name": "invoke_workflow", "gen_ai.usage.input_tokens": 5}),
        dict(category="workflow", tokens=Tokens()),
    ),
    "plan": (dict(attributes={"gen_ai.operation.name": "plan"}), dict(category="routing")),
    "operation is case-folded": (
        dict(attributes={"gen_ai.operation.name": " Chat "}), dict(category="llm", operation="chat"),
    ),
    "unknown operation kept, category falls through": (
        dict(name="chat gpt-4o", attributes={"gen_ai.operation.name": "summarize"}),
        dict(category="llm", operation="summarize"),
    ),
    "messages kept as sent": (
        dict(attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]',
            "gen_ai.output.messages": '[{"role": "assistant", "parts": [{"type": "text", "content": "yo"}]}]',
            "gen_ai.system_instructions": '[{"type": "text", "content": "be brief"}]',
        }),
        dict(input='[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]',
             output='[{"role": "assistant", "parts": [{"type": "text", "content": "yo"}]}]'),
    ),
    "span name only": (dict(name="chat claude-sonnet-4"), dict(category="llm", operation="chat")),
    "bare generic word is not an operation": (dict(name="chat"), dict(category="other", operation=None)),
    "bare underscore operation is": (dict(name="execute_tool"), dict(category="tool", operation="execute_tool")),
    "no convention at all": (
        dict(name="GET /health", attributes={"http.request.method": "GET"}),
        dict(category="other", operation=None, provider=None, tokens=Tokens(), input=None, output=None),
    ),
}


@pytest.mark.parametrize("case", OTEL_GENAI.values(), ids=OTEL_GENAI.keys())
def test_otel_genai(case):
    run_table(case)


# --- OTel GenAI, old names ----------------------------------------------------

OTEL_GENAI_OLD = {
    "gen_ai.system and prompt/completion tokens": (
        dict(name="chat gpt-4", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4",
            "gen_ai.usage.prompt_tokens": 11, "gen_ai.usage.completion_tokens": 7,
        }),
        dict(category="llm", provider="openai", tokens=Tokens(input=11, output=7)),
    ),
    "content on span events": (
        dict(attributes={"gen_ai.system": "openai"}, name="chat gpt-4", events=(
            Event("gen_ai.content.prompt", 1, {"gen_ai.prompt": '[{"role": "user", "content": "hi"}]'}),
            Event("gen_ai.content.completion", 2, {"gen_ai.completion": '[{"role": "assistant", "content": "yo"}]'}),
        )),
        dict(input='[{"role": "user", "content": "hi"}]', output='[{"role": "assistant", "content": "yo"}]'),
    ),
    "old http.status_code": (
        dict(attributes={"gen_ai.operation.name": "chat", "http.status_code": 429}),
        dict(status="error", error_class="rate_limited"),
    ),
}


@pytest.mark.parametrize("case", OTEL_GENAI_OLD.values(), ids=OTEL_GENAI_OLD.keys())
def test_otel_genai_old_names(case):
    run_table(case)


# --- OpenInference ----------------------------------------------------------------

OPENINFERENCE = {
    "LLM": (
        dict(name="ChatCompletion", attributes={
            "openinference.span.kind": "LLM", "llm.provider": "openai", "llm.system": "openai",
            "llm.model_name": "gpt-4o-mini", "llm.token_count.prompt": 50, "llm.token_count.completion": 5,
            "llm.token_count.prompt_details.cache_read": 32, "llm.token_count.completion_details.reasoning": 2,
            "llm.cost.total": 0.00042, "session.id": "s-9", "user.id": "u-1",
            "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": "be brief",
            "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": "hi",
            "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": "yo",
            "input.value": '{"messages": "raw request"}',
        }),
        dict(category="llm", operation="chat", provider="openai", request_model="gpt-4o-mini",
             tokens=Tokens(input=50, output=5, cache_read=32, reasoning=2),
             reported_cost_usd=Decimal("0.00042"), session_id="s-9", user_id="u-1",
             input=json.dumps([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]),
             output=json.dumps([{"role": "assistant", "content": "yo"}])),
    ),
    "EMBEDDING": (dict(attributes={"openinference.span.kind": "EMBEDDING"}), dict(category="embedding")),
    "CHAIN": (
        dict(attributes={"openinference.span.kind": "CHAIN", "input.value": "question?", "output.value": "answer"}),
        dict(category="workflow", input="question?", output="answer"),
    ),
    "RETRIEVER": (dict(attributes={"openinference.span.kind": "RETRIEVER"}), dict(category="retrieval")),
    "RERANKER": (dict(attributes={"openinference.span.kind": "RERANKER"}), dict(category="retrieval")),
    "TOOL": (
        dict(attributes={"openinference.span.kind": "TOOL", "tool.name": "search", "input.value": '{"q": 1}'}),
        dict(category="tool", operation="execute_tool", tool_name="search", input='{"q": 1}'),
    ),
    "AGENT": (
        dict(attributes={"openinference.span.kind": "AGENT", "agent.name": "writer", "llm.token_count.prompt": 9}),
        dict(category="agent", agent_name="writer", tokens=Tokens()),
    ),
    "GUARDRAIL": (dict(attributes={"openinference.span.kind": "GUARDRAIL"}), dict(category="guardrail")),
    "EVALUATOR": (dict(attributes={"openinference.span.kind": "EVALUATOR"}), dict(category="guardrail")),
    "PROMPT": (dict(attributes={"openinference.span.kind": "PROMPT"}), dict(category="other")),
    "UNKNOWN falls through to the span name": (
        dict(name="chat gpt-4o", attributes={"openinference.span.kind": "UNKNOWN"}), dict(category="llm"),
    ),
    "kind is case-insensitive": (dict(attributes={"openinference.span.kind": "llm"}), dict(category="llm")),
    "flattened tool calls keep their path": (
        dict(attributes={
            "openinference.span.kind": "LLM",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "search",
        }),
        dict(output=json.dumps([{"role": "assistant", "tool_calls.0.tool_call.function.name": "search"}])),
    ),
    "request model name": (
        dict(attributes={"openinference.span.kind": "LLM", "llm.request.model_name": "m-req",
                         "llm.response.model_name": "m-resp"}),
        dict(request_model="m-req", response_model="m-resp"),
    ),
    "cache write": (
        dict(attributes={"openinference.span.kind": "LLM", "llm.token_count.prompt_details.cache_write": 4}),
        dict(tokens=Tokens(cache_write=4)),
    ),
}


@pytest.mark.parametrize("case", OPENINFERENCE.values(), ids=OPENINFERENCE.keys())
def test_openinference(case):
    run_table(case)


# --- OpenLLMetry / Traceloop ----------------------------------------------------

OPENLLMETRY = {
    "chat": (
        dict(name="openai.chat", attributes={
            "llm.request.type": "chat", "gen_ai.system": "OpenAI", "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-05-13", "gen_ai.usage.prompt_tokens": 20,
            "gen_ai.usage.completion_tokens": 4, "gen_ai.usage.cache_read_input_tokens": 10,
            "gen_ai.usage.cache_creation_input_tokens": 6,
            "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "hi",
            "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "yo",
            "gen_ai.completion.0.finish_reason": "stop",
            "traceloop.association.properties.session_id": "sess", "traceloop.association.properties.user_id": "bob",
        }),
        dict(category="llm", operation="chat", provider="openai", request_model="gpt-4o",
             tokens=Tokens(input=20, output=4, cache_read=10, cache_write=6), session_id="sess", user_id="bob",
             input=json.dumps([{"role": "user", "content": "hi"}]),
             output=json.dumps([{"role": "assistant", "content": "yo", "finish_reason": "stop"}])),
    ),
    "completion": (dict(attributes={"llm.request.type": "completion"}), dict(category="llm", operation="text_completion")),
    "embedding": (dict(attributes={"llm.request.type": "embedding"}), dict(category="embedding")),
    "rerank": (dict(attributes={"llm.request.type": "rerank"}), dict(category="retrieval")),
    "workflow": (
        dict(name="pipeline.workflow", attributes={
            "traceloop.span.kind": "workflow", "traceloop.entity.name": "pipeline",
            "traceloop.entity.input": '{"args": [1]}', "traceloop.entity.output": '"done"',
        }),
        dict(category="workflow", input='{"args": [1]}', output='"done"'),
    ),
    "task": (dict(attributes={"traceloop.span.kind": "task"}), dict(category="workflow", operation=None)),
    "agent": (
        dict(attributes={"traceloop.span.kind": "agent", "traceloop.entity.name": "joker"}),
        dict(category="agent", agent_name="joker"),
    ),
    "tool": (
        dict(attributes={"traceloop.span.kind": "tool", "traceloop.entity.name": "calc"}),
        dict(category="tool", tool_name="calc"),
    ),
    "finish reason from the flattened completion": (
        dict(attributes={"llm.request.type": "chat", "gen_ai.completion.0.finish_reason": "content_filter"},
             status_code=2),
        dict(status="error", error_class="content_filtered"),
    ),
}


@pytest.mark.parametrize("case", OPENLLMETRY.values(), ids=OPENLLMETRY.keys())
def test_openllmetry(case):
    run_table(case)


# --- pydantic-ai and Logfire --------------------------------------------------

PYDANTIC_AI = {
    "agent run with aggregated usage has no tokens": (
        dict(name="agent run", attributes={
            "agent_name": "support", "model_name": "gpt-4o",
            "gen_ai.aggregated_usage.input_tokens": 500, "gen_ai.aggregated_usage.output_tokens": 80,
            "final_result": "All done",
        }),
        dict(category="agent", operation="invoke_agent", agent_name="support", tokens=Tokens(),
             reported_cost_usd=None, output="All done"),
    ),
    "invoke_agent with plain usage names still has no tokens": (
        dict(name="invoke_agent support", attributes={
            "gen_ai.agent.name": "support", "gen_ai.usage.input_tokens": 500, "gen_ai.usage.output_tokens": 80,
        }),
        dict(category="agent", agent_name="support", tokens=Tokens()),
    ),
    "aggregated usage alone is never read": (
        dict(name="chat gpt-4o", attributes={"gen_ai.aggregated_usage.input_tokens": 500}),
        dict(category="llm", tokens=Tokens()),
    ),
    "model request with operation.cost": (
        dict(name="chat gpt-4o", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10, "operation.cost": 0.00035,
        }),
        dict(category="llm", tokens=Tokens(input=100, output=10), reported_cost_usd=Decimal("0.00035")),
    ),
    "running tool (v1)": (
        dict(name="running tool", attributes={
            "gen_ai.tool.name": "roll_dice", "tool_arguments": '{"n": 2}', "tool_response": "7",
            "logfire.msg": "running tool: roll_dice",
        }),
        dict(category="tool", operation="execute_tool", tool_name="roll_dice", input='{"n": 2}', output="7"),
    ),
    "execute_tool (v2+)": (
        dict(name="execute_tool roll_dice", attributes={
            "gen_ai.tool.name": "roll_dice", "gen_ai.tool.call.arguments": '{"n": 2}', "gen_ai.tool.call.result": "7",
        }),
        dict(category="tool", tool_name="roll_dice", input='{"n": 2}', output="7"),
    ),
    "Logfire agent run template": (
        dict(name="Agent run: {name!r}", attributes={"name": "Triage", "gen_ai.system": "openai"}),
        dict(category="agent", agent_name="Triage"),
    ),
    "Logfire agent run formatted": (
        dict(name="Agent run: 'Triage'"), dict(category="agent", agent_name="Triage"),
    ),
    "Logfire function": (
        dict(name="Function: {name}", attributes={"name": "get_weather"}), dict(category="tool", tool_name="get_weather"),
    ),
    "Logfire handoff template": (
        dict(name="Handoff: {from_agent} → {to_agent}", attributes={"from_agent": "Triage", "to_agent": "Billing"}),
        dict(category="tool", tool_name="Billing", agent_name="Triage"),
    ),
    "Logfire handoff formatted": (
        dict(name="Handoff: Triage → Billing"), dict(category="tool", tool_name="Billing", agent_name="Triage"),
    ),
    "Logfire responses": (
        dict(name="Responses API with {gen_ai.request.model!r}", attributes={
            "gen_ai.request.model": "gpt-4.1", "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 1,
        }),
        dict(category="llm", operation="chat", request_model="gpt-4.1", tokens=Tokens(input=3, output=1)),
    ),
    "Logfire chat completion": (
        dict(name="Chat Completion with {request_data[model]!r}"), dict(category="llm"),
    ),
    "Logfire embedding": (dict(name="Embedding Creation with {request_data[model]!r}"), dict(category="embedding")),
    "Logfire guardrail triggered": (
        dict(name="Guardrail {name!r} {triggered=}", attributes={"name": "no_pii", "triggered": True}),
        dict(category="guardrail", status="error", error_class="guardrail_blocked"),
    ),
    "Logfire guardrail not triggered": (
        dict(name="Guardrail {name!r} {triggered=}", attributes={"name": "no_pii", "triggered": False}),
        dict(category="guardrail", status="unset", error_class=None),
    ),
    "Logfire trace": (dict(name="OpenAI Agents trace: {name}"), dict(category="workflow")),
}


@pytest.mark.parametrize("case", PYDANTIC_AI.values(), ids=PYDANTIC_AI.keys())
def test_pydantic_ai_and_logfire(case):
    run_table(case)


# --- OpenAI Agents bridges (OTel contrib and others) ---------------------------

OPENAI_AGENTS = {
    "agent_handoff operation": (
        dict(name="agent_handoff", attributes={
            "gen_ai.operation.name": "agent_handoff", "gen_ai.handoff.from_agent": "Triage",
            "gen_ai.handoff.to_agent": "Refunds",
        }),
        dict(category="tool", operation="agent_handoff", tool_name="Refunds", agent_name="Triage"),
    ),
    "guardrail_check operation": (
        dict(attributes={"gen_ai.operation.name": "guardrail_check", "gen_ai.guardrail.name": "jailbreak"}),
        dict(category="guardrail", status="unset"),
    ),
    "guardrail tripwire triggered": (
        dict(attributes={"gen_ai.operation.name": "guardrail_check", "gen_ai.guardrail.triggered": True}),
        dict(category="guardrail", status="error", error_class="guardrail_blocked"),
    ),
    "response operation": (
        dict(attributes={"gen_ai.operation.name": "response", "gen_ai.provider.name": "openai"}),
        dict(category="llm", provider="openai"),
    ),
    "invoke_agent with name only in the span name": (
        dict(name="invoke_agent Triage Agent"), dict(category="agent", agent_name="Triage Agent"),
    ),
    "tripwire exception": (
        dict(attributes={"gen_ai.operation.name": "invoke_agent"}, status_code=2,
             events=(exception("agents.exceptions.InputGuardrailTripwireTriggered", "Guardrail tripwire"),)),
        dict(status="error", error_type="agents.exceptions.InputGuardrailTripwireTriggered",
             error_class="guardrail_blocked"),
    ),
}


@pytest.mark.parametrize("case", OPENAI_AGENTS.values(), ids=OPENAI_AGENTS.keys())
def test_openai_agents(case):
    run_table(case)


# --- Causeline's own attributes ------------------------------------------------

CAUSELINE = {
    "routing decision": (
        dict(name="route", attributes={
            "gen_ai.operation.name": "route", "causeline.route.candidates": ["gpt-4o", "claude-sonnet-4"],
            "causeline.route.chosen": "gpt-4o", "causeline.route.reason": "cheapest",
        }),
        dict(category="routing", operation="route", status="unset"),
    ),
    "guardrail passed": (
        dict(attributes={"gen_ai.operation.name": "apply_guardrail", "causeline.guardrail.passed": True,
                         "causeline.guardrail.action": "allow"}),
        dict(category="guardrail", operation="apply_guardrail", status="unset", error_class=None),
    ),
    "guardrail failed": (
        dict(attributes={"gen_ai.operation.name": "apply_guardrail", "causeline.guardrail.passed": False,
                         "causeline.guardrail.action": "retry"}),
        dict(category="guardrail", status="error", error_class="guardrail_blocked", error_type=None),
    ),
    "guardrail passed sent as a string": (
        dict(attributes={"gen_ai.operation.name": "apply_guardrail", "causeline.guardrail.passed": "false"}),
        dict(status="error", error_class="guardrail_blocked"),
    ),
    "guardrail action block": (
        dict(attributes={"gen_ai.operation.name": "apply_guardrail", "causeline.guardrail.action": "BLOCK"}),
        dict(status="error", error_class="guardrail_blocked"),
    ),
    "guardrail block beats an explicit ok": (
        dict(status_code=1, attributes={"gen_ai.operation.name": "apply_guardrail",
                                        "causeline.guardrail.passed": False}),
        dict(status="error", error_class="guardrail_blocked"),
    ),
    "handoff: the tool name wins": (
        dict(name="execute_tool transfer_to_billing", attributes={
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "transfer_to_billing",
            "gen_ai.transfer.mode": "pass_control", "gen_ai.transfer.target.name": "billing",
        }),
        dict(category="tool", tool_name="transfer_to_billing"),
    ),
    "handoff: else the span-name tool": (
        dict(name="execute_tool transfer_to_billing", attributes={
            "gen_ai.operation.name": "execute_tool", "gen_ai.transfer.target.name": "billing",
        }),
        dict(category="tool", tool_name="transfer_to_billing"),
    ),
    "handoff: else the target": (
        dict(name="handoff", attributes={
            "gen_ai.operation.name": "execute_tool", "gen_ai.transfer.mode": "return_to_caller",
            "gen_ai.transfer.target.name": "billing",
        }),
        dict(category="tool", tool_name="billing"),
    ),
}


@pytest.mark.parametrize("case", CAUSELINE.values(), ids=CAUSELINE.keys())
def test_causeline_attributes(case):
    run_table(case)


# --- Vercel AI SDK (names from ai 4-6's sources; recorded spans in test_sources.py) ---------

VERCEL_AI = {
    "ai 4 token names": (
        dict(name="ai.generateText.doGenerate", attributes={
            "ai.operationId": "ai.generateText.doGenerate", "ai.model.provider": "openai.chat",
            "ai.model.id": "gpt-4o", "ai.usage.promptTokens": 12, "ai.usage.completionTokens": 3,
        }),
        dict(category="llm", operation="chat", provider="openai", request_model="gpt-4o",
             tokens=Tokens(input=12, output=3)),
    ),
    "cache write and reasoning details": (
        dict(attributes={
            "ai.operationId": "ai.streamText.doStream", "ai.usage.inputTokens": 100, "ai.usage.outputTokens": 9,
            "ai.usage.inputTokenDetails.cacheWriteTokens": 40, "ai.usage.outputTokenDetails.reasoningTokens": 5,
        }),
        dict(category="llm", tokens=Tokens(input=100, output=9, cache_write=40, reasoning=5)),
    ),
    "gen_ai.* names win over ai.usage.*": (
        dict(attributes={"ai.operationId": "ai.generateText.doGenerate", "gen_ai.usage.input_tokens": 7,
                         "ai.usage.inputTokens": 99}),
        dict(tokens=Tokens(input=7)),
    ),
    "generateObject": (
        dict(attributes={"ai.operationId": "ai.generateObject.doGenerate", "ai.response.object": '{"a": 1}'}),
        dict(category="llm", output='{"a": 1}'),
    ),
    "outer streamObject drops usage": (
        dict(attributes={"ai.operationId": "ai.streamObject", "ai.usage.inputTokens": 10}),
        dict(category="workflow", operation=None, tokens=Tokens()),
    ),
    "embedMany": (
        dict(attributes={"ai.operationId": "ai.embedMany.doEmbed", "ai.usage.tokens": 30}),
        dict(category="embedding", tokens=Tokens(input=30)),
    ),
    "rerank": (dict(attributes={"ai.operationId": "ai.rerank.doRerank"}), dict(category="retrieval")),
    "ai 4 tool call": (
        dict(attributes={"ai.operationId": "ai.toolCall", "ai.toolCall.name": "search",
                         "ai.toolCall.args": '{"q": "x"}', "ai.toolCall.result": '"found"'}),
        dict(category="tool", tool_name="search", input='{"q": "x"}', output='"found"'),
    ),
    "ai 5 tool call input/output": (
        dict(attributes={"ai.operationId": "ai.toolCall", "ai.toolCall.name": "search",
                         "ai.toolCall.input": '{"q": "x"}', "ai.toolCall.output": '"found"'}),
        dict(input='{"q": "x"}', output='"found"'),
    ),
    "failed tool call": (
        dict(status_code=2, status_message="boom", attributes={"ai.operationId": "ai.toolCall",
                                                                "ai.toolCall.name": "search"}),
        dict(status="error", error_class="tool_error"),
    ),
}

VERCEL_PROVIDERS = {
    "openai.chat": "openai", "openai.responses": "openai", "openai.embedding": "openai",
    "anthropic.messages": "anthropic", "google.generative-ai": "gcp.gemini", "google.vertex.chat": "gcp.vertex_ai",
    "vertex.anthropic.messages": "gcp.vertex_ai", "amazon-bedrock": "aws.bedrock", "azure.chat": "azure.ai.openai",
    "azure-openai.responses": "azure.ai.openai", "mistral.chat": "mistral_ai", "xai.chat": "x_ai",
    "groq.chat": "groq", "deepseek.chat": "deepseek",
}


@pytest.mark.parametrize("case", VERCEL_AI.values(), ids=VERCEL_AI.keys())
def test_vercel_ai(case):
    run_table(case)


@pytest.mark.parametrize(("sent", "expected"), VERCEL_PROVIDERS.items(), ids=VERCEL_PROVIDERS.keys())
def test_vercel_ai_provider(sent, expected):
    # gen_ai.system carries the same "<provider>.<api>" string; ai.model.provider says how to read it.
    span = normalize(raw({"ai.operationId": "ai.generateText.doGenerate", "ai.model.provider": sent,
                          "gen_ai.system": sent}))
    assert span.provider == expected


# --- OpenInference beyond the span kind ---------------------------------------------------
# LangChain, OpenAI Agents, CrewAI and smolagents are also recorded (test_sources.py). The cases
# below use their attribute and span names; CrewAI's `tool.agent_role` is sent only in its
# instrumentation's event-listener mode (`use_event_listener=True`), which was not recorded.

OPENINFERENCE_MORE = {
    "LangChain: requested model in invocation parameters, served in llm.model_name": (
        dict(attributes={"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-2024-08-06",
                         "llm.invocation_parameters": '{"model_name": "gpt-4o", "temperature": 0.0}'}),
        dict(request_model="gpt-4o", response_model="gpt-4o-2024-08-06"),
    ),
    "invocation parameter 'model'": (
        dict(attributes={"openinference.span.kind": "LLM", "llm.model_name": "served",
                         "llm.invocation_parameters": '{"model": "asked"}'}),
        dict(request_model="asked", response_model="served"),
    ),
    "no invocation parameters: llm.model_name is all there is": (
        dict(attributes={"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o"}),
        dict(request_model="gpt-4o", response_model=None),
    ),
    "unreadable invocation parameters": (
        dict(attributes={"openinference.span.kind": "LLM", "llm.model_name": "m",
                         "llm.invocation_parameters": '{"model": '}),
        dict(request_model="m", response_model=None),
    ),
    "LangGraph agent: lc_agent_name in metadata": (
        dict(name="LangGraph", attributes={"openinference.span.kind": "AGENT",
                                           "metadata": '{"lc_agent_name": "researcher", "langgraph_step": 1}'}),
        dict(category="agent", agent_name="researcher"),
    ),
    "LangChain agent run: a CHAIN named like its lc_agent_name": (
        dict(name="researcher", attributes={"openinference.span.kind": "CHAIN",
                                            "metadata": '{"lc_agent_name": "researcher"}'}),
        dict(category="agent", operation="invoke_agent", agent_name="researcher"),
    ),
    "a graph node CHAIN inside it stays a workflow": (
        dict(name="model", attributes={"openinference.span.kind": "CHAIN",
                                       "metadata": '{"lc_agent_name": "researcher"}'}),
        dict(category="workflow", agent_name="researcher"),
    ),
    "model call inside a LangGraph agent": (
        dict(name="ChatOpenAI", attributes={"openinference.span.kind": "LLM",
                                            "metadata": '{"lc_agent_name": "researcher"}'}),
        dict(category="llm", agent_name="researcher"),
    ),
    "CrewAI agent: graph.node.id": (
        dict(name="Crew Manager._execute_core", attributes={"openinference.span.kind": "AGENT",
                                                           "graph.node.id": "Senior Researcher"}),
        dict(agent_name="Senior Researcher"),
    ),
    "AGENT with no name but its span name": (
        dict(name="Triage", attributes={"openinference.span.kind": "AGENT"}), dict(agent_name="Triage"),
    ),
    "smolagents run span": (
        dict(name="researcher.run", attributes={"openinference.span.kind": "AGENT", "smolagents.max_steps": 5}),
        dict(agent_name="researcher"),
    ),
    "smolagents: llm.model_name is the model asked for": (
        dict(attributes={"openinference.span.kind": "LLM", "llm.model_name": "Qwen/Qwen2.5-Coder-32B-Instruct",
                         "llm.invocation_parameters": '{"max_tokens": 100}'}),
        dict(request_model="Qwen/Qwen2.5-Coder-32B-Instruct", response_model=None),
    ),
    "CrewAI tool: tool.agent_role": (
        dict(attributes={"openinference.span.kind": "TOOL", "tool.name": "search",
                         "tool.agent_role": "Senior Researcher"}),
        dict(tool_name="search", agent_name="Senior Researcher"),
    ),
    "agent.name wins": (
        dict(name="x", attributes={"openinference.span.kind": "AGENT", "agent.name": "a", "graph.node.id": "b"}),
        dict(agent_name="a"),
    ),
    "OpenAI Agents handoff span": (
        dict(name="handoff to Billing", attributes={"openinference.span.kind": "TOOL", "input.value": "Triage",
                                                    "output.value": "Billing"}),
        dict(category="tool", tool_name="Billing", agent_name="Triage"),
    ),
}


@pytest.mark.parametrize("case", OPENINFERENCE_MORE.values(), ids=OPENINFERENCE_MORE.keys())
def test_openinference_fields(case):
    run_table(case)


# --- Logfire (names from logfire 5.4's OpenAI Agents integration) -------------------------

LOGFIRE = {
    "rendered name replaces the template": (
        dict(name="Agent run: {name!r}", attributes={"name": "Triage", "logfire.msg": "Agent run: 'Triage'"}),
        dict(name="Agent run: 'Triage'", category="agent", agent_name="Triage"),
    ),
    "a name without a template is kept": (
        dict(name="running tool", attributes={"logfire.msg": "running tool: x", "gen_ai.tool.name": "x"}),
        dict(name="running tool"),
    ),
    "error object: guardrail tripwire": (
        dict(name="Guardrail {name!r} {triggered=}", attributes={
            "logfire.level_num": 17,
            "error": '{"message": "Guardrail tripwire triggered", "data": {"guardrail": "no_pii"}}'}),
        dict(category="guardrail", status="error", error_class="guardrail_blocked"),
    ),
    "error object on an agent run": (
        dict(name="Agent run: {name!r}", attributes={
            "name": "Triage", "error": '{"message": "Max turns exceeded", "data": {"max_turns": 10}}'}),
        dict(status="error", error_class="unknown"),
    ),
    "error object detail is read": (
        dict(name="Function: {name}", attributes={
            "name": "fetch", "error": {"message": "Error running tool (non-fatal)",
                                       "data": {"error": "httpx.ReadTimeout: timed out"}}}),
        dict(status="error", error_class="timeout"),
    ),
    "error level alone": (dict(attributes={"logfire.level_num": 17}), dict(status="error", error_class="unknown")),
    "warning level is no error": (dict(attributes={"logfire.level_num": 13}), dict(status="unset")),
    "a plain error attribute is not Logfire's": (
        dict(attributes={"error": "false"}), dict(status="unset", error_class=None),
    ),
    "reasoning and cache from gen_ai.usage.raw (Chat Completions)": (
        dict(attributes={"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 50,
                         "gen_ai.usage.output_tokens": 20, "gen_ai.usage.raw": json.dumps({
                             "prompt_tokens": 50, "completion_tokens": 20,
                             "prompt_tokens_details": {"cached_tokens": 10},
                             "completion_tokens_details": {"reasoning_tokens": 8}})}),
        dict(tokens=Tokens(input=50, output=20, cache_read=10, reasoning=8)),
    ),
    "sent cache count wins over the raw one": (
        dict(attributes={"gen_ai.operation.name": "chat", "gen_ai.usage.cache_read.input_tokens": 3,
                         "gen_ai.usage.raw": {"input_tokens_details": {"cached_tokens": 99}}}),
        dict(tokens=Tokens(cache_read=3)),
    ),
    "Logfire tool content": (
        dict(name="Function: {name}", attributes={"logfire.msg_template": "Function: {name}", "name": "f",
                                                  "input": '{"a": 1}', "output": "ok"}),
        dict(input='{"a": 1}', output="ok"),
    ),
    "generic input/output names are not content elsewhere": (
        dict(attributes={"input": "x", "output": "y"}), dict(input=None, output=None),
    ),
    "unreadable raw usage": (
        dict(attributes={"gen_ai.operation.name": "chat", "gen_ai.usage.raw": "{"}), dict(tokens=Tokens()),
    ),
}


@pytest.mark.parametrize("case", LOGFIRE.values(), ids=LOGFIRE.keys())
def test_logfire(case):
    run_table(case)


# --- OpenLLMetry handoffs and steps --------------------------------------------------------

OPENLLMETRY_MORE = {
    "handoff operation with a known target": (
        dict(name="Triage → Billing.handoff", attributes={
            "traceloop.span.kind": "handoff", "gen_ai.operation.name": "handoff",
            "gen_ai.handoff.from_agent": "Triage", "gen_ai.agent.name": "Triage", "gen_ai.handoff.to_agent": "Billing"}),
        dict(category="tool", operation="handoff", agent_name="Triage", tool_name="Billing"),
    ),
    "'unknown' target is no target": (
        dict(name="Triage → unknown.handoff", attributes={"gen_ai.operation.name": "handoff"}),
        dict(category="tool", agent_name="Triage", tool_name=None),
    ),
}


@pytest.mark.parametrize("case", OPENLLMETRY_MORE.values(), ids=OPENLLMETRY_MORE.keys())
def test_openllmetry_handoffs(case):
    run_table(case)


STEP_NAMES = {
    "gen_ai.workflow.name": ({"gen_ai.workflow.name": "plan"}, "invoke_workflow plan", "plan"),
    "OpenLLMetry workflow": (
        {"traceloop.span.kind": "workflow", "traceloop.workflow.name": "support", "traceloop.entity.name": "x"},
        "support.workflow", "support"),
    "OpenLLMetry task": (
        {"traceloop.span.kind": "task", "traceloop.workflow.name": "support", "traceloop.entity.name": "lookup"},
        "lookup.task", "lookup"),
    "AI SDK functionId": (
        {"ai.operationId": "ai.generateText", "ai.telemetry.functionId": "weather-agent"}, "ai.generateText",
        "weather-agent"),
    "else the span name": ({}, "my step", "my step"),
}


@pytest.mark.parametrize(("attributes", "name", "expected"), STEP_NAMES.values(), ids=STEP_NAMES.keys())
def test_step_name(attributes, name, expected):
    assert step_name(attributes, name) == expected


# --- provider aliases ----------------------------------------------------------

PROVIDERS = {
    "az.ai.inference": "azure.ai.inference",
    "az.ai.openai": "azure.ai.openai",
    "vertex_ai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "xai": "x_ai",
    "mistralai": "mistral_ai",
    "anthropic": "anthropic",
    " OpenAI ": "openai",
    "AZ.AI.OPENAI": "azure.ai.openai",
}


@pytest.mark.parametrize(("sent", "expected"), PROVIDERS.items(), ids=PROVIDERS.keys())
@pytest.mark.parametrize("key", ["gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"])
def test_provider_aliases(key, sent, expected):
    assert normalize(raw({key: sent})).provider == expected


# --- cache and reasoning token names --------------------------------------------

TOKEN_NAMES = {
    "gen_ai.usage.cache_read.input_tokens": "cache_read",
    "gen_ai.usage.cache_read_input_tokens": "cache_read",
    "llm.token_count.prompt_details.cache_read": "cache_read",
    "gen_ai.usage.cache_write.input_tokens": "cache_write",
    "gen_ai.usage.cache_creation.input_tokens": "cache_write",
    "gen_ai.usage.cache_creation_input_tokens": "cache_write",
    "llm.token_count.prompt_details.cache_write": "cache_write",
    "gen_ai.usage.reasoning.output_tokens": "reasoning",
    "gen_ai.usage.reasoning_tokens": "reasoning",
    "llm.token_count.completion_details.reasoning": "reasoning",
    "gen_ai.usage.input_tokens": "input",
    "gen_ai.usage.prompt_tokens": "input",
    "llm.token_count.prompt": "input",
    "gen_ai.usage.output_tokens": "output",
    "gen_ai.usage.completion_tokens": "output",
    "llm.token_count.completion": "output",
}


@pytest.mark.parametrize(("key", "kind"), TOKEN_NAMES.items(), ids=TOKEN_NAMES.keys())
def test_token_names(key, kind):
    span = normalize(raw({"gen_ai.operation.name": "chat", key: 42}))
    assert span.tokens == Tokens(**{kind: 42})


# --- lenient values ---------------------------------------------------------------

COUNTS = {
    "int": (12, 12), "zero": (0, 0), "numeric string": ("12", 12), "padded string": (" 12 ", 12),
    "integral float": (12.0, 12), "float string": ("12.0", 12), "exponent string": ("1e3", 1000),
    "negative": (-1, None), "negative string": ("-5", None), "fraction": (12.5, None), "garbage": ("n/a", None),
    "empty": ("", None), "bool": (True, None), "list": ([12], None), "dict": ({"n": 12}, None),
    "nan": (float("nan"), None), "inf": (float("inf"), None), "bigger than bigint": (2**64, None),
    "huge digit string": ("9" * 5000, None), "bytes": (b"12", 12),
}


@pytest.mark.parametrize(("sent", "expected"), COUNTS.values(), ids=COUNTS.keys())
def test_lenient_token_counts(sent, expected):
    span = normalize(raw({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": sent}))
    assert span.tokens.input == expected


COSTS = {
    "float": ({"operation.cost": 0.1}, Decimal("0.1")),
    "string": ({"llm.cost.total": "0.0123"}, Decimal("0.0123")),
    "int": ({"operation.cost": 2}, Decimal(2)),
    "zero": ({"operation.cost": 0.0}, Decimal(0)),
    "negative": ({"operation.cost": -1.0}, None),
    "garbage": ({"llm.cost.total": "free"}, None),
    "nan": ({"llm.cost.total": "NaN"}, None),
    "bool": ({"operation.cost": True}, None),
    "absurd": ({"operation.cost": 1e20}, None),
    "proposed total": ({"gen_ai.usage.cost.total": "0.5", "gen_ai.usage.cost.input": "0.2"}, Decimal("0.5")),
    "proposed components are summed": (
        {"gen_ai.usage.cost.input": "0.2", "gen_ai.usage.cost.output": 0.3}, Decimal("0.5"),
    ),
    "a garbage component voids the sum": (
        {"gen_ai.usage.cost.input": "0.2", "gen_ai.usage.cost.output": "?", "llm.cost.total": 0.7}, Decimal("0.7"),
    ),
    "proposed beats older names": ({"gen_ai.usage.cost": 0.4, "operation.cost": 0.9}, Decimal("0.4")),
    "none reported": ({}, None),
}


@pytest.mark.parametrize(("attributes", "expected"), COSTS.values(), ids=COSTS.keys())
def test_reported_cost(attributes, expected):
    span = normalize(raw({"gen_ai.operation.name": "chat", **attributes}))
    assert span.reported_cost_usd == expected
    assert span.cost_usd is None and span.cost_source is None  # pricing is another module


def test_reported_cost_is_dropped_on_agent_spans():
    span = normalize(raw({"gen_ai.operation.name": "invoke_agent", "operation.cost": 0.5}))
    assert span.reported_cost_usd is None


STRINGS = {
    "int session id": ({"session.id": 12345}, "session_id", "12345"),
    "integral float user id": ({"user.id": 7.0}, "user_id", "7"),
    "blank agent name": ({"gen_ai.agent.name": "  ", "agent.name": "b"}, "agent_name", "b"),
    "list model ignored": ({"gen_ai.request.model": ["gpt-4o"]}, "request_model", None),
    "bool provider ignored": ({"gen_ai.provider.name": True}, "provider", None),
    "bytes tool name decoded": ({"tool.name": b"calc"}, "tool_name", "calc"),
    "invalid utf-8 ignored": ({"tool.name": b"\xff\xfe"}, "tool_name", None),
}


@pytest.mark.parametrize(("attributes", "field", "expected"), STRINGS.values(), ids=STRINGS.keys())
def test_lenient_strings(attributes, field, expected):
    assert getattr(normalize(raw(attributes)), field) == expected


# --- precedence: newest convention first ---------------------------------------------

PRECEDENCE = {
    "input tokens: new over old": (
        {"gen_ai.usage.input_tokens": 10, "gen_ai.usage.prompt_tokens": 99, "llm.token_count.prompt": 98},
        "tokens", Tokens(input=10),
    ),
    "output tokens: new over old": (
        {"gen_ai.usage.output_tokens": 3, "gen_ai.usage.completion_tokens": 99}, "tokens", Tokens(output=3),
    ),
    "unreadable new name falls back to old": (
        {"gen_ai.usage.input_tokens": "n/a", "gen_ai.usage.prompt_tokens": 11}, "tokens", Tokens(input=11),
    ),
    "cache read: dotted over underscored": (
        {"gen_ai.usage.cache_read.input_tokens": 5, "gen_ai.usage.cache_read_input_tokens": 99},
        "tokens", Tokens(cache_read=5),
    ),
    "provider: provider.name over system": (
        {"gen_ai.provider.name": "anthropic", "gen_ai.system": "openai", "llm.provider": "x"}, "provider", "anthropic",
    ),
    "request model: gen_ai over llm": (
        {"gen_ai.request.model": "a", "llm.model_name": "b"}, "request_model", "a",
    ),
    "session: conversation.id first": (
        {"gen_ai.conversation.id": "c", "session.id": "s"}, "session_id", "c",
    ),
    "user: user.id before enduser.id": ({"user.id": "u", "enduser.id": "e"}, "user_id", "u"),
    "agent: gen_ai.agent.name first": ({"gen_ai.agent.name": "a", "agent.name": "b", "agent_name": "c"}, "agent_name", "a"),
    "tool: gen_ai.tool.name first": ({"gen_ai.tool.name": "a", "tool.name": "b"}, "tool_name", "a"),
    "category: gen_ai.operation.name beats openinference": (
        {"gen_ai.operation.name": "execute_tool", "openinference.span.kind": "LLM"}, "category", "tool",
    ),
    "category: openinference beats traceloop": (
        {"openinference.span.kind": "AGENT", "traceloop.span.kind": "tool"}, "category", "agent",
    ),
    "input: gen_ai.input.messages beats input.value": (
        {"gen_ai.input.messages": "[1]", "input.value": "old", "gen_ai.prompt.0.content": "older"}, "input", "[1]",
    ),
    "input: flattened messages beat input.value": (
        {"llm.input_messages.0.message.content": "m", "input.value": "v"}, "input", json.dumps([{"content": "m"}]),
    ),
    "output: gen_ai.output.messages beats output.value": (
        {"gen_ai.output.messages": "[2]", "output.value": "old"}, "output", "[2]",
    ),
}


@pytest.mark.parametrize(("attributes", "field", "expected"), PRECEDENCE.values(), ids=PRECEDENCE.keys())
def test_precedence(attributes, field, expected):
    assert getattr(normalize(raw(attributes)), field) == expected


# --- content representation ----------------------------------------------------------

CONTENT = {
    "structured value is JSON-encoded": (
        {"gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "hé"}]}]},
        "input", '[{"role": "user", "parts": [{"type": "text", "content": "hé"}]}]',
    ),
    "messages sorted by index, not by attribute order": (
        {"gen_ai.prompt.1.content": "second", "gen_ai.prompt.0.content": "first"},
        "input", json.dumps([{"content": "first"}, {"content": "second"}]),
    ),
    "index 10 after index 2": (
        {"gen_ai.prompt.10.content": "c", "gen_ai.prompt.2.content": "b"},
        "input", json.dumps([{"content": "b"}, {"content": "c"}]),
    ),
    "malformed flattened keys ignored": (
        {"gen_ai.prompt.x.content": "?", "gen_ai.prompt.0": "?", "gen_ai.prompt.": "?"}, "input", None,
    ),
    "blank string is no content": ({"input.value": "   ", "traceloop.entity.input": "t"}, "input", "t"),
    "bytes decoded": ({"output.value": b"caf\xc3\xa9"}, "output", "café"),
    "nothing captured": ({"gen_ai.operation.name": "chat"}, "input", None),
}


@pytest.mark.parametrize(("attributes", "field", "expected"), CONTENT.values(), ids=CONTENT.keys())
def test_content(attributes, field, expected):
    assert getattr(normalize(raw(attributes)), field) == expected


# --- status and errors --------------------------------------------------------------

STATUS = {
    "unset": (dict(), dict(status="unset", error_type=None, error_class=None)),
    "ok": (dict(status_code=1), dict(status="ok", error_class=None)),
    "error with message only": (
        dict(status_code=2, status_message="boom"),
        dict(status="error", status_message="boom", error_type=None, error_class="unknown"),
    ),
    "error with nothing at all": (dict(status_code=2), dict(status="error", error_class="unknown")),
    "unknown status code": (dict(status_code=7), dict(status="unset")),
    "exception event makes an unset span an error": (
        dict(events=(exception("TimeoutError", "timed out"),)),
        dict(status="error", error_type="TimeoutError", error_class="timeout"),
    ),
    "explicit ok keeps a handled exception": (
        dict(status_code=1, events=(exception("ValueError"),)), dict(status="ok", error_type=None, error_class=None),
    ),
    "last exception event wins": (
        dict(status_code=2, events=(exception("ValueError"), exception("httpx.ReadTimeout"))),
        dict(error_type="httpx.ReadTimeout", error_class="timeout"),
    ),
    "error.type beats exception type": (
        dict(status_code=2, attributes={"error.type": "openai.RateLimitError"}, events=(exception("Exception"),)),
        dict(error_type="openai.RateLimitError", error_class="rate_limited"),
    ),
    "error.type alone is an error": (
        dict(attributes={"error.type": "timeout"}), dict(status="error", error_type="timeout", error_class="timeout"),
    ),
    "error.type overrides ok": (dict(status_code=1, attributes={"error.type": "_OTHER"}), dict(status="error")),
    "http >= 400 on a model call": (
        dict(attributes={"gen_ai.operation.name": "chat", "http.response.status_code": 503}),
        dict(status="error", error_class="provider_unavailable"),
    ),
    "http status as a string": (
        dict(attributes={"gen_ai.operation.name": "chat", "http.response.status_code": "401"}),
        dict(status="error", error_class="auth_failed"),
    ),
    "http >= 400 elsewhere is not an error": (
        dict(attributes={"http.response.status_code": 404}), dict(status="unset", error_class=None),
    ),
    "http 200 on a model call": (
        dict(attributes={"gen_ai.operation.name": "chat", "http.response.status_code": 200}), dict(status="unset"),
    ),
    "finish reason error": (
        dict(attributes={"gen_ai.operation.name": "chat", "gen_ai.response.finish_reasons": ["stop", "error"]}),
        dict(status="error", error_class="unknown"),
    ),
    "finish reasons as one string": (
        dict(attributes={"gen_ai.response.finish_reasons": "ERROR"}), dict(status="error"),
    ),
    "finish reasons as a JSON string": (
        dict(attributes={"gen_ai.response.finish_reasons": '["error"]'}), dict(status="error"),
    ),
    "content_filter alone does not fail the span": (
        dict(attributes={"gen_ai.response.finish_reasons": ["content_filter"]}),
        dict(status="unset", error_class=None),
    ),
    "content_filter on a failed span": (
        dict(status_code=2, attributes={"gen_ai.response.finish_reasons": ["content_filter"]}),
        dict(error_class="content_filtered"),
    ),
    "failed tool": (
        dict(status_code=2, attributes={"gen_ai.operation.name": "execute_tool"}, events=(exception("KeyError", "'x'"),)),
        dict(error_type="KeyError", error_class="tool_error"),
    ),
    "failed tool with a specific cause": (
        dict(status_code=2, attributes={"gen_ai.operation.name": "execute_tool"},
             events=(exception("httpx.ConnectTimeout"),)),
        dict(error_class="timeout"),
    ),
    "context overflow from the message": (
        dict(status_code=2, attributes={"gen_ai.operation.name": "chat", "http.response.status_code": 400,
                                        "error.type": "openai.BadRequestError"},
             events=(exception("openai.BadRequestError",
                               "Error code: 400 - This model's maximum context length is 128000 tokens"),)),
        dict(error_type="openai.BadRequestError", error_class="context_overflow"),
    ),
}


@pytest.mark.parametrize("case", STATUS.values(), ids=STATUS.keys())
def test_status_and_errors(case):
    run_table(case)


def test_pass_through_fields():
    event = Event("custom", 5, {"k": "v"})
    span = normalize(raw({"a": 1}, name="n", events=(event,), resource={"service.name": "svc", "x": 2}))
    assert (span.trace_id, span.span_id, span.parent_span_id) == (b"\x01" * 16, b"\x02" * 8, None)
    assert (span.name, span.otel_kind, span.start_ns, span.end_ns) == ("n", 1, 1_000, 2_000)
    assert span.attributes == {"a": 1} and span.events == (event,) and span.resource["x"] == 2
    assert span.service_name == "svc"


# --- never raises ------------------------------------------------------------------

KNOWN_KEYS = sorted(
    {
        key
        for table in (OTEL_GENAI, OTEL_GENAI_OLD, OPENINFERENCE, OPENLLMETRY, PYDANTIC_AI, OPENAI_AGENTS, CAUSELINE,
                      VERCEL_AI, OPENINFERENCE_MORE, LOGFIRE, OPENLLMETRY_MORE)
        for kwargs, _ in table.values()
        for key in kwargs.get("attributes", {})
    }
    | set(TOKEN_NAMES)
    | {"error.type", "http.response.status_code", "gen_ai.response.finish_reasons", "gen_ai.usage.cost.total",
       "gen_ai.usage.cost.input", "causeline.guardrail.passed", "causeline.guardrail.action", "triggered", "name",
       "llm.input_messages.0.message.content", "gen_ai.prompt.0.content", "service.name"}
)
NAMES = ["chat gpt-4o", "agent run", "running tool", "Agent run: {name!r}", "Handoff: a → b", "Handoff: →",
         "Function: ", "Guardrail x", "execute_tool", "invoke_agent ", ""]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), st.binary(max_size=8),
    st.sampled_from(["12", "-3", "1e400", "NaN", "inf", "false", "block", "chat", "LLM", "[\"error\"]", "[", "{x}"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=30))
attribute_dicts = st.dictionaries(keys, values, max_size=12)
events = st.lists(
    st.builds(Event, name=st.sampled_from(["exception", "gen_ai.content.prompt", "gen_ai.content.completion", "x"]),
              time_ns=st.integers(0, 10), attributes=st.dictionaries(
                  st.sampled_from(["exception.type", "exception.message", "gen_ai.prompt", "gen_ai.completion", "y"]),
                  values, max_size=3)),
    max_size=3,
).map(tuple)


@settings(max_examples=500, deadline=None)
@given(
    attributes=attribute_dicts, resource=attribute_dicts, events=events,
    name=st.one_of(st.sampled_from(NAMES), st.text(max_size=30)),
    status_code=st.integers(-5, 5), status_message=st.text(max_size=30),
)
def test_normalize_never_raises(attributes, resource, events, name, status_code, status_message):
    span_raw = raw(attributes, name=name, status_code=status_code, status_message=status_message,
                   events=events, resource=resource)
    span = _normalize(span_raw)  # the strict path, without the safety net in normalize()
    assert span.category in CATEGORIES
    assert span.status in STATUSES
    assert span.error_class is None or span.error_class in ERROR_CLASSES
    assert (span.error_class is not None) == (span.status == "error")
    for count in (span.tokens.input, span.tokens.output, span.tokens.cache_read, span.tokens.cache_write,
                  span.tokens.reasoning):
        assert count is None or (type(count) is int and count >= 0)
    assert span.reported_cost_usd is None or (isinstance(span.reported_cost_usd, Decimal) and span.reported_cost_usd >= 0)
    for text in (span.provider, span.request_model, span.agent_name, span.tool_name, span.session_id, span.input):
        assert text is None or isinstance(text, str)
    assert normalize(span_raw) == span


def test_safety_net_on_broken_input():
    class Hostile(dict):
        def get(self, *args):
            raise RuntimeError("boom")

    span = normalize(raw(Hostile({"gen_ai.operation.name": "chat"}), status_code=2))
    assert (span.category, span.status, span.tokens) == ("other", "error", Tokens())


# --- storage limits ------------------------------------------------------------------------------

def test_identifier_fields_are_capped_with_a_marker_and_listed_as_truncated():
    from core.normalize import IDENTIFIER_MAX_BYTES, IDENTIFIER_MAX_CHARS

    long_ascii, long_wide = "a" * 5000, "\U0001F600" * 300  # 4-byte characters
    span = normalize(raw({
        "gen_ai.operation.name": "chat", "gen_ai.request.model": long_ascii, "gen_ai.response.model": long_wide,
        "gen_ai.provider.name": long_ascii, "gen_ai.agent.name": long_wide, "gen_ai.tool.name": long_ascii,
        "session.id": long_ascii, "user.id": long_wide, "error.type": long_ascii,
        "causeline.truncated": ["input.value"],
    }, resource={"service.name": long_wide}))
    for value in (span.request_model, span.response_model, span.provider, span.agent_name, span.tool_name,
                  span.session_id, span.user_id, span.error_type, span.service_name):
        head, marker, _ = value.partition("…[truncated ")
        assert marker and len(head) <= IDENTIFIER_MAX_CHARS and len(head.encode()) <= IDENTIFIER_MAX_BYTES
    assert span.request_model == "a" * 256 + "…[truncated 4744 chars]"
    assert set(span.attributes["causeline.truncated"]) == {
        "input.value", "gen_ai.request.model", "gen_ai.response.model", "gen_ai.provider.name",
        "gen_ai.agent.name", "gen_ai.tool.name", "session.id", "user.id", "error.type", "service.name"}
    assert span.attributes["gen_ai.request.model"] == long_ascii  # the raw value is kept


def test_short_identifiers_keep_the_raw_attributes_object():
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
    assert normalize(raw(attributes)).attributes is attributes


def test_absurd_token_counts_are_clamped():
    from core.normalize import MAX_TOKENS

    span = normalize(raw({"gen_ai.operation.name": "chat", "gen_ai.usage.output_tokens": 10**15,
                          "gen_ai.usage.input_tokens": 5}))
    assert span.tokens == Tokens(input=5, output=MAX_TOKENS)
