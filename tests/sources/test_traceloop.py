"""The Traceloop SDK (OpenLLMetry: @workflow/@agent/@task/@tool and its OpenAI instrumentation),
installed for real, exporting to a real collector: record_traceloop.py in export mode. Two runs of
the workflow; in the second the fake server refuses the model call with a 429 and it raises."""

from __future__ import annotations

import pytest

from tests.sources import stored
from tests.sources.checks import check_clean_run, check_costs, check_edges, check_failed_run, check_model_calls
from tests.sources.conftest import DRIVERS, run_driver


@pytest.mark.slow
def test_traceloop_sdk(collector, sessionmaker, sources_python, tmp_path):
    out = run_driver([str(sources_python), str(DRIVERS / "record_traceloop.py")], collector, tmp_path)
    assert out["versions"]["traceloop-sdk"] == "0.62.4"
    with sessionmaker() as session:
        rows = stored.spans(session, collector.project_id)
        check_model_calls(rows, out["served"], request_model="requested")
        check_costs(rows, stored.traces(session, collector.project_id))
        check_edges(stored.edges(session, collector.project_id, rows), rows, set())
        failed_trace, refused = stored.failed_call_trace(rows)
        runs = stored.by_trace(rows)
        (ok_trace,) = set(runs) - {failed_trace}
        assert stored.summary(runs[ok_trace]) == {
            ("support.workflow", "workflow", None, None, "unset", None),
            ("triage.agent", "agent", "triage", None, "unset", None),
            ("lookup.task", "workflow", "triage", None, "unset", None),
            ("search.tool", "tool", "triage", "search", "unset", None),
            ("answer.task", "workflow", "triage", None, "unset", None),
            ("openai.chat", "llm", "triage", None, "unset", None),
        }
        assert {(r.session_id, r.user_id) for r in runs[ok_trace] if r.category == "llm"} == {("sess-3", "user-9")}
        assert stored.summary(runs[failed_trace]) == {
            ("support.workflow", "workflow", None, None, "error", "rate_limited"),
            ("triage.agent", "agent", "triage", None, "error", "rate_limited"),
            ("lookup.task", "workflow", "triage", None, "unset", None),
            ("search.tool", "tool", "triage", "search", "unset", None),
            ("answer.task", "workflow", "triage", None, "error", "rate_limited"),
            ("openai.chat", "llm", "triage", None, "error", "rate_limited"),
        }
        check_clean_run(stored.verdict(session, collector.project_id, ok_trace))
        check_failed_run(stored.verdict(session, collector.project_id, failed_trace), refused)
