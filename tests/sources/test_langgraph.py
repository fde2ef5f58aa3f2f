"""LangChain v1 `create_agent` (a LangGraph graph) through openinference-instrumentation-langchain,
installed for real, exporting to a real collector: record_langgraph.py in export mode."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.sources import stored
from tests.sources.checks import check_clean_run, check_costs, check_failed_run, check_model_calls
from tests.sources.conftest import DRIVERS, run_driver


@pytest.mark.slow
def test_langgraph_through_openinference(collector, sessionmaker, sources_python, tmp_path):
    out = run_driver([str(sources_python), str(DRIVERS / "record_langgraph.py")], collector, tmp_path)
    assert out["versions"]["openinference-instrumentation-langchain"] == "0.1.80"
    with sessionmaker() as session:
        rows = stored.spans(session, collector.project_id)
        check_model_calls(rows, out["served"], request_model="requested")
        check_costs(rows, stored.traces(session, collector.project_id))
        failed_trace, refused = stored.failed_call_trace(rows)
        runs = stored.by_trace(rows)
        (ok_trace,) = set(runs) - {failed_trace}
        # The agent run: the CHAIN named after lc_agent_name is the agent; graph nodes are steps.
        assert stored.summary(runs[ok_trace]) == {
            ("researcher", "agent", "researcher", None, "ok", None),
            ("model", "workflow", "researcher", None, "ok", None),
            ("ChatOpenAI", "llm", "researcher", None, "ok", None),
            ("tools", "workflow", "researcher", None, "ok", None),
            ("search", "tool", "researcher", "search", "ok", None),
        }
        assert {r.session_id for r in runs[ok_trace]} == {"sess-7"}
        assert stored.summary(runs[failed_trace]) == {
            ("researcher", "agent", "researcher", None, "error", "rate_limited"),
            ("model", "workflow", "researcher", None, "error", "rate_limited"),
            ("ChatOpenAI", "llm", "researcher", None, "error", "rate_limited"),
        }
        assert stored.edges(session, collector.project_id, rows) == Counter({
            ("ChatOpenAI", "parent", "model"): 3, ("model", "parent", "researcher"): 3,
            ("search", "parent", "tools"): 1, ("tools", "parent", "researcher"): 1})
        check_clean_run(stored.verdict(session, collector.project_id, ok_trace))
        check_failed_run(stored.verdict(session, collector.project_id, failed_trace), refused)
