"""CrewAI through openinference-instrumentation-crewai (model calls through
openinference-instrumentation-openai, as CrewAI's instrumentation makes none by default), installed
for real in its own venv, exporting to a real collector: record_crewai.py in export mode.
Two crews: "Researcher" (whose tool `lookup` raises; CrewAI tells the model, which calls `search`)
then "Writer", who delegates a question to the Researcher with CrewAI's delegation tool; then a
crew whose model call the fake server refuses with a 429."""

from __future__ import annotations

import pytest

from tests.sources import stored
from tests.sources.checks import check_costs, check_edges, check_model_calls
from tests.sources.conftest import DRIVERS, run_driver

CREW = "Crew_<id>.kickoff"  # the crew span is named after the crew's generated id
# (name, category, agent, tool, status, error class) of every span of the crew. Model calls and
# tools carry no agent: the enclosing `<role>._execute_core` span names it.
CREW_RUN = {
    (CREW, "workflow", None, None, "ok", None),
    ("Researcher._execute_core", "agent", "Researcher", None, "ok", None),
    ("Writer._execute_core", "agent", "Writer", None, "ok", None),
    ("ChatCompletion", "llm", None, None, "ok", None),
    ("lookup.run", "tool", None, "lookup", "error", "tool_error"),
    ("search.run", "tool", None, "search", "ok", None),
    # the delegated work (the Researcher's model calls and tools) runs inside this span
    ("Delegate work to coworker.run", "tool", None, "Delegate work to coworker", "ok", None),
}


def _summary(rows) -> set[tuple]:
    return {((CREW if name.startswith("Crew_") and name.endswith(".kickoff") else name), *rest)
            for name, *rest in stored.summary(rows)}


@pytest.mark.slow
def test_crewai_through_openinference(collector, sessionmaker, crewai_python, tmp_path):
    # HOME: CrewAI keeps a key, its settings and a kickoff database there. One span per export: the
    # Writer's run and the Researcher's arrive apart, so the handoff is derived at read time (how
    # one export links them at ingest is tests/unit/test_sources.py's test_crewai_handoff_*), and
    # the test no longer depends on when the batch processor happens to flush.
    out = run_driver([str(crewai_python), str(DRIVERS / "record_crewai.py")], collector, tmp_path,
                     extra_env={"HOME": str(tmp_path), "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1"})
    assert out["versions"]["openinference-instrumentation-crewai"] == "1.1.21"
    assert out["versions"]["crewai"] == "1.15.30"
    with sessionmaker() as session:
        rows = stored.spans(session, collector.project_id)
        # llm.invocation_parameters has the model asked for, llm.model_name the one served; a refused
        # call carries no model, only the provider
        check_model_calls(rows, out["served"], request_model="requested", refused_unnamed=("model",))
        check_costs(rows, stored.traces(session, collector.project_id))
        refused_calls = [r for r in rows if r.category == "llm" and r.error_class == "rate_limited"]
        (failed_trace,) = {r.trace_id for r in refused_calls}
        runs = stored.by_trace(rows)
        (crew_trace,) = set(runs) - {failed_trace}
        assert _summary(runs[crew_trace]) == CREW_RUN
        # The Writer took over from the Researcher (graph.node.parent_id; CrewAI sends no handoff span).
        check_edges(stored.edges(session, collector.project_id, rows), rows,
                    {("Writer._execute_core", "Researcher._execute_core")})

        crew = stored.verdict(session, collector.project_id, crew_trace)
        assert not crew.failed and not crew.root_missing, crew.summary
        # The delegated lookup ran inside the Writer's delegation tool (CrewAI sends no span of the
        # coworker's own): its failure is the Writer's.
        failures = sorted((f.agent_name, f.tool_name, f.error_class, f.recovered) for f in crew.failures)
        assert failures == [("Researcher", "lookup", "tool_error", True), ("Writer", "lookup", "tool_error", True)]

        # CrewAI tries a rate-limited call 3 times: three refused calls, each a root cause, none
        # recovered; the agent and the crew fail with them.
        assert len(refused_calls) == 3
        assert _summary(runs[failed_trace]) == {
            (CREW, "workflow", None, None, "error", "rate_limited"),
            ("Solo._execute_core", "agent", "Solo", None, "error", "rate_limited"),
            ("ChatCompletion", "llm", None, None, "error", "rate_limited"),
        }
        failed = stored.verdict(session, collector.project_id, failed_trace)
        assert failed.failed and not failed.root_missing, failed.summary
        assert {f.root_cause.span_id for f in failed.failures} == {r.span_id for r in refused_calls}
        verdicts = {(f.agent_name, f.error_class, f.recovered) for f in failed.failures}
        assert verdicts == {("Solo", "rate_limited", False)}
