"""The LLM-as-judge evaluators end to end: runs stored in real PostgreSQL, evaluated by the
background evaluator, judged by the fake model server on loopback; verdicts become scores, and a
judge that times out, answers garbage or runs out of budget leaves failures, never scores."""

from __future__ import annotations

import json
import logging
import os
import threading

import pytest
from sqlalchemy import select, text

from collector.evaluator import Evaluator
from core.judge_evaluators import sampled
from core.settings import Settings
from db.models import JudgeCall, Score
from db.queries.evaluation import save_rule
from judge.evaluate import RunJudge
from tests.api.seed import make_span, store
from tests.judge.fake_server import Sleep, completion

QUESTION = "How long is the refund window?"
DOCUMENT = "Refunds are accepted within 30 days of delivery."
ANSWER = "You can return it within 30 days."
VERDICT = '{"score": 5, "reasoning": "every claim is in the context"}'


@pytest.fixture
def project(project):
    return project[0]


def settings_for(server, **kw) -> Settings:
    values = dict(judge_base_url=server.base_url, judge_model="gpt-4o-mini", judge_provider="openai",
                  judge_sample_rate=1.0)
    return Settings(**{**values, **kw})


def seed_run(sessionmaker, project_id: int, *, trace_id: bytes | None = None, retrieval: bool = True) -> bytes:
    trace_id = trace_id or os.urandom(16)
    root = os.urandom(8)
    spans = [make_span(project_id, trace_id, name="invoke_agent support", start_ms=0, duration_ms=900,
                       span_id=root, category="agent", agent_name="support")]
    if retrieval:
        spans.append(make_span(project_id, trace_id, name="retrieve", start_ms=10, duration_ms=50, parent=root,
                               category="retrieval", attributes={"retrieval.documents.0.document.content": DOCUMENT}))
    spans.append(make_span(
        project_id, trace_id, name="chat gpt-4o", start_ms=100, duration_ms=700, parent=root, category="llm",
        status="ok", request_model="gpt-4o",
        input=json.dumps([{"role": "system", "content": "Answer from the documents."},
                          {"role": "user", "content": QUESTION}]),
        output=json.dumps([{"role": "assistant", "content": ANSWER}])))
    with sessionmaker.begin() as session:
        store(session, spans)
    return trace_id


def evaluator_for(sessionmaker, settings) -> Evaluator:
    return Evaluator(sessionmaker, delay=0, judge=RunJudge.from_settings(sessionmaker, settings))


def judge_scores(sessionmaker, project_id):
    with sessionmaker() as session:
        return {s.name: s for s in session.scalars(select(Score).where(Score.project_id == project_id,
                                                                       Score.source.like("judge:%")))}


def calls(sessionmaker):
    with sessionmaker() as session:
        return session.scalars(select(JudgeCall).order_by(JudgeCall.id)).all()


def test_verdicts_become_scores_once(fake_model, sessionmaker, project):
    server = fake_model(lambda request: VERDICT)
    trace_id = seed_run(sessionmaker, project)
    evaluator = evaluator_for(sessionmaker, settings_for(server))
    assert evaluator.run_once() == 1
    assert evaluator.judge_pending() == 2
    got = judge_scores(sessionmaker, project)
    assert {n: (s.value, s.label, s.source, s.comment, s.trace_id) for n, s in got.items()} == {
        "faithfulness": (1.0, "5/5", "judge:faithfulness@1", "every claim is in the context", trace_id),
        "relevance": (1.0, "5/5", "judge:relevance@1", "every claim is in the context", trace_id)}
    assert len(server.requests) == 2 and all(r["model"] == "gpt-4o-mini" for r in server.requests)
    sent = {"FAITHFULNESS" in r["messages"][0]["content"]: r["messages"][1]["content"] for r in server.requests}
    assert DOCUMENT in sent[True] and QUESTION in sent[True] and ANSWER in sent[True]
    assert DOCUMENT not in sent[False] and QUESTION in sent[False]  # relevance: no context
    recorded = calls(sessionmaker)
    assert sorted((c.name, c.prompt_version, c.outcome, c.purpose) for c in recorded) == [
        ("faithfulness", "faithfulness@1", "ok", "evaluator"), ("relevance", "relevance@1", "ok", "evaluator")]
    assert all(c.input_tokens and c.output_tokens and c.cost_usd > 0 and c.span_id == got["relevance"].span_id
               for c in recorded)
    # New spans re-evaluate the run structurally; the judges already asked are not asked again.
    with sessionmaker.begin() as session:
        session.execute(text("UPDATE traces SET updated_at = now()"))
    assert evaluator.run_once() == 1
    assert evaluator.judge_pending() == 0 and len(server.requests) == 2


