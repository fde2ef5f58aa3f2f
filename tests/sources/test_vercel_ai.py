"""The Vercel AI SDK (npm `ai` with experimental_telemetry), installed with npm, exporting through
@opentelemetry/exporter-trace-otlp-http to a real collector: record_vercel_ai.mjs in export mode.
Four runs: generateText with a tool (two Responses API calls), streamText (Chat API, streamed),
embed, and a generateText whose call the fake server refuses with a 429."""

from __future__ import annotations

import pytest

from tests.sources import stored
from tests.sources.checks import check_clean_run, check_costs, check_edges, check_failed_run, check_model_calls
from tests.sources.conftest import DRIVERS, run_driver


@pytest.mark.slow
def test_vercel_ai_sdk(collector, sessionmaker, vercel_node_modules, tmp_path):
    out = run_driver(["node", str(DRIVERS / "record_vercel_ai.mjs")], collector, tmp_path,
                     {"NODE_PATH": str(vercel_node_modules)})
    assert out["versions"]["ai"] == "6.0.326"
    with sessionmaker() as session:
        rows = stored.spans(session, collector.project_id)
        # embed sends no served model (no ai.response.model on doEmbed)
        check_model_calls(rows, out["served"], request_model="requested", no_response_model=("ai.embed.doEmbed",))
        check_costs(rows, stored.traces(session, collector.project_id))
        check_edges(stored.edges(session, collector.project_id, rows), rows, set())
        failed_trace, refused = stored.failed_call_trace(rows)
        runs = stored.by_trace(rows)
        assert len(runs) == 4
        # The wrappers repeat their calls' usage: workflow steps, never counted again (check_costs).
        assert sorted(sorted(stored.summary(run)) for run in runs.values()) == sorted([
            [("ai.generateText", "workflow", None, None, "unset", None),
             ("ai.generateText.doGenerate", "llm", None, None, "unset", None),
             ("ai.toolCall", "tool", None, "get_weather", "unset", None)],
            [("ai.streamText", "workflow", None, None, "unset", None),
             ("ai.streamText.doStream", "llm", None, None, "unset", None)],
            [("ai.embed", "workflow", None, None, "unset", None),
             ("ai.embed.doEmbed", "embedding", None, None, "unset", None)],
            [("ai.generateText", "workflow", None, None, "error", "rate_limited"),
             ("ai.generateText.doGenerate", "llm", None, None, "error", "rate_limited")],
        ])
        for trace_id in set(runs) - {failed_trace}:
            check_clean_run(stored.verdict(session, collector.project_id, trace_id))
        check_failed_run(stored.verdict(session, collector.project_id, failed_trace), refused)
