"""Scenarios the SDK cannot express, as hand-made OTLP: a cycle in links across two traces,
and a trace that carries only OpenInference attributes."""

from __future__ import annotations

from tests.otlp_payloads import request, span, span_id, trace_id

MS = 1_000_000
CYCLE_A, CYCLE_B = trace_id(), trace_id()
A_ROOT, A1, B_ROOT, B1 = span_id(), span_id(), span_id(), span_id()
OI_TRACE = trace_id()
OI_AGENT, OI_CHAIN, OI_LLM, OI_TOOL = span_id(), span_id(), span_id(), span_id()


def requests(base_ns: int) -> list:
    from tests.forensics.conftest import add_event

    data = {"causeline.link.type": "data_from"}
    cycle = request([
        span(CYCLE_A, A_ROOT, name="cycle-a", start=base_ns, duration=100 * MS, status=2, message="failed",
             attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "cycle-a"}),
        span(CYCLE_A, A1, parent=A_ROOT, name="chat gpt-4o", start=base_ns + 10 * MS, duration=20 * MS, status=2,
             message="Error code: 503 - upstream unavailable",
             attributes={"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                         "gen_ai.request.model": "gpt-4o"},
             links=[(CYCLE_B, B1, data)]),
        span(CYCLE_B, B_ROOT, name="cycle-b", start=base_ns, duration=100 * MS, status=2, message="failed",
             attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "cycle-b"}),
        span(CYCLE_B, B1, parent=B_ROOT, name="execute_tool enrich", start=base_ns + 40 * MS, duration=20 * MS,
             status=2, message="enrichment failed",
             attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "enrich"},
             links=[(CYCLE_A, A1, data)]),
    ], service="cycle-service")

    agent = span(OI_TRACE, OI_AGENT, name="support-agent", start=base_ns, duration=200 * MS, status=2,
                 message="agent failed", attributes={"openinference.span.kind": "AGENT", "agent.name": "support"})
    chain = span(OI_TRACE, OI_CHAIN, parent=OI_AGENT, name="answer-chain", start=base_ns + 5 * MS,
                 duration=150 * MS, status=2, message="chain failed",
                 attributes={"openinference.span.kind": "CHAIN"})
    llm = span(OI_TRACE, OI_LLM, parent=OI_CHAIN, name="ChatCompletion", start=base_ns + 60 * MS,
               duration=30 * MS, status=2, message="Error code: 429 - Rate limit reached",
               attributes={"openinference.span.kind": "LLM", "llm.provider": "openai",
                           "llm.model_name": "gpt-4o-mini", "llm.token_count.prompt": 1200,
                           "llm.token_count.completion": 0})
    add_event(llm, "exception", base_ns + 90 * MS, {"exception.type": "openai.RateLimitError",
                                                    "exception.message": "Rate limit reached for gpt-4o-mini"})
    tool = span(OI_TRACE, OI_TOOL, parent=OI_CHAIN, name="search_kb", start=base_ns + 10 * MS, duration=40 * MS,
                status=1, attributes={"openinference.span.kind": "TOOL", "tool.name": "search_kb"})
    openinference = request([agent, chain, llm, tool], service="oi-service")
    return [cycle, openinference]