def test_old_runs_are_not_judged(fake_model, sessionmaker, project):
    server = fake_model(lambda request: VERDICT)
    seed_run(sessionmaker, project)
    with sessionmaker.begin() as session:  # a trace from before an upgrade, evaluated for the first time
        session.execute(text("UPDATE traces SET updated_at = now() - interval '2 days'"))
    evaluator = evaluator_for(sessionmaker, settings_for(server))
    assert evaluator.run_once() == 1
    assert evaluator.judge_pending() == 0 and server.requests == []


def test_a_new_verdict_replaces_the_earlier_one(fake_model, sessionmaker, project):
    answers = iter(['{"score": 2, "reasoning": "off topic"}', '{"score": 4, "reasoning": "on topic"}'])
    server = fake_model(lambda request: next(answers))
    trace_id = seed_run(sessionmaker, project, retrieval=False)
    judge = RunJudge.from_settings(sessionmaker, settings_for(server, judge_evaluators="relevance"))
    assert judge.judge_run(project, trace_id) == 1
    with sessionmaker.begin() as session:
        session.execute(text("DELETE FROM judge_calls"))  # as if judged by an earlier prompt version
    assert judge.judge_run(project, trace_id) == 1
    with sessionmaker() as session:
        rows = session.scalars(select(Score).where(Score.name == "relevance")).all()
    assert [(r.value, r.label, r.comment) for r in rows] == [(0.75, "4/5", "on topic")]


def test_no_context_no_faithfulness(fake_model, sessionmaker, project):
    server = fake_model(lambda request: VERDICT)
    trace_id = seed_run(sessionmaker, project, retrieval=False)
    judge = RunJudge.from_settings(sessionmaker, settings_for(server, judge_evaluators="faithfulness,consistency"))
    assert judge.judge_run(project, trace_id) == 1
    assert set(judge_scores(sessionmaker, project)) == {"consistency"}


@pytest.mark.parametrize("answer, outcome", [
    ("The answer looks great to me!", "garbage"),  # prose, no JSON
    ('{"score": 9, "reasoning": "very good"}', "garbage"),  # outside the scale
    ({"choices": []}, "garbage"),  # not a chat completion
    (Sleep(3.0, VERDICT), "timeout"),
])
def test_failures_are_recorded_never_scored_never_retried(fake_model, sessionmaker, project, answer, outcome):
    server = fake_model(lambda request: answer)
    trace_id = seed_run(sessionmaker, project, retrieval=False)
    judge = RunJudge.from_settings(sessionmaker, settings_for(server, judge_evaluators="relevance",
                                                              judge_timeout_s=0.5))
    assert judge.judge_run(project, trace_id) == 0
    assert judge_scores(sessionmaker, project) == {}
    recorded = calls(sessionmaker)
    assert [(c.name, c.outcome) for c in recorded] == [("relevance", outcome)] and recorded[0].error
    assert judge.judge_run(project, trace_id) == 0
    assert len(server.requests) == 1  # judged: not asked again


def big(request):  # a reply that reports 600 tokens used
    reply = completion(VERDICT, request)
    reply["usage"] = {"prompt_tokens": 550, "completion_tokens": 50, "total_tokens": 600}
    return reply


def test_budget_reached_stops_judging_for_the_day(fake_model, sessionmaker, project, caplog):
    server = fake_model(big)
    traces = [seed_run(sessionmaker, project) for _ in range(3)]
    # A call may need its prompt estimate (< 400) + 400 output tokens: the first fits in 1000, then 600
    # are spent and no second call fits.
    settings = settings_for(server, judge_daily_tokens=1000)
    evaluator = evaluator_for(sessionmaker, settings)
    assert evaluator.run_once() == 3
    with caplog.at_level(logging.WARNING, logger="judge.evaluate"):
        assert evaluator.judge_pending() == 1
    assert len(server.requests) == 1
    assert len(judge_scores(sessionmaker, project)) == 1
    assert [c.outcome for c in calls(sessionmaker)] == ["ok"]  # a refused call is not sent, not recorded
    stopped = [r for r in caplog.records if "stopped for project" in r.getMessage()]
    assert len(stopped) == 1 and "daily token budget" in stopped[0].getMessage()
    assert evaluator.judge.judge_run(project, traces[0]) == 0 and len(server.requests) == 1


