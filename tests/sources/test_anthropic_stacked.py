"""Stacked instrumentation: the Anthropic Python client records its own GenAI spans (it uses the
global tracer provider) and openinference-instrumentation-anthropic records the same call again,
the client's span nested in OpenInference's. Both installed for real, exporting to a real
collector: record_anthropic_stacked.py in export mode."""

from __future__ import annotations

import pytest

from tests.sources import stored
from tests.sources.checks import check_clean_run, check_edges
from tests.sources.conftest import DRIVERS, run_driver

CLIENT, OPENINFERENCE = "anthropic.messages.create", "messages.create"


@pytest.mark.slow
def test_anthropic_client_spans_under_openinference(collector, sessionmaker, sources_python, tmp_path):
    out = run_driver([str(sources_python), str(DRIVERS / "record_anthropic_stacked.py")], collector, tmp_path)
    assert out["versions"]["anthropic"] == "2.15.0"
    (answered, refused) = out["served"]
    assert (answered["status"], refused["status"]) == (200, 429)
    usage = answered["usage"]
    # Anthropic's input_tokens leaves out the cache; stored input tokens include cache reads and writes.
    served_input = usage["input_tokens"] + usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"]
    with sessionmaker() as session:
        rows = stored.spans(session, collector.project_id)
        check_edges(stored.edges(session, collector.project_id, rows), rows, set())
        failed_trace = next(r.trace_id for r in rows if r.status == "error")
        runs = stored.by_trace(rows)
        (ok_trace,) = set(runs) - {failed_trace}
        ok = {r.name: r for r in runs[ok_trace]}
        assert set(ok) == {"invoke_agent assistant", OPENINFERENCE, CLIENT}
        assert ok[CLIENT].parent_span_id == ok[OPENINFERENCE].span_id  # the client's span inside OpenInference's
        for name in (CLIENT, OPENINFERENCE):  # both spans are the one call the fake server answered
            call = ok[name]
            assert (call.category, call.provider, call.request_model, call.response_model) == (
                "llm", "anthropic", answered["requested"], answered["served"]), name
            assert (call.input_tokens, call.output_tokens, call.cache_read_tokens, call.cache_write_tokens) == (
                served_input, usage["output_tokens"], usage["cache_read_input_tokens"],
                usage["cache_creation_input_tokens"]), name
            assert call.cost_source.startswith("genai-prices") and call.cost_usd > 0, name
        (trace,) = [t for t in stored.traces(session, collector.project_id) if t.trace_id == ok_trace]
        # One call counts once (core/model_call_dedup.py): both spans stay stored, one marked as not
        # counted, nested in the other, and the trace's totals hold the call once.
        assert (trace.llm_calls, trace.input_tokens) == (1, served_input)
        assert trace.cost_usd == ok[CLIENT].cost_usd == ok[OPENINFERENCE].cost_usd
        marks = {name: (ok[name].duplicate_of, ok[name].duplicate_reason) for name in (CLIENT, OPENINFERENCE)}
        (counted,) = [name for name, (of, _) in marks.items() if of is None]
        (other,) = {CLIENT, OPENINFERENCE} - {counted}
        assert marks[other] == (ok[counted].span_id, "nested"), marks
        check_clean_run(stored.verdict(session, collector.project_id, ok_trace))

        failed = {r.name: r for r in runs[failed_trace]}
        assert {(n, r.category, r.status, r.error_class, r.request_model) for n, r in failed.items()} == {
            ("invoke_agent assistant", "agent", "error", "rate_limited", None),
            (OPENINFERENCE, "llm", "error", "rate_limited", refused["requested"]),
            (CLIENT, "llm", "error", "rate_limited", refused["requested"]),
        }
        assert all(r.input_tokens is None and r.cost_source == "unpriced" for r in failed.values() if r.category == "llm")
        attribution = stored.verdict(session, collector.project_id, failed_trace)
        assert attribution.failed, attribution.summary
        (failure,) = attribution.failures
        assert failure.root_cause.span_id == failed[CLIENT].span_id  # the innermost: the client's own span
        assert (failure.error_class, failure.recovered) == ("rate_limited", False)
