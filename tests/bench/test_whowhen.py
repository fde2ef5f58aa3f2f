"""bench/whowhen.py: Who&When runs converted to OTLP traces, ingested through the collector's write
path, judged by a scripted fake judge; the printed accuracy equals the scripted share. Reads a few
runs from ../shared/whowhen (never copied into the repository); skipped when it is absent."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from bench import whowhen
from core.judge_attribution import agent_key
from core.settings import Settings
from db.models import JudgeAttribution, SpanRow, TraceRow
from tests.judge.conftest import fake_model  # noqa: F401 - the fixture

PER_SUBSET = 3


@pytest.fixture(scope="module")
def runs():
    if not all((whowhen.DEFAULT_DATA / s).is_dir() for s in whowhen.SUBSETS):
        pytest.skip(f"Who&When data not found in {whowhen.DEFAULT_DATA}")
    loaded = [r for s in whowhen.SUBSETS for r in whowhen.load_runs(whowhen.DEFAULT_DATA, s, PER_SUBSET)]
    assert len(loaded) == 2 * PER_SUBSET
    return loaded


def test_conversion_one_trace_per_run_one_agent_span_per_step(runs):
    for run in runs:
        [resource] = whowhen.to_otlp(run).resource_spans
        spans = list(resource.scope_spans[0].spans)
        root, steps = spans[0], spans[1:]
        assert len(steps) == len(run.history) and root.status.code == 2 and not root.parent_span_id
        assert run.ground_truth not in root.status.message
        for step, message in zip(steps, run.history):
            attributes = {kv.key: kv.value for kv in step.attributes}
            assert step.parent_span_id == root.span_id
            assert attributes["gen_ai.agent.name"].string_value == whowhen.agent_of(message)[0]
            assert step.name == (message.get("name") or message.get("role"))
        assert [s.start_time_unix_nano for s in steps] == sorted(s.start_time_unix_nano for s in steps)


def test_agent_of():
    assert whowhen.agent_of({"role": "Orchestrator (-> WebSurfer)"}) == ("Orchestrator", "Orchestrator (-> WebSurfer)")
    assert whowhen.agent_of({"role": "user", "name": "Excel_Expert"}) == ("Excel_Expert", "Excel_Expert")


def test_score_counts_a_missing_verdict_as_wrong():
    run = whowhen.Run("Hand-Crafted", "1", "q", "a", [{"role": "x"}] * 3, "Orchestrator", 2)
    other = whowhen.Run("Hand-Crafted", "2", "q", "a", [{"role": "x"}] * 3, "WebSurfer", 0)
    scored = whowhen.score([run, other], {run.trace_id: whowhen.Prediction("orchestrator (thought)", 1)})
    assert scored == {"runs": 2, "verdicts": 1, "agent_accuracy": 0.5, "step_accuracy": 0.0}


def scripted_judge(runs):
    """Right for the first run of each subset, agent right but step wrong for the second, garbage
    for the third; keyed by each run's question and length (as written in the prompt)."""
    plan, expected = {}, {}
    for subset in whowhen.SUBSETS:
        mine = [r for r in runs if r.subset == subset]
        for position, run in enumerate(mine):
            key = (run.question[:300], len(run.history) - 1)
            if position == 0:
                plan[key] = json.dumps({"agent": run.mistake_agent, "step": run.mistake_step, "reasoning": "right"})
            elif position == 1:
                plan[key] = json.dumps({"agent": run.mistake_agent, "step": (run.mistake_step + 1) % len(run.history),
                                        "reasoning": "late"})
            else:
                plan[key] = "no idea"
        expected[subset] = {"runs": len(mine), "verdicts": 2, "agent_accuracy": round(2 / len(mine), 4),
                            "step_accuracy": round(1 / len(mine), 4)}

    def answer(request):
        user = request["messages"][1]["content"]
        last = int(re.search(r"numbered from 0 to (\d+)", user).group(1))
        [key] = [k for k in plan if k[1] == last and k[0] in user]
        return plan[key]
    return answer, expected


@pytest.mark.slow
def test_printed_accuracy_equals_the_scripted_share(runs, fake_model, sessionmaker, database_url, project,  # noqa: F811
                                                    capsys):
    answer, expected = scripted_judge(runs)
    server = fake_model(answer)
    settings = Settings(judge_attribution=True, judge_base_url=server.base_url, judge_model="gpt-4o-mini",
                        judge_daily_tokens=50_000_000, judge_daily_usd=1000)
    project_id = project[0]
    results = whowhen.judge_all(sessionmaker, settings, database_url, project_id, runs, ("without", "with"))
    assert results == {"without_ground_truth": expected, "with_ground_truth": expected}
    assert len(server.requests) == 2 * len(runs)
    without, with_ = server.requests[:len(runs)], server.requests[len(runs):]
    assert all("The correct answer is not known." in r["messages"][1]["content"] for r in without)
    assert all("The correct answer to the task is:" in r["messages"][1]["content"] for r in with_)
    with sessionmaker() as session:  # stored through the real write path and the background job's tables
        traces = session.scalars(select(TraceRow).where(TraceRow.project_id == project_id)).all()
        assert {t.outcome for t in traces} == {"failed"} and len(traces) == len(runs)
        assert session.scalar(select(SpanRow.agent_name).where(SpanRow.trace_id == runs[0].trace_id,
                                                               SpanRow.parent_span_id.is_not(None)).limit(1))
        verdicts = session.scalars(select(JudgeAttribution).where(JudgeAttribution.status == "verdict")).all()
        assert len(verdicts) == 4
    right = {r.trace_id: r for r in runs}
    assert all(agent_key(v.agent) == agent_key(right[v.trace_id].mistake_agent) for v in verdicts)

    print(whowhen.table(results))
    table = capsys.readouterr().out
    first = expected["Algorithm-Generated"]
    assert re.search(rf"without_ground_truth\s+Algorithm-Generated\s+3\s+2\s+{first['agent_accuracy']:.1%}\s+"
                     rf"{first['step_accuracy']:.1%}", table), table


def test_without_an_endpoint_it_says_so_and_exits_0(monkeypatch, capsys):
    monkeypatch.delenv("CAUSELINE_JUDGE_BASE_URL", raising=False)
    assert whowhen.main([]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "no model endpoint configured" in out[0] and json.loads(out[-1]) == {"skipped": "no model endpoint configured"}
