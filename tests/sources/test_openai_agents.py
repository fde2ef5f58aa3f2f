"""The OpenAI Agents SDK through three instrumentations (OpenInference, Logfire, OpenLLMetry),
installed for real, exporting to a real collector: record_openai_agents.py in export mode.
Two runs: Triage hands off to Billing, whose tool `refund` raises (the SDK tells the model, which
answers: recovered); then a run whose only model call the fake server refuses with a 429."""

from __future__ import annotations

import pytest

from tests.sources import stored
from tests.sources.checks import check_costs, check_edges, check_failed_run, check_model_calls
from tests.sources.conftest import DRIVERS, run_driver

# The handoff run, per instrumentation: (name, category, agent, tool, status, error class) of
# every span. Model calls carry no agent: none of the three puts one on them (the enclosing agent
# span names it).
OPENINFERENCE = {
    ("Agent workflow", "agent", "Agent workflow", None, "ok", None),  # the AGENT root, named after the trace
    ("Agent workflow", "workflow", None, None, "ok", None),
    ("Triage", "agent", "Triage", None, "ok", None),
    ("turn", "workflow", None, None, "ok", None),
    ("response", "llm", None, None, "ok", None),
    ("handoff to Billing", "tool", "Triage", "Billing", "ok", None),
    ("Billing", "agent", "Billing", None, "ok", None),
    ("refund", "tool", None, "refund", "error", "tool_error"),
}
LOGFIRE = {
    ("OpenAI Agents trace: Agent workflow", "workflow", None, None, "unset", None),
    ("Task: Agent workflow", "workflow", None, None, "unset", None),  # tasks and turns: wrappers
    ("Agent run: 'Triage'", "agent", "Triage", None, "unset", None),
    ("Turn 1 for agent Triage", "workflow", "Triage", None, "unset", None),
    ("Responses API with 'gpt-4o-mini'", "llm", None, None, "unset", None),
    ("Handoff: Triage → Billing", "tool", "Triage", "Billing", "unset", None),
    ("Agent run: 'Billing'", "agent", "Billing", None, "unset", None),
    ("Turn 2 for agent Billing", "workflow", "Billing", None, "unset", None),
    ("Turn 3 for agent Billing", "workflow", "Billing", None, "unset", None),
    ("Responses API with 'gpt-4o'", "llm", None, None, "unset", None),
    ("Function: refund failed: Error running tool (non-fatal)", "tool", None, "refund", "error", "tool_error"),
}
OPENLLMETRY = {
    ("Agent Workflow", "workflow", None, None, "ok", None),
    ("Triage.agent", "agent", "Triage", None, "ok", None),
    ("openai.response", "llm", None, None, "ok", None),
    ("Triage → unknown.handoff", "tool", "Triage", None, "ok", None),  # made before the target is known
    ("Billing.agent", "agent", "Billing", None, "ok", None),
    ("refund.tool", "tool", None, "refund", "error", "tool_error"),
}
CASES = {
    # via: (spans of the handoff run, handoff edge, what request_model holds, known wrong verdict)
    "openinference": (OPENINFERENCE, ("Billing", "handoff to Billing"), "served", None),
    "logfire": (LOGFIRE, ("Agent run: 'Billing'", "Handoff: Triage → Billing"), "requested", None),
    "openllmetry": (OPENLLMETRY, ("Billing.agent", "Triage → unknown.handoff"), None, None),
}


@pytest.mark.slow
@pytest.mark.parametrize("via", CASES)
def test_openai_agents(via, collector, sessionmaker, sources_python, tmp_path):
    spans, handoff, request_model, known_wrong = CASES[via]
    out = run_driver([str(sources_python), str(DRIVERS / "record_openai_agents.py"), via], collector, tmp_path)
    assert out["versions"]["openai-agents"] == "0.24.0"
    with sessionmaker() as session:
        rows = stored.spans(session, collector.project_id)
        check_model_calls(rows, out["served"], request_model=request_model)
        check_costs(rows, stored.traces(session, collector.project_id))
        failed_trace, refused = stored.failed_call_trace(rows)
        runs = stored.by_trace(rows)
        (handoff_trace,) = set(runs) - {failed_trace}
        assert stored.summary(runs[handoff_trace]) == spans
        check_edges(stored.edges(session, collector.project_id, rows), rows, {handoff})

        # The failed tool was reported to the model, which answered: recovered, the run did not fail.
        handoff_run = stored.verdict(session, collector.project_id, handoff_trace)
        assert not handoff_run.failed and not handoff_run.root_missing
        ((failure),) = handoff_run.failures
        assert (failure.tool_name, failure.error_class, failure.recovered) == ("refund", "tool_error", True)
        assert failure.agent_name == "Billing"

        failed_agents = {r.agent_name for r in runs[failed_trace] if r.category == "agent" and r.status == "error"}
        assert failed_agents == {"Triage"}
        check_failed_run(stored.verdict(session, collector.project_id, failed_trace), refused, known_wrong=known_wrong)
