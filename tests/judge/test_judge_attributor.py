"""The judge-assisted attribution job against real PostgreSQL (spans through the real collector)
and the fake model server on loopback: off by default, asked once per run version, verdicts
stored beside the structural ones, failures recorded and never retried in a storm."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import httpx
from sqlalchemy import func, select

from core.settings import Settings
from db.models import JudgeAttribution, JudgeCall
from db.queries.forensics import attribute_pending
from judge.attribution import PROMPT_VERSION, JudgeAttributor
from tests.collector.conftest import collector  # noqa: F401 - the fixture
from tests.judge.fake_server import Sleep
from tests.otlp_payloads import request, span, span_id, trace_id

MS = 1_000_000
AGENTS = ("Planner", "Coder", "Reviewer")


def post(collector, spans) -> None:  # noqa: F811
    response = httpx.post(collector.traces_endpoint, content=request(spans).SerializeToString(),
                          headers={**collector.auth(), "content-type": "application/x-protobuf"}, timeout=30)
    assert response.status_code == 200, response.text


def agent_step(tid, parent, n, base, agent, text, **extra):
    return span(tid, span_id(), parent=parent, name=f"invoke_agent {agent}", start=base + (n + 1) * MS, duration=MS // 2,
                attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent, "output.value": text,
                            **extra})


def semantic_failure(collector, *, base=None):  # noqa: F811
    """A run that ended wrong with no error span: only the root is marked failed."""
    tid, root = trace_id(), span_id()
    base = base or time.time_ns()
    steps = [agent_step(tid, root, n, base, agent, f"{agent} says step {n}") for n, agent in enumerate(AGENTS)]
    post(collector, [span(tid, root, name="team run", start=base, duration=10 * MS, status=2,
                          message="the answer was wrong",
                          attributes={"gen_ai.operation.name": "invoke_workflow", "input.value": "add 2 and 2"}),
                     *steps])
    return tid, steps


def attribute_all(sessionmaker) -> None:
    with sessionmaker.begin() as session:
        attribute_pending(session, now=datetime.now(timezone.utc) + timedelta(seconds=30), delay=0, limit=100)


def job(sessionmaker, server, **settings) -> JudgeAttributor:
    made = JudgeAttributor.from_settings(sessionmaker, Settings(
        judge_attribution=True, judge_base_url=server.base_url, judge_model="gpt-4o-mini", judge_provider="openai",
        **settings))
    assert made is not None
    return made


def rows(sessionmaker, model):
    with sessionmaker() as session:
        return list(session.scalars(select(model)))


VERDICT = {"agent": "Coder", "step": 1, "reasoning": "It added instead of multiplying <script>alert(1)</script>"}


def test_off_by_default_or_without_an_endpoint_nothing_is_sent(collector, sessionmaker, fake_model):  # noqa: F811
    server = fake_model(lambda request: json.dumps(VERDICT))
    assert Settings().judge_attribution is False
    assert JudgeAttributor.from_settings(sessionmaker, Settings(judge_base_url=server.base_url, judge_model="m")) is None
    assert JudgeAttributor.from_settings(sessionmaker, Settings(judge_attribution=True)) is None
    semantic_failure(collector)
    attribute_all(sessionmaker)
    assert server.requests == [] and rows(sessionmaker, JudgeCall) == []


def test_a_semantic_failure_gets_one_verdict_per_version_of_the_run(collector, sessionmaker, fake_model):  # noqa: F811
    server = fake_model(lambda request: json.dumps(VERDICT))
    tid, steps = semantic_failure(collector)
    worker = job(sessionmaker, server)
    assert worker.run_once() == 0  # not attributed yet: nothing to ask
    attribute_all(sessionmaker)
    assert worker.run_once() == 1
    [row] = rows(sessionmaker, JudgeAttribution)
    [call] = rows(sessionmaker, JudgeCall)
    assert (row.status, row.agent, row.step_index, row.span_id) == ("verdict", "Coder", 1, steps[1].span_id)
    assert row.reasoning == VERDICT["reasoning"] and row.prompt_version == PROMPT_VERSION == call.prompt_version
    assert row.judge_call_id == call.id and row.model == call.model == "gpt-4o-mini"
    assert (call.purpose, call.name, call.outcome, call.trace_id) == ("attribution", "all_at_once", "ok", tid)
    # What was sent: every step, in order, with its agent; the task; no ground truth.
    [sent] = server.requests
    user = sent["messages"][1]["content"]
    assert all(f"{agent} says step {n}" in user for n, agent in enumerate(AGENTS))
    assert user.index("Planner says") < user.index("Coder says") < user.index("Reviewer says")
    assert "add 2 and 2" in user and "the answer was wrong" in user and sent["response_format"] == {"type": "json_object"}

    assert worker.run_once() == 0 and len(server.requests) == 1  # once per run
    # New spans: a new version of the run, asked again once it is attributed again.
    post(collector, [agent_step(tid, steps[0].parent_span_id, 3, time.time_ns(), "Reviewer", "late remark")])
    attribute_all(sessionmaker)
    assert worker.run_once() == 1 and len(server.requests) == 2
    assert len(rows(sessionmaker, JudgeAttribution)) == 1


def test_a_failure_an_error_span_explains_is_not_sent(collector, sessionmaker, fake_model):  # noqa: F811
    server = fake_model(lambda request: json.dumps(VERDICT))
    tid, root, base = trace_id(), span_id(), time.time_ns()
    post(collector, [
        span(tid, root, name="team run", start=base, duration=10 * MS, status=2,
             attributes={"gen_ai.operation.name": "invoke_workflow"}),
        agent_step(tid, root, 0, base, "Planner", "plan"),
        span(tid, span_id(), parent=root, name="execute_tool search", start=base + 5 * MS, duration=MS, status=2,
             message="search failed", attributes={"gen_ai.operation.name": "execute_tool", "error.type": "TimeoutError"}),
    ])
    attribute_all(sessionmaker)
    assert job(sessionmaker, server).run_once() == 1
    [row] = rows(sessionmaker, JudgeAttribution)
    assert row.status == "not_needed" and row.judge_call_id is None
    assert server.requests == []


def test_timeout_garbage_and_budget_give_no_verdict_and_no_retry_storm(collector, sessionmaker, fake_model):  # noqa: F811
    answers = {"timeout": Sleep(3, json.dumps(VERDICT)), "garbage": "The Coder, I think, somewhere around the middle.",
               "unknown agent": json.dumps({**VERDICT, "agent": "Mallory"})}
    script = iter(answers.values())
    server = fake_model(lambda request: next(script))
    for _ in answers:
        semantic_failure(collector)
    attribute_all(sessionmaker)
    worker = job(sessionmaker, server, judge_timeout_s=0.5)
    assert worker.run_once() == 3
    assert len(server.requests) == 3
    settled = rows(sessionmaker, JudgeAttribution)
    assert {r.status for r in settled} == {"error"} and all(r.agent is None for r in settled)
    calls = sorted(rows(sessionmaker, JudgeCall), key=lambda c: c.id)
    assert [c.outcome for c in calls] == ["timeout", "garbage", "garbage"]
    assert sorted(r.judge_call_id for r in settled) == [c.id for c in calls]
    assert sorted(r.error.split(":")[0] for r in settled) == ["garbage", "garbage", "timeout"]
    for _ in range(3):
        assert worker.run_once() == 0
    assert len(server.requests) == 3  # not asked again until the runs change


def test_over_budget_sends_nothing_and_leaves_the_run_for_later(collector, sessionmaker, fake_model):  # noqa: F811
    server = fake_model(lambda request: json.dumps(VERDICT))
    semantic_failure(collector)
    attribute_all(sessionmaker)
    worker = job(sessionmaker, server, judge_daily_tokens=100)
    assert worker.run_once() == 0 and worker.run_once() == 0
    assert server.requests == [] and rows(sessionmaker, JudgeCall) == []
    assert rows(sessionmaker, JudgeAttribution) == []  # released: asked once the budget allows
    with sessionmaker() as session:
        assert session.scalar(select(func.count()).select_from(JudgeCall)) == 0
    roomy = job(sessionmaker, server)
    assert roomy.run_once() == 1 and len(server.requests) == 1


def test_a_run_that_cannot_be_read_is_settled_as_an_error_not_read_every_tick(collector, sessionmaker, fake_model,  # noqa: F811
                                                                               monkeypatch):
    import judge.attribution as module

    server = fake_model(lambda request: json.dumps(VERDICT))
    semantic_failure(collector)
    attribute_all(sessionmaker)
    reads = []

    def broken(*args):
        reads.append(args)
        raise RuntimeError("unreadable")

    monkeypatch.setattr(module, "read_run", broken)
    worker = job(sessionmaker, server)
    assert worker.run_once() == 1 and worker.run_once() == 0
    [row] = rows(sessionmaker, JudgeAttribution)
    assert (row.status, row.error) == ("error", "internal: RuntimeError")
    assert len(reads) == 1 and server.requests == []
