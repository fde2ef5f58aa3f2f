"""Normalization of spans recorded once from the real libraries (tests/fixtures/sources/*.json,
re-recorded by the record_* scripts there): decode the OTLP/JSON export exactly as the collector
does, normalize, derive handoff links, and check each span against a table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.handoffs import with_handoff_links
from core.normalize import normalize, step_name
from core.otlp import decode_json
from core.span import Span, Tokens

SOURCES = Path(__file__).parent.parent / "fixtures" / "sources"
VERCEL_AI = "vercel-ai-6.0.326.json"
OPENINFERENCE = "openinference-instrumentation-openai-agents-2.6.0.json"
LOGFIRE = "logfire-5.4.0.json"
OPENLLMETRY = "opentelemetry-instrumentation-openai-agents-0.62.4.json"
LANGCHAIN = "openinference-instrumentation-langchain-0.1.80.json"
TRACELOOP = "traceloop-sdk-0.62.4.json"


def load(fixture: str) -> list[Span]:
    body = json.dumps(json.loads((SOURCES / fixture).read_text())["otlp"]).encode()
    decoded = decode_json(body)
    assert decoded.rejected == 0
    return with_handoff_links([normalize(raw) for raw in decoded.spans])


def spans_named(spans: list[Span], name: str) -> list[Span]:
    found = [span for span in spans if span.name == name]
    assert found, f"no span named {name!r} in {[s.name for s in spans]}"
    return found


def check(fixture: str, name: str, index: int, expected: dict[str, Any]) -> None:
    span = spans_named(load(fixture), name)[index]
    assert {field: getattr(span, field) for field in expected} == expected


def handoff_links(spans: list[Span]) -> list[tuple[str, str]]:
    """(receiving span's name, linked span's name) for every handoff_from link."""
    by_id = {span.span_id: span for span in spans}
    return [(span.name, by_id[link.span_id].name) for span in spans for link in span.links
            if link.relation == "handoff_from"]


# --- Vercel AI SDK: ai 6.0.326 + @ai-sdk/openai 3.0 ----------------------------------------

MODEL_CALL = Tokens(input=120, output=30, cache_read=64, reasoning=12)
VERCEL_CASES = {
    "doGenerate is a priced model call (Responses API)": ("ai.generateText.doGenerate", 0, dict(
        category="llm", operation="chat", provider="openai", request_model="gpt-4o",
        response_model="gpt-4o-2024-08-06", tokens=MODEL_CALL, status="unset",
        input='[{"role":"user","content":[{"type":"text","text":"Weather in Paris?"}]}]',
        output='[{"toolCallId":"call_1","toolName":"get_weather","input":"{\\"city\\":\\"Paris\\"}"}]')),
    "second step answers in text": ("ai.generateText.doGenerate", 1, dict(
        category="llm", tokens=MODEL_CALL, output="It is 21C in Paris.")),
    "toolCall is a tool": ("ai.toolCall", 0, dict(
        category="tool", operation="execute_tool", tool_name="get_weather", input='{"city":"Paris"}',
        output='{"city":"Paris","celsius":21}')),
    "outer generateText repeats usage: no tokens": ("ai.generateText", 0, dict(
        category="workflow", tokens=Tokens(), provider="openai", output="It is 21C in Paris.")),
    "doStream (Chat API) is a model call": ("ai.streamText.doStream", 0, dict(
        category="llm", provider="openai", request_model="gpt-4o-mini", response_model="gpt-4o-mini-2024-07-18",
        tokens=Tokens(input=50, output=5, cache_read=32, reasoning=0), output="Hello there")),
    "outer streamText: no tokens": ("ai.streamText", 0, dict(category="workflow", tokens=Tokens())),
    "doEmbed is an embedding call": ("ai.embed.doEmbed", 0, dict(
        category="embedding", operation="embeddings", provider="openai", request_model="text-embedding-3-small",
        tokens=Tokens(input=8))),
    "outer embed: no tokens": ("ai.embed", 0, dict(category="workflow", tokens=Tokens())),
    "429 is rate_limited": ("ai.generateText.doGenerate", 2, dict(
        category="llm", status="error", error_type="AI_APICallError", error_class="rate_limited",
        request_model="gpt-4o-ratelimited", tokens=Tokens())),
}


@pytest.mark.parametrize(("name", "index", "expected"), VERCEL_CASES.values(), ids=VERCEL_CASES.keys())
def test_vercel_ai(name, index, expected):
    check(VERCEL_AI, name, index, expected)


def test_vercel_ai_counts_each_model_call_once():
    spans = load(VERCEL_AI)
    counted = [s for s in spans if s.tokens.any]
    assert {s.name for s in counted} == {"ai.generateText.doGenerate", "ai.streamText.doStream", "ai.embed.doEmbed"}
    assert sum(s.tokens.input for s in counted) == 120 + 120 + 50 + 8  # the outer spans' 240 + 50 + 8 not again


# --- LangChain 1.5 create_agent (a LangGraph graph) through OpenInference ---------------------

LANGCHAIN_CALL = Tokens(input=80, output=12, cache_read=64, reasoning=0)
LANGCHAIN_CASES = {
    "requested model from invocation parameters, served from llm.model_name": ("ChatOpenAI", 0, dict(
        category="llm", provider="openai", request_model="gpt-4o-mini", response_model="gpt-4o-mini-2024-07-18",
        tokens=LANGCHAIN_CALL, agent_name="researcher", session_id="sess-7")),
    "tool inside the agent": ("search", 0, dict(category="tool", tool_name="search", agent_name="researcher")),
    "the CHAIN named after lc_agent_name is the agent run": ("researcher", 0, dict(
        category="agent", operation="invoke_agent", agent_name="researcher", tokens=Tokens())),
    "graph nodes are workflow steps": ("model", 0, dict(category="workflow", agent_name="researcher")),
}


@pytest.mark.parametrize(("name", "index", "expected"), LANGCHAIN_CASES.values(), ids=LANGCHAIN_CASES.keys())
def test_langchain(name, index, expected):
    check(LANGCHAIN, name, index, expected)


# --- Traceloop SDK 0.62 (OpenLLMetry decorators + OpenAI instrumentation) ---------------------

TRACELOOP_CASES = {
    "model call inside @agent and @task": ("openai.chat", 0, dict(
        category="llm", provider="openai", request_model="gpt-4o-mini", response_model="gpt-4o-mini-2024-07-18",
        tokens=Tokens(input=40, output=6, cache_read=32, reasoning=0), agent_name="triage", session_id="sess-3",
        user_id="user-9")),
    "tool": ("search.tool", 0, dict(category="tool", tool_name="search", agent_name="triage")),
    "task is a workflow step": ("lookup.task", 0, dict(category="workflow", agent_name="triage")),
    "agent": ("triage.agent", 0, dict(category="agent", agent_name="triage", output='"Reset it in settings."')),
    "workflow": ("support.workflow", 0, dict(category="workflow", operation="invoke_workflow", agent_name=None)),
}


@pytest.mark.parametrize(("name", "index", "expected"), TRACELOOP_CASES.values(), ids=TRACELOOP_CASES.keys())
def test_traceloop(name, index, expected):
    check(TRACELOOP, name, index, expected)


def test_traceloop_step_names():
    steps = {s.name: step_name(s.attributes, s.name) for s in load(TRACELOOP) if s.category == "workflow"}
    assert steps == {"support.workflow": "support", "lookup.task": "lookup", "answer.task": "answer"}


# --- OpenAI Agents SDK 0.24 through three instrumentations -----------------------------------
# One run: Triage hands off to Billing, whose tool `refund` fails; three Responses API calls.

AGENTS_CALL = Tokens(input=200, output=40, cache_read=128, reasoning=16)
OPENINFERENCE_CASES = {
    "response": ("response", 0, dict(
        category="llm", provider="openai", request_model="gpt-4o-mini-2024-08-06",
        response_model="gpt-4o-mini-2024-08-06", tokens=AGENTS_CALL)),
    "handoff to X names source and target": ("handoff to Billing", 0, dict(
        category="tool", agent_name="Triage", tool_name="Billing")),
    "agent": ("Billing", 0, dict(category="agent", agent_name="Billing", tokens=Tokens())),
    "AGENT root without agent.name": ("Agent workflow", 1, dict(category="agent", agent_name="Agent workflow")),
    "failed tool": ("refund", 0, dict(category="tool", tool_name="refund", status="error", error_class="tool_error")),
}
LOGFIRE_CASES = {
    "Responses API: rendered name, reasoning from gen_ai.usage.raw": ("Responses API with 'gpt-4o-mini'", 0, dict(
        category="llm", provider="openai", request_model="gpt-4o-mini", response_model="gpt-4o-mini-2024-08-06",
        tokens=AGENTS_CALL)),
    "handoff": ("Handoff: Triage → Billing", 0, dict(category="tool", agent_name="Triage", tool_name="Billing")),
    "agent run": ("Agent run: 'Billing'", 0, dict(category="agent", agent_name="Billing")),
    "tool error from the error attribute": ("Function: refund failed: Error running tool (non-fatal)", 0, dict(
        category="tool", tool_name="refund", status="error", error_class="tool_error",
        input='{"order_id": "A-17"}', output="An error occurred while running the tool. Please try again.")),
    "trace root rendered": ("OpenAI Agents trace: Agent workflow", 0, dict(category="workflow")),
}
OPENLLMETRY_CASES = {
    "response": ("openai.response", 0, dict(
        category="llm", provider="openai", request_model=None, response_model="gpt-4o-mini-2024-08-06",
        tokens=AGENTS_CALL)),
    "handoff operation, target unknown to the source": ("Triage → unknown.handoff", 0, dict(
        category="tool", operation="handoff", agent_name="Triage", tool_name=None)),
    "agent": ("Billing.agent", 0, dict(category="agent", agent_name="Billing")),
    "failed tool": ("refund.tool", 0, dict(category="tool", tool_name="refund", status="error",
                                           error_class="tool_error")),
    "workflow": ("Agent Workflow", 0, dict(category="workflow")),
}
AGENTS_TABLE = [
    pytest.param(fixture, *case, id=f"{source}: {case_id}")
    for source, fixture, cases in (
        ("openinference", OPENINFERENCE, OPENINFERENCE_CASES), ("logfire", LOGFIRE, LOGFIRE_CASES),
        ("openllmetry", OPENLLMETRY, OPENLLMETRY_CASES),
    )
    for case_id, case in cases.items()
]


@pytest.mark.parametrize(("fixture", "name", "index", "expected"), AGENTS_TABLE)
def test_openai_agents_instrumentations(fixture, name, index, expected):
    check(fixture, name, index, expected)


@pytest.mark.parametrize(("fixture", "expected"), [
    (OPENINFERENCE, [("Billing", "handoff to Billing")]),
    (LOGFIRE, [("Agent run: 'Billing'", "Handoff: Triage → Billing")]),
    (OPENLLMETRY, [("Billing.agent", "Triage → unknown.handoff")]),
], ids=["openinference", "logfire", "openllmetry"])
def test_handoff_edge_from_each_source(fixture, expected):
    assert handoff_links(load(fixture)) == expected


@pytest.mark.parametrize("fixture", [OPENINFERENCE, LOGFIRE, OPENLLMETRY])
def test_three_model_calls_counted_once(fixture):
    counted = [s for s in load(fixture) if s.tokens.any]
    assert len(counted) == 3 and all(s.category == "llm" for s in counted)


def test_collector_pipeline_stores_the_derived_handoff_edge():
    from collector.body import JSON
    from collector.pipeline import prepare
    from core.otlp import Limits

    body = json.dumps(json.loads((SOURCES / OPENINFERENCE).read_text())["otlp"]).encode()
    prepared = prepare(body, JSON, project_id=1, limits=Limits(), overrides=())
    spans = {span.span_id: span.name for span in load(OPENINFERENCE)}
    assert [(spans[e[2]], e[3], spans[e[5]]) for e in prepared.edges] == [
        ("Billing", "handoff_from", "handoff to Billing")]


# --- smolagents 1.26 through openinference-instrumentation-smolagents 0.1.43 -----------------
# "manager" delegates to its managed agent "researcher" (tool `lookup` fails, then `search`), then a
# run whose model call is refused: smolagents never ends (so never sends) that run's root span.

SMOLAGENTS = "openinference-instrumentation-smolagents-0.1.43.json"
SMOL_CALL = Tokens(input=90, output=15)  # smolagents keeps no cache or reasoning counts
SMOLAGENTS_CASES = {
    "llm.model_name is the model asked for; no served model": ("OpenAIModel.generate", 0, dict(
        category="llm", provider="openai", request_model="gpt-4o-mini", response_model=None, tokens=SMOL_CALL,
        agent_name=None)),
    "the managed agent's model": ("OpenAIModel.generate", 1, dict(request_model="gpt-4o", tokens=SMOL_CALL)),
    "refused call: no model, no provider, class from the exception": ("OpenAIModel.generate", 5, dict(
        request_model=None, provider=None, status="error", error_type="openai.RateLimitError",
        error_class="rate_limited", tokens=Tokens())),
    "failed tool: the span is the class name, the tool is tool.name": ("SimpleTool", 0, dict(
        category="tool", tool_name="lookup", status="error", error_type="RuntimeError", error_class="tool_error")),
    "final answer is a tool": ("FinalAnswerTool", 0, dict(category="tool", tool_name="final_answer", status="ok")),
    "the step around the failed tool": ("Step 1", 0, dict(
        category="workflow", status="error", error_type="smolagents.utils.AgentToolExecutionError",
        error_class="tool_error")),
    "run span: the agent from its name; its run totals are not counted again": ("researcher.run", 0, dict(
        category="agent", agent_name="researcher", tokens=Tokens())),
    "the manager": ("manager.run", 0, dict(category="agent", agent_name="manager", parent_span_id=None)),
}


@pytest.mark.parametrize(("name", "index", "expected"), SMOLAGENTS_CASES.values(), ids=SMOLAGENTS_CASES.keys())
def test_smolagents(name, index, expected):
    check(SMOLAGENTS, name, index, expected)


def test_smolagents_model_calls_counted_once_and_the_failed_run_has_no_root():
    spans = load(SMOLAGENTS)
    assert sum(s.tokens.input or 0 for s in spans) == 5 * 90  # not the run spans' 270 + 180 again
    by_trace: dict[bytes, list[Span]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    failed = [run for run in by_trace.values() if any(s.error_class == "rate_limited" for s in run)]
    (run,) = failed
    ids = {s.span_id for s in run}
    assert [s.name for s in run if s.parent_span_id not in ids] == ["Step 1"]  # its parent never came
    assert not handoff_links(spans)  # delegation is nesting: no handoff span, no derived link


# --- CrewAI 1.15 through openinference-instrumentation-crewai 1.1.21 --------------------------
# Model calls from openinference-instrumentation-openai 0.1.66 (CrewAI's instrumentation makes none
# by default). A sequential crew: Researcher (tool `lookup` fails, then `search`), then Writer, who
# delegates a question to the Researcher with CrewAI's delegation tool.

CREWAI = "openinference-instrumentation-crewai-1.1.21.json"
CREWAI_CALL = Tokens(input=150, output=20, cache_read=128, reasoning=0)
CREWAI_CASES = {
    "model call: requested from invocation parameters, served from llm.model_name": ("ChatCompletion", 0, dict(
        category="llm", provider="openai", request_model="gpt-4o", response_model="gpt-4o-2024-08-06",
        tokens=CREWAI_CALL, agent_name=None)),
    "the Writer's model": ("ChatCompletion", 3, dict(request_model="gpt-4o-mini",
                                                     response_model="gpt-4o-mini-2024-07-18")),
    "task run is the agent, named by graph.node.id": ("Researcher._execute_core", 0, dict(
        category="agent", operation="invoke_agent", agent_name="Researcher", tokens=Tokens())),
    "failed tool": ("lookup.run", 0, dict(category="tool", tool_name="lookup", agent_name=None, status="error",
                                          error_type="RuntimeError", error_class="tool_error")),
    "delegation is a tool": ("Delegate work to coworker.run", 0, dict(
        category="tool", tool_name="Delegate work to coworker", agent_name=None)),
    "Writer names the agent before it": ("Writer._execute_core", 0, dict(category="agent", agent_name="Writer")),
}


@pytest.mark.parametrize(("name", "index", "expected"), CREWAI_CASES.values(), ids=CREWAI_CASES.keys())
def test_crewai(name, index, expected):
    check(CREWAI, name, index, expected)


def test_crewai_crew_span_is_a_workflow_and_calls_count_once():
    spans = load(CREWAI)
    (crew,) = [s for s in spans if s.name.startswith("Crew_") and s.name.endswith(".kickoff")]
    assert (crew.category, crew.agent_name, crew.parent_span_id) == ("workflow", None, None)
    counted = [s for s in spans if s.tokens.any]
    assert len(counted) == 8 and all(s.category == "llm" for s in counted)


def test_crewai_handoff_from_graph_node_parent_id():
    # no handoff span: the Writer's run links to the Researcher's run that ended before it started
    assert handoff_links(load(CREWAI)) == [("Writer._execute_core", "Researcher._execute_core")]


# --- attribution on the recorded CrewAI and smolagents runs (pure: core.attribution) ----------

def _verdicts(fixture: str) -> dict[str, Any]:
    """Run name (its top span, or the first span when the root never came) -> attribution."""
    from core.attribution import attribute
    from core.forensics_view import edges_of_spans, view_of_span

    spans = load(fixture)
    verdicts = {}
    for trace_id in {s.trace_id for s in spans}:
        mine = [s for s in spans if s.trace_id == trace_id]
        ids = {s.span_id for s in mine}
        top = next(s for s in mine if s.parent_span_id not in ids)
        verdicts[top.name] = attribute(trace_id, [view_of_span(s) for s in mine], edges_of_spans(mine))
    return verdicts


def test_smolagents_attribution():
    verdicts = _verdicts(SMOLAGENTS)
    delegating = verdicts["manager.run"]
    assert not delegating.failed and not delegating.root_missing
    assert [(f.tool_name, f.agent_name, f.error_class, f.recovered) for f in delegating.failures] == [
        ("lookup", "researcher", "tool_error", True)]
    refused = verdicts["Step 1"]  # smolagents never sent `solo.run`
    assert refused.root_missing and "root span missing" in refused.summary.lower()
    assert "did not fail" not in refused.summary
    assert [(f.error_class, f.recovered) for f in refused.failures] == [("rate_limited", False)]


def test_crewai_attribution():
    (crew,) = _verdicts(CREWAI).values()
    assert not crew.failed and not crew.root_missing
    # the delegated lookup ran inside the Writer's delegation tool: CrewAI sends no span of the coworker
    assert sorted((f.tool_name, f.agent_name, f.recovered) for f in crew.failures) == [
        ("lookup", "Researcher", True), ("lookup", "Writer", True)]
