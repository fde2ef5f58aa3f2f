"""smolagents through openinference-instrumentation-smolagents, installed for real, exporting to a
real collector: record_smolagents.py in export mode. Two runs: "manager" delegates to its managed
agent "researcher", whose tool `lookup` raises (smolagents tells the model, which calls `search`
and answers: recovered); then a run whose only model call the fake server refuses with a 429,
where smolagents never sends the run's root span."""

from __future__ import annotations

import pytest

from tests.sources import stored
from tests.sources.checks import check_costs, check_edges, check_model_calls
from tests.sources.conftest import DRIVERS, run_driver

# (name, category, agent, tool, status, error class) of every span of the delegating run. Steps
# and model calls carry no agent (the enclosing `<agent>.run` span names it); the managed agent's
# run is a child of the manager's step: delegation is nesting, there is no handoff span.
DELEGATING_RUN = {
    ("manager.run", "agent", "manager", None, "ok", None),
    ("researcher.run", "agent", "researcher", None, "ok", None),
    ("Step 1", "workflow", None, None, "ok", None),
    # the step whose tool failed ends in error, although smolagents recovered from it
    ("Step 1", "workflow", None, None, "error", "tool_error"),
    ("Step 2", "workflow", None, None, "ok", None),
    ("Step 3", "workflow", None, None, "ok", None),
    ("OpenAIModel.generate", "llm", None, None, "ok", None),
    ("SimpleTool", "tool", None, "lookup", "error", "tool_error"),
    ("SimpleTool", "tool", None, "search", "ok", None),
    ("FinalAnswerTool", "tool", None, "final_answer", "ok", None),
}
FAILED_RUN = {  # no `solo.run`: smolagents never ends it when the run raises
    ("Step 1", "workflow", None, None, "error", "rate_limited"),
    ("OpenAIModel.generate", "llm", None, None, "error", "rate_limited"),
}


@pytest.mark.slow
def test_smolagents_through_openinference(collector, sessionmaker, sources_python, tmp_path):
    out = run_driver([str(sources_python), str(DRIVERS / "record_smolagents.py")], collector, tmp_path)
    assert out["versions"]["openinference-instrumentation-smolagents"] == "0.1.43"
    assert out["versions"]["smolagents"] == "1.26.0"
    with sessionmaker() as session:
        rows = stored.spans(session, collector.project_id)
        # llm.model_name is the model asked for; no served model, no cache or reasoning tokens, and
        # nothing but the error on a refused call.
        check_model_calls(rows, out["served"], request_model="requested", no_response_model=("OpenAIModel.generate",),
                          unsent_tokens=("cache_read", "reasoning"), refused_unnamed=("model", "provider"))
        check_costs(rows, stored.traces(session, collector.project_id))
        failed_trace, refused = stored.failed_call_trace(rows)
        runs = stored.by_trace(rows)
        (ok_trace,) = set(runs) - {failed_trace}
        assert stored.summary(runs[ok_trace]) == DELEGATING_RUN
        assert stored.summary(runs[failed_trace]) == FAILED_RUN
        models = [(r.request_model, r.response_model) for r in runs[ok_trace] if r.category == "llm"]
        assert sorted(models) == [("gpt-4o", None)] * 3 + [("gpt-4o-mini", None)] * 2
        check_edges(stored.edges(session, collector.project_id, rows), rows, set())
        (researcher,) = [r for r in runs[ok_trace] if r.name == "researcher.run"]
        (manager,) = [r for r in runs[ok_trace] if r.name == "manager.run"]
        (delegating_step,) = [r for r in runs[ok_trace] if r.span_id == researcher.parent_span_id]
        assert delegating_step.parent_span_id == manager.span_id

        # The failed tool was reported to the model, which answered: recovered, the run did not fail.
        delegating = stored.verdict(session, collector.project_id, ok_trace)
        assert not delegating.failed and not delegating.root_missing, delegating.summary
        (failure,) = delegating.failures
        assert (failure.tool_name, failure.error_class, failure.recovered) == ("lookup", "tool_error", True)
        assert failure.agent_name == "researcher"

        # The refused run: its root never arrived. The verdict must say so, not "did not fail".
        failed = stored.verdict(session, collector.project_id, failed_trace)
        assert failed.root_missing, failed.summary
        assert "root span missing" in failed.summary.lower(), failed.summary
        assert "did not fail" not in failed.summary, failed.summary
        (failure,) = failed.failures
        assert failure.root_cause.span_id == refused.span_id and failure.error_class == "rate_limited"
        assert not failure.recovered
