"""The nine failure scenarios of issue 4, each driven through the real collector (SDK in a
subprocess, or hand-made OTLP), with the verdict of /api/traces/{id}/attribution asserted exactly."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from db.queries.auth import create_api_key, create_project
from db.queries.forensics import attribute_pending
from tests.forensics import otlp_scenarios as oi


def names(items) -> list[str]:
    return [item["name"] for item in items]


def verdict(failure: dict) -> dict:
    """The parts of a failure a scenario pins down (timing-dependent numbers aside)."""
    blast = failure["blast_radius"]
    return {
        "root": failure["root_cause"]["name"], "class": failure["error_class"],
        "path": names(failure["propagation_path"]), "recovered": failure["recovered"],
        "recovery": failure["recovery"],
        "by": failure["recovered_by"] and failure["recovered_by"]["name"],
        "top": failure["reached_top"], "confidence": failure["confidence"],
        "consumers": names(blast["data_consumers"]), "failed_ancestors": names(blast["failed_ancestors"]),
        "skipped": blast["skipped_steps"],
        "output_of": failure["output_of"] and failure["output_of"]["name"],
    }


def only_failure(env, root_name: str, *, failed: bool, traces: int = 1) -> dict:
    body = env.attribution(root_name)
    assert body["failed"] is failed
    assert len(body["traces"]) == traces
    assert len(body["failures"]) == 1, body["failures"]
    return body["failures"][0]


def test_provider_timeout_recovered_by_fallback(scenario_env):
    failure = only_failure(scenario_env, "invoke_agent s1-fallback", failed=False)
    assert verdict(failure) == {
        "root": "chat gpt-4o", "class": "timeout", "path": ["chat gpt-4o"], "recovered": True,
        "recovery": "fallback_of", "by": "chat claude-sonnet-4-5", "top": False, "confidence": 0.9,
        "consumers": [], "failed_ancestors": [], "skipped": [], "output_of": None,
    }
    assert failure["evidence"][:2] == ["error.type=TimeoutError", "exception.type=TimeoutError"]
    assert "recovered: 'chat claude-sonnet-4-5' (fallback_of) did not fail" in failure["evidence"]
    burned = failure["burned"]
    assert burned["tokens"]["input"] == 500 and burned["total_tokens"] == 500
    assert burned["cost_usd"] not in ("0", None) and burned["unpriced_calls"] == 0  # 500 gpt-4o input tokens, priced
    assert burned["duration_ns"] > 0
    assert failure["grouping"] == {"service": "forensics-agent", "agent": "s1-fallback", "tool": None,
                                   "provider": "openai", "request_model": "gpt-4o", "response_model": None,
                                   "step": "chat gpt-4o"}


def test_rate_limit_exhausting_retries(scenario_env):
    failure = only_failure(scenario_env, "invoke_agent s2-retries", failed=True)
    assert verdict(failure) == {
        "root": "chat gpt-4o", "class": "rate_limited",
        "path": ["chat gpt-4o", "chat gpt-4o", "chat gpt-4o", "invoke_workflow answer", "invoke_agent s2-retries"],
        "recovered": False, "recovery": None, "by": None, "top": True, "confidence": 0.9,
        "consumers": [], "failed_ancestors": ["invoke_workflow answer", "invoke_agent s2-retries"], "skipped": [],
        "output_of": None,
    }
    assert failure["burned"]["tokens"]["input"] == 300  # all three attempts
    assert "propagated to 'chat gpt-4o' (the retry failed the same way (retry_of))" in failure["evidence"]
    assert len(failure["failed_spans"]) == 5


def test_malformed_output_caught_by_validation_guardrail(scenario_env):
    failure = only_failure(scenario_env, "invoke_agent s3-guardrail", failed=False)
    assert verdict(failure) == {
        "root": "apply_guardrail order-json-schema", "class": "invalid_output",
        "path": ["apply_guardrail order-json-schema"], "recovered": True, "recovery": "retry_of",
        "by": "chat gpt-4o-mini", "top": False, "confidence": 0.95, "consumers": [], "failed_ancestors": [],
        "skipped": [], "output_of": "chat gpt-4o-mini",
    }
    assert failure["evidence"][:3] == [
        "guardrail 'apply_guardrail order-json-schema' rejected the output of 'chat gpt-4o-mini' (data_from)",
        "causeline.guardrail=blocked", "error.type=guardrail_blocked",
    ]
    # The rejected call's work was wasted; grouping names the model that produced the bad output.
    assert failure["burned"]["tokens"] == {"input": 300, "output": 40, "cache_read": 0, "cache_write": 0,
                                           "reasoning": 0}
    assert (failure["grouping"]["provider"], failure["grouping"]["response_model"]) == (
        "openai", "gpt-4o-mini-2024-07-18")


def test_tool_exception_consumed_through_data_from(scenario_env):
    failure = only_failure(scenario_env, "invoke_agent s4-data-from", failed=True)
    assert verdict(failure) == {
        "root": "execute_tool fetch_invoice", "class": "tool_error",
        "path": ["execute_tool fetch_invoice", "invoke_workflow summarize", "invoke_agent s4-data-from"],
        "recovered": False, "recovery": None, "by": None, "top": True, "confidence": 0.9,
        "consumers": ["invoke_workflow summarize"], "failed_ancestors": ["invoke_agent s4-data-from"],
        "skipped": [], "output_of": None,
    }
    assert "propagated to 'invoke_workflow summarize' (it consumed the failed output (data_from))" in failure["evidence"]
    assert failure["grouping"]["tool"] == "fetch_invoice"


def test_failure_in_handed_off_agent_propagates_to_the_first(scenario_env):
    failure = only_failure(scenario_env, "invoke_agent s5-triage", failed=True)
    assert verdict(failure) == {
        "root": "execute_tool issue_refund", "class": "tool_error",
        "path": ["execute_tool issue_refund", "invoke_agent s5-billing", "execute_tool transfer_to_s5-billing",
                 "invoke_agent s5-triage"],
        "recovered": False, "recovery": None, "by": None, "top": True, "confidence": 0.9, "consumers": [],
        "failed_ancestors": ["invoke_agent s5-billing", "execute_tool transfer_to_s5-billing",
                             "invoke_agent s5-triage"],
        "skipped": [], "output_of": None,
    }
    assert failure["grouping"]["agent"] == "s5-billing"  # where it happened, not where it surfaced


def test_error_swallowed_by_a_parent_that_succeeded(scenario_env):
    failure = only_failure(scenario_env, "invoke_agent s6-swallowed", failed=False)
    assert verdict(failure) == {
        "root": "execute_tool lookup_cache", "class": "timeout", "path": ["execute_tool lookup_cache"],
        "recovered": True, "recovery": "handled", "by": "invoke_agent s6-swallowed", "top": False,
        "confidence": 0.9, "consumers": [], "failed_ancestors": [], "skipped": [], "output_of": None,
    }
    assert failure["evidence"][-1] == "handled: parent 'invoke_agent s6-swallowed' ended unset despite the failure"


def test_trace_spread_over_two_linked_traces(scenario_env):
    env = scenario_env
    first, second = env.roots["invoke_agent s7-first"], env.roots["invoke_agent s7-second"]
    failure = only_failure(env, "invoke_agent s7-first", failed=True, traces=2)
    assert verdict(failure) == {
        "root": "execute_tool crm_lookup", "class": "timeout",
        "path": ["execute_tool crm_lookup", "invoke_agent s7-second", "invoke_workflow merge",
                 "invoke_agent s7-first"],
        "recovered": False, "recovery": None, "by": None, "top": True, "confidence": 0.9,
        "consumers": ["invoke_workflow merge"], "failed_ancestors": ["invoke_agent s7-second"], "skipped": [],
        "output_of": None,
    }
    assert failure["root_cause"]["trace_id"] == second
    assert [p["trace_id"] for p in failure["propagation_path"]] == [second, second, first, first]
    # Seen from the second trace it is the same failure; with depth=0 the first trace is out of reach.
    assert env.attribution("invoke_agent s7-second")["failures"][0]["root_cause"] == failure["root_cause"]
    alone = env.attribution("invoke_agent s7-first", depth=0)
    assert alone["traces"] == [first] and alone["truncated"] is True
    assert verdict(alone["failures"][0])["path"] == ["invoke_workflow merge", "invoke_agent s7-first"]


def test_cycle_in_links(scenario_env):
    env = scenario_env
    body = env.attribution("cycle-a")
    assert body["failed"] is True and len(body["traces"]) == 2
    assert len(body["failures"]) == 1
    assert verdict(body["failures"][0]) == {
        "root": "chat gpt-4o", "class": "provider_unavailable",
        "path": ["chat gpt-4o", "execute_tool enrich", "cycle-b"], "recovered": False, "recovery": None,
        "by": None, "top": True, "confidence": 0.55,  # text-only class 0.75, cycle cut -0.2
        "consumers": ["execute_tool enrich"], "failed_ancestors": ["cycle-a"], "skipped": [], "output_of": None,
    }
    assert ("root cause: 'chat gpt-4o' ended first in a cycle of failed spans explaining each other"
            in body["failures"][0]["evidence"])
    lineage = env.get(f"/api/traces/{oi.CYCLE_A.hex()}/lineage")
    assert lineage["cyclic"] is True and lineage["truncated"] is False
    assert {t["trace_id"]: t["depth"] for t in lineage["traces"]} == {oi.CYCLE_A.hex(): 0, oi.CYCLE_B.hex(): 1}
    assert {(e["relation"], e["cross_trace"]) for e in lineage["edges"]} == {("parent", False), ("data_from", True)}
    assert len(lineage["nodes"]) == 4 and all(n["present"] for n in lineage["nodes"])
    assert lineage["cycle_edges"] and lineage["cycle_edges"][0]["relation"] == "data_from"
    shallow = env.get(f"/api/traces/{oi.CYCLE_A.hex()}/lineage", depth=0)
    assert shallow["truncated"] is True and [t["trace_id"] for t in shallow["traces"]] == [oi.CYCLE_A.hex()]


def test_openinference_only_trace(scenario_env):
    failure = only_failure(scenario_env, "support-agent", failed=True)
    assert verdict(failure) == {
        "root": "ChatCompletion", "class": "rate_limited", "path": ["ChatCompletion", "answer-chain", "support-agent"],
        "recovered": False, "recovery": None, "by": None, "top": True, "confidence": 0.9, "consumers": [],
        "failed_ancestors": ["answer-chain", "support-agent"], "skipped": [], "output_of": None,
    }
    assert failure["evidence"][0] == "exception.type=openai.RateLimitError"
    assert failure["burned"]["tokens"]["input"] == 1200
    assert failure["grouping"] == {"service": "oi-service", "agent": "support", "tool": None, "provider": "openai",
                                   "request_model": "gpt-4o-mini", "response_model": None, "step": "answer-chain"}


def test_trace_costs_by_step_agent_model_and_requested_vs_served(scenario_env):
    env = scenario_env
    costs = env.get(f"/api/traces/{env.roots['invoke_agent s1-fallback']}/costs")
    assert (costs["calls"], costs["unpriced_calls"], costs["failed_calls"]) == (2, 0, 1)
    assert costs["tokens"]["input"] == 1020 and costs["tokens"]["output"] == 80
    assert [g["key"] for g in costs["by_agent"]] == ["s1-fallback"]
    assert {g["key"] for g in costs["by_model"]} == {"claude-sonnet-4-5-20250929", "gpt-4o"}
    calls = {c["span"]["name"]: c for c in costs["model_calls"]}
    served = calls["chat claude-sonnet-4-5"]
    assert (served["requested_model"], served["served_model"], served["model_differs"]) == (
        "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", True)
    assert calls["chat gpt-4o"]["model_differs"] is False and calls["chat gpt-4o"]["status"] == "error"
    steps = env.get(f"/api/traces/{env.roots['invoke_agent s2-retries']}/costs")["by_step"]
    assert [(g["key"], g["calls"]) for g in steps] == [("answer", 3)]
    unpriced = env.get(f"/api/traces/{oi.CYCLE_A.hex()}/costs")
    assert (unpriced["calls"], unpriced["unpriced_calls"], unpriced["cost_usd"]) == (1, 1, "0")
    assert unpriced["by_model"][0]["cost_usd"] is None  # never "$0" for an unpriced call


def test_no_failure_says_so_and_404s(scenario_env):
    env = scenario_env
    ok_trace = env.roots["invoke_agent s6-swallowed"]
    costs = env.get(f"/api/traces/{ok_trace}/costs")
    assert costs["trace_id"] == ok_trace
    headers = {"authorization": f"Bearer {env.key}"}
    missing = httpx.get(f"{env.url}/api/traces/{'ab' * 16}/attribution", headers=headers)
    assert missing.status_code == 404
    assert httpx.get(f"{env.url}/api/traces/{ok_trace}/attribution").status_code == 401
    with env.sessionmaker.begin() as session:
        other = create_project(session, "other-forensics")
        other_key = create_api_key(session, other.id, name="o", scopes=["read"]).secret
    for path in ("attribution", "lineage", "costs"):
        response = httpx.get(f"{env.url}/api/traces/{ok_trace}/{path}", headers={"authorization": f"Bearer {other_key}"})
        assert response.status_code == 404, path
    assert httpx.get(f"{env.url}/api/traces/xyz/lineage", headers=headers).status_code == 422


def test_failures_across_traces(scenario_env):
    env = scenario_env
    now = datetime.now(timezone.utc)
    with env.sessionmaker.begin() as session:
        assert attribute_pending(session, now=now + timedelta(minutes=1), delay=5, limit=100) == 11
    body = env.get("/api/failures", since=(now - timedelta(hours=1)).isoformat())
    totals = body["totals"]
    assert {k: totals[k] for k in ("runs", "runs_with_failures", "failed_runs", "failures", "recovered",
                                   "pending_traces")} == {
        "runs": 11, "runs_with_failures": 11, "failed_runs": 8, "failures": 9, "recovered": 3, "pending_traces": 0,
    }
    classes = {g["key"]: (g["failures"], g["recovered"], g["runs"], g["failed_runs"], g["share_of_failed_runs"])
               for g in body["groups"]["error_class"]}
    assert classes == {
        "timeout": (3, 2, 4, 2, 0.25),                # s1 + s6 recovered; s7 over two linked runs
        "rate_limited": (2, 0, 2, 2, 0.25),           # s2 retries, OpenInference
        "provider_unavailable": (1, 0, 2, 2, 0.25),   # the cycle's call, seen from both traces
        "tool_error": (2, 0, 2, 2, 0.25),             # s4's fetch_invoice; s5's issue_refund (connection refused)
        "invalid_output": (1, 1, 1, 0, 0.0),
    }
    assert set(body["groups"]) == {"error_class", "provider", "model", "tool", "agent", "step"}
    # Each group's trend: its failures per 1/24 of the window (all of them happened just now).
    assert len(body["trend_starts"]) == 24 and body["trend_starts"][0] == body["since"]
    for dimension in body["groups"].values():
        for g in dimension:
            assert len(g["trend"]) == 24 and g["trend"][-1] == g["failures"] and sum(g["trend"]) == g["failures"]
    # The nearest workflow step around each root cause (s2's "answer" step, the OpenInference chain),
    # else the root cause itself.
    assert {g["key"]: g["failures"] for g in body["groups"]["step"]} == {
        "invoke_workflow answer": 1, "answer-chain": 1, "chat gpt-4o": 2, "apply_guardrail order-json-schema": 1,
        "execute_tool crm_lookup": 1, "execute_tool fetch_invoice": 1, "execute_tool issue_refund": 1,
        "execute_tool lookup_cache": 1}
    providers = {g["key"]: g["failures"] for g in body["groups"]["provider"]}
    assert providers == {"openai": 5, None: 4}
    timeout = next(g for g in body["groups"]["error_class"] if g["key"] == "timeout")
    assert len(timeout["example_traces"]) == 3 and timeout["cost_burned_usd"] != "0"
    assert timeout["cost_burned_recovered_usd"] == timeout["cost_burned_usd"]  # only s1 burned money, recovered
    tools = env.get("/api/failures", group_by="tool", since=(now - timedelta(hours=1)).isoformat())
    assert list(tools["groups"]) == ["tool"]
    assert {g["key"] for g in tools["groups"]["tool"]} == {"fetch_invoice", "issue_refund", "lookup_cache",
                                                            "crm_lookup", None}
    only_openai = env.get("/api/failures", provider="openai", group_by="model",
                          since=(now - timedelta(hours=1)).isoformat())
    assert only_openai["totals"]["failures"] == 5
    assert {g["key"]: g["failures"] for g in only_openai["groups"]["model"]} == {
        "gpt-4o": 3, "gpt-4o-mini": 1, "gpt-4o-mini-2024-07-18": 1}
    by_agent = env.get("/api/failures", agent="s5-triage", since=(now - timedelta(hours=1)).isoformat())
    assert by_agent["totals"]["runs"] == 1 and by_agent["totals"]["failures"] == 1
    bad = httpx.get(f"{env.url}/api/failures", params={"group_by": "nope"}, headers={"authorization": f"Bearer {env.key}"})
    assert bad.status_code == 422


@pytest.mark.parametrize("depth", [0, 1, 10])
def test_lineage_depth_bound(scenario_env, depth):
    env = scenario_env
    body = env.get(f"/api/traces/{env.roots['invoke_agent s7-first']}/lineage", depth=depth)
    assert body["max_depth"] == depth
    assert len(body["traces"]) == (1 if depth == 0 else 2)
    # Edges leaving the bound are left out, and the answer says it was cut.
    assert any(e["relation"] == "handoff_from" and e["cross_trace"] for e in body["edges"]) is (depth > 0)
    assert body["truncated"] is (depth == 0)
