"""judge/ask.py against real PostgreSQL and the fake model server: every call recorded with its
tokens and cost, failures recorded as failures, the daily budget enforced before sending."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from core.settings import Settings
from db.models import JudgeCall
from db.queries.judge_calls import spent_today
from judge.ask import ask
from judge.client import JudgeError, ModelEndpoint
from tests.judge.fake_server import Status, completion

ASK = [{"role": "user", "content": "Rate this answer from 1 to 5."}]


@pytest.fixture
def project(project):
    return project[0]


def settings_for(server, **kw) -> Settings:
    return Settings(judge_base_url=server.base_url, judge_model="gpt-4o-mini", judge_provider="openai", **kw)


def test_answered_and_failed_calls_are_recorded(fake_model, sessionmaker, project):
    answers = iter([completion('{"score": 4}', {"messages": ASK}), Status(502)])
    server = fake_model(lambda request: next(answers))
    settings = settings_for(server)
    endpoint = ModelEndpoint.from_settings(settings)
    reply = ask(sessionmaker, endpoint, settings, project_id=project, purpose="evaluator", name="relevance",
                prompt_version="relevance@1", messages=ASK, trace_id=b"t" * 16, max_tokens=64)
    assert reply.text == '{"score": 4}'
    with pytest.raises(JudgeError):
        ask(sessionmaker, endpoint, settings, project_id=project, purpose="evaluator", name="relevance",
            prompt_version="relevance@1", messages=ASK, max_tokens=64)
    with sessionmaker() as session:
        rows = session.scalars(select(JudgeCall).order_by(JudgeCall.id)).all()
        spent = spent_today(session, project)
    assert [(r.outcome, r.name, r.prompt_version) for r in rows] == [("ok", "relevance", "relevance@1"),
                                                                     ("http", "relevance", "relevance@1")]
    assert rows[0].input_tokens == 7 and rows[0].output_tokens == 2 and rows[0].cost_usd > 0
    assert rows[0].trace_id == b"t" * 16 and rows[1].error == "HTTP 502"
    assert spent.calls == 2 and spent.tokens == 9 and spent.cost_usd == rows[0].cost_usd


def test_budget_reached_sends_nothing(fake_model, sessionmaker, project):
    server = fake_model(lambda request: completion("word " * 60, request))
    # first call: ~17 prompt + 100 output planned <= 150; it uses 67; the second would need 67 + 117
    settings = settings_for(server, judge_daily_tokens=150)
    endpoint = ModelEndpoint.from_settings(settings)
    ask(sessionmaker, endpoint, settings, project_id=project, purpose="attribution", name="all_at_once",
        messages=ASK, max_tokens=100)
    with pytest.raises(JudgeError) as caught:
        ask(sessionmaker, endpoint, settings, project_id=project, purpose="evaluator", name="relevance",
            messages=ASK, max_tokens=100)
    assert caught.value.kind == "over_budget" and "CAUSELINE_JUDGE_DAILY_TOKENS" in caught.value.reason
    assert len(server.requests) == 1
    # Replays are asked by a person: recorded, not budgeted.
    ask(sessionmaker, endpoint, settings, project_id=project, purpose="replay", name="gpt-4o",
        messages=ASK, max_tokens=100, json_reply=False)
    assert len(server.requests) == 2


def test_cost_budget(fake_model, sessionmaker, project):
    server = fake_model(lambda request: completion("x " * 50, request))
    settings = settings_for(server, judge_daily_usd=0.0000001)
    endpoint = ModelEndpoint.from_settings(settings)
    ask(sessionmaker, endpoint, settings, project_id=project, purpose="evaluator", name="r", messages=ASK)
    with pytest.raises(JudgeError) as caught:
        ask(sessionmaker, endpoint, settings, project_id=project, purpose="evaluator", name="r", messages=ASK)
    assert "cost budget" in caught.value.reason
    with sessionmaker() as session:
        assert spent_today(session, project).cost_usd > Decimal("0.0000001")