def test_nothing_is_sent_when_no_endpoint_is_configured(fake_model, sessionmaker, project):
    server = fake_model(lambda request: VERDICT)
    seed_run(sessionmaker, project)
    for settings in (Settings(judge_model="gpt-4o-mini", judge_sample_rate=1.0),
                     settings_for(server, judge_sample_rate=0.0)):
        evaluator = Evaluator.from_settings(sessionmaker, settings.model_copy(update={"evaluation_delay_s": 0}))
        assert evaluator.judge is None
        evaluator.run_once()
        assert evaluator.judge_pending() == 0
        with sessionmaker.begin() as session:
            session.execute(text("UPDATE traces SET updated_at = now()"))
    assert server.requests == [] and calls(sessionmaker) == []


def test_the_sampled_share_is_judged(fake_model, sessionmaker, project):
    server = fake_model(lambda request: VERDICT)
    traces = [bytes([n]) * 16 for n in range(40)]
    for trace_id in traces:
        seed_run(sessionmaker, project, trace_id=trace_id, retrieval=False)
    evaluator = evaluator_for(sessionmaker, settings_for(server, judge_sample_rate=0.25,
                                                         judge_evaluators="relevance"))
    assert evaluator.run_once() == 40
    expected = {t for t in traces if sampled(t, 0.25)}
    assert 0 < len(expected) < 40  # the table of trace ids straddles the rate
    assert evaluator.judge_pending() == len(expected)
    assert {c.trace_id for c in calls(sessionmaker)} == expected


def test_a_rubric_rule_is_judged(fake_model, sessionmaker, project):
    server = fake_model(lambda request: '{"score": 3, "reasoning": "polite but curt"}')
    trace_id = seed_run(sessionmaker, project)
    with sessionmaker.begin() as session:
        save_rule(session, project, "polite", "llm_rubric", {"rubric": "The answer thanks the customer."})
        save_rule(session, project, "other-model", "llm_rubric", {"rubric": "x", "model": "claude*"})
        save_rule(session, project, "short", "regex", {"pattern": "days"})
    evaluator = evaluator_for(sessionmaker, settings_for(server, judge_evaluators=""))
    assert evaluator.run_once() == 1
    assert evaluator.judge_pending() == 1
    polite = judge_scores(sessionmaker, project)["polite"]
    assert (polite.value, polite.label, polite.source, polite.comment) == (0.5, "3/5", "judge:rubric@1",
                                                                         "polite but curt")
    assert "The answer thanks the customer." in server.requests[0]["messages"][0]["content"]
    assert DOCUMENT in server.requests[0]["messages"][1]["content"]
    with sessionmaker() as session:  # the structural pass ran the regex rule, never the rubric
        names = set(session.scalars(select(Score.name).where(Score.trace_id == trace_id)))
    assert "short" in names and "other-model" not in names
    assert [(c.name, c.prompt_version) for c in calls(sessionmaker)] == [("polite", "rubric@1")]


def test_the_background_threads_judge_what_the_structural_pass_committed(fake_model, sessionmaker, project):
    server = fake_model(lambda request: VERDICT)
    seed_run(sessionmaker, project, retrieval=False)
    evaluator = Evaluator(sessionmaker, delay=0, interval=0.05,
                          judge=RunJudge.from_settings(sessionmaker, settings_for(server, judge_evaluators="relevance")))
    evaluator.start()
    try:
        for _ in range(600):  # wait for the threads (no assertion on how long they take)
            if judge_scores(sessionmaker, project):
                break
            threading.Event().wait(0.05)
    finally:
        evaluator.stop()
    assert set(judge_scores(sessionmaker, project)) == {"relevance"} and len(server.requests) == 1
