"""Checks shared by the per-source tests: the stored model calls against what the fake model
server really served (models, tokens by kind, cost, errors), and attribution verdicts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.attribution import TraceAttribution
from db.models import SpanRow, TraceRow

# Models the price catalogue knows; the fake servers also answer with snapshots that do not exist
# (e.g. gpt-4o-mini-2024-08-06) and the refused gpt-4o-ratelimited: those calls must stay unpriced.
PRICED = {"gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "text-embedding-3-small"}


def served_tokens(usage: dict) -> dict[str, int | None]:
    """Tokens by kind as the fake server reported them (Chat Completions or Responses API usage)."""
    input_details = usage.get("input_tokens_details") or usage.get("prompt_tokens_details") or {}
    output_details = usage.get("output_tokens_details") or usage.get("completion_tokens_details") or {}
    return {"input": usage.get("input_tokens", usage.get("prompt_tokens")),
            "output": usage.get("output_tokens", usage.get("completion_tokens")),
            "cache_read": input_details.get("cached_tokens"), "reasoning": output_details.get("reasoning_tokens")}


def stored_tokens(row: SpanRow) -> dict[str, int | None]:
    return {"input": row.input_tokens, "output": row.output_tokens, "cache_read": row.cache_read_tokens,
            "reasoning": row.reasoning_tokens}


def check_model_calls(rows: list[SpanRow], served: list[dict], *, request_model: str | None,
                      no_response_model: tuple[str, ...] = (), unsent_tokens: tuple[str, ...] = (),
                      refused_unnamed: tuple[str, ...] = ()) -> list[SpanRow]:
    """One stored model call per request the fake server answered, in order: served tokens counted
    once, the served model, the requested one as far as the source sends it (`request_model`:
    "requested", "served" when the source reports only the served model there, None when it sends
    none), a refused call stored as a rate-limited error without tokens. `no_response_model`: names
    of the spans on which the source sends no served model; `unsent_tokens`: kinds of tokens the
    source never sends (stored as unknown, not 0); `refused_unnamed`: what the source does not send
    on a refused call ("model", "provider"). Returns the calls."""
    calls = sorted((r for r in rows if r.category in ("llm", "embedding")), key=lambda r: (r.start_ns, r.span_id))
    assert len(calls) == len(served), ([c.name for c in calls], served)
    for call, answer in zip(calls, served):
        where = f"{call.name} <- {answer}"
        if answer["status"] == 200:
            assert call.status != "error", where
            expected_tokens = served_tokens(answer["usage"]) | dict.fromkeys(unsent_tokens)
            assert stored_tokens(call) == expected_tokens, where
            assert call.response_model == (None if call.name in no_response_model else answer["served"]), where
            expected = {"requested": answer["requested"], "served": answer["served"], None: None}[request_model]
        else:
            assert answer["status"] == 429
            assert (call.status, call.error_class) == ("error", "rate_limited"), where
            assert stored_tokens(call) == dict.fromkeys(("input", "output", "cache_read", "reasoning")), where
            expected = answer["requested"] if request_model == "requested" and "model" not in refused_unnamed else None
        assert call.request_model == expected, where
        unnamed = answer["status"] != 200 and "provider" in refused_unnamed
        assert call.provider == (None if unnamed else "openai"), where
    return calls


def check_costs(rows: list[SpanRow], traces: list[TraceRow]) -> None:
    """Each call priced from the catalogue when its model is known there, else unpriced (never $0);
    the trace rollups add up the stored calls, each once."""
    for row in rows:
        if row.category not in ("llm", "embedding"):
            assert row.cost_usd is None and row.input_tokens is None, row.name  # wrappers repeat no usage
            continue
        models = {row.request_model, row.response_model} - {None}
        if row.input_tokens and models & PRICED:
            assert row.cost_source.startswith("genai-prices") and row.cost_usd > 0, (row.name, models)
        else:
            assert (row.cost_source, row.cost_usd) == ("unpriced", None), (row.name, models)
    for trace in traces:
        mine = [r for r in rows if r.trace_id == trace.trace_id]
        calls = [r for r in mine if r.category in ("llm", "embedding")]
        assert trace.span_count == len(mine)
        assert trace.llm_calls == len(calls)
        assert trace.unpriced_calls == sum(1 for r in calls if r.cost_source == "unpriced")
        assert trace.input_tokens == sum(r.input_tokens or 0 for r in calls)
        assert trace.reasoning_tokens == sum(r.reasoning_tokens or 0 for r in calls)
        assert trace.cost_usd == sum((r.cost_usd or Decimal(0) for r in calls), Decimal(0))


def check_clean_run(attribution: TraceAttribution) -> None:
    assert not attribution.failed and not attribution.failures and not attribution.root_missing, attribution.summary


def check_failed_run(attribution: TraceAttribution, root_cause: SpanRow, *, known_wrong: str | None = None) -> None:
    """The refused model call is the one root cause, not recovered, and the run failed.
    `known_wrong`: why today's verdict is wrong (then the test is an expected failure, and fails
    loudly once the verdict is right, so the marker gets removed)."""
    right = (attribution.failed and len(attribution.failures) == 1
             and attribution.failures[0].root_cause.span_id == root_cause.span_id
             and attribution.failures[0].error_class == "rate_limited"
             and not attribution.failures[0].recovered)
    if known_wrong:
        assert not right, f"the verdict is right now: drop known_wrong ({known_wrong})"
        pytest.xfail(f"{known_wrong}; today: {attribution.summary}")
    assert right, attribution.summary


def check_edges(edges, rows: list[SpanRow], handoffs: set[tuple[str, str]]) -> None:
    """A parent edge for every span that names its parent, and exactly the expected
    (receiving agent span, handoff span) handoff_from edges."""
    assert sum(n for (_, relation, _), n in edges.items() if relation == "parent") == sum(
        1 for r in rows if r.parent_span_id)
    assert {(span, linked) for (span, relation, linked), n in edges.items() for _ in range(n)
            if relation == "handoff_from"} == handoffs
    assert sum(n for (_, relation, _), n in edges.items() if relation == "handoff_from") == len(handoffs)
    assert {relation for (_, relation, _) in edges} <= {"parent", "handoff_from"}
