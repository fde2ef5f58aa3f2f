"""Replay from a model-call span, against the fake model server on loopback: each configured model
side by side with the original (a model that errors is an error in its column, the others still
shown), captured and replayed text escaped; only with content access, only from this site, in the
audit trail and in judge_calls; refused with the reason when the prompt was not captured or
redacted; no form where nothing is configured."""

from __future__ import annotations

import html
import json

import pytest
from sqlalchemy import select

from core.settings import Settings
from db.models import AuditEvent, JudgeCall, SpanRow
from db.queries.auth import add_membership, create_user
from tests.api.seed import XSS
from tests.judge.fake_server import FakeModelServer, Status
from tests.web.conftest import ORIGIN, login

HX = {"HX-Request": "true", **ORIGIN}
MODELS = "gpt-4o-mini, broken-model, claude-haiku-4-5"


def answer(request: dict):
    if request["model"] == "broken-model":
        return Status(500)
    if request["model"] == "judge":  # the relevance judge scoring each answer
        asked = request["messages"][-1]["content"]
        score = 5 if "gpt-4o-mini says" in asked else 2 if "claude-haiku-4-5 says" in asked else 3
        return json.dumps({"score": score, "reasoning": f"judged {score} {XSS}"})
    return f"{request['model']} says {XSS} to: {request['messages'][-1]['content'][:40]}"


@pytest.fixture
def fake():
    server = FakeModelServer(answer)
    yield server
    server.close()


@pytest.fixture
def settings(database_url, fake) -> Settings:
    return Settings(database_url=database_url, demo="off", judge_base_url=fake.base_url, judge_model="judge",
                    replay_models=MODELS)


def url(seeded, span="fallback") -> str:
    return f"/traces/{seeded.trace.hex}/spans/{seeded.trace.spans[span].hex()}/replay"


def test_replay_side_by_side(client, session, seeded, fake):
    login(client, seeded)
    detail = client.get(f"/traces/{seeded.trace.hex}/spans/{seeded.trace.spans['fallback'].hex()}", headers=HX).text
    assert "Replay against gpt-4o-mini, broken-model, claude-haiku-4-5" in detail
    response = client.post(url(seeded), headers=HX)
    assert response.status_code == 200, response.text
    page = response.text
    # the original (its captured output), then one column per model; the broken one shows its error
    assert "Let me look that up for you." in page
    assert page.count('class="replay-col') == 4 and page.count('class="replay-col failed"') == 1
    assert "http: HTTP 500" in page
    assert "gpt-4o-mini says" in page and "claude-haiku-4-5 says" in page
    assert XSS not in page and html.escape(XSS) in page  # both the replayed answer and the echoed prompt escaped
    sent = [r for r in fake.requests if r["model"] != "judge"]
    assert sorted(r["model"] for r in sent) == ["broken-model", "claude-haiku-4-5", "gpt-4o-mini"]
    # every answer (the original's too, not the failed model's) scored by the relevance judge
    judged = [r for r in fake.requests if r["model"] == "judge"]
    assert len(judged) == 3 and all("<answer>" in r["messages"][-1]["content"] for r in judged)
    assert page.count("Relevance</dt>") == 3 and "5/5" in page and "2/5" in page and "3/5" in page
    assert "relevance@1" in page and html.escape(f"judged 5 {XSS}") in page
    assert sent[0]["messages"] == [{"role": "user", "content": f"User: Where is my order #1234? {XSS}"}]
    with client.app.state.sessionmaker() as s:
        calls = s.scalars(select(JudgeCall).where(JudgeCall.name == "replay").order_by(JudgeCall.model)).all()
        assert [(c.purpose, c.model, c.outcome) for c in calls] == [
            ("replay", "broken-model", "http"), ("replay", "claude-haiku-4-5", "ok"), ("replay", "gpt-4o-mini", "ok")]
        verdicts = s.scalars(select(JudgeCall).where(JudgeCall.name == "relevance")).all()
        assert [(c.purpose, c.model, c.prompt_version) for c in verdicts] == [("replay", "judge", "relevance@1")] * 3
        assert all(c.span_id == seeded.trace.spans["fallback"] for c in calls)
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "replay")).all()
        assert event.outcome == "ok" and event.target.endswith(seeded.trace.spans["fallback"].hex())
        assert event.details["models"] == "gpt-4o-mini, broken-model, claude-haiku-4-5"


def test_refusals_are_explained_and_recorded(client, session, seeded, fake):
    login(client, seeded)
    llm = session.get(SpanRow, (seeded.project.id, seeded.trace.trace_id, seeded.trace.spans["llm"],
                                session.scalars(select(SpanRow.start_time).where(
                                    SpanRow.span_id == seeded.trace.spans["llm"])).one()))
    llm.input = json.dumps([{"role": "user", "content": "mail me at [REDACTED_EMAIL]"}])
    session.commit()
    page = client.post(url(seeded, "llm"), headers=HX).text
    assert "Not replayed: the captured prompt was redacted" in page
    page = client.post(url(seeded, "tool"), headers=HX).text
    assert "only model calls can be replayed" in page
    assert fake.requests == []
    with client.app.state.sessionmaker() as s:
        outcomes = s.scalars(select(AuditEvent.outcome).where(AuditEvent.action == "replay")).all()
    assert outcomes == ["refused", "refused"]


def test_only_content_readers_from_this_site(client, session, seeded, fake):
    viewer = create_user(session, "viewer@example.com", "viewer password!")
    add_membership(session, viewer.id, seeded.project.id, "viewer")
    session.commit()
    login(client, seeded)
    cross = client.post(url(seeded), headers={"HX-Request": "true", "Origin": "https://evil.example"})
    assert cross.status_code == 403 and fake.requests == []
    client.post("/logout", headers=ORIGIN)
    client.cookies.clear()
    response = client.post("/login", data={"email": "viewer@example.com", "password": "viewer password!"},
                           headers=ORIGIN, follow_redirects=False)
    assert response.status_code == 303
    detail = client.get(f"/traces/{seeded.trace.hex}/spans/{seeded.trace.spans['fallback'].hex()}", headers=HX).text
    assert "Replay against" not in detail
    assert client.post(url(seeded), headers=HX).status_code == 403
    assert fake.requests == []


def test_replay_in_chromium(app, seeded, fake):
    """The button on the span detail fills the comparison in place (htmx, same-site POST); the
    hostile prompt and answers show as text, never run; no serious accessibility violation."""
    from tests.web.browser import chromium, serious_accessibility_violations, shot

    with chromium(app, seeded) as (base, page, seen):
        page.goto(f"{base}/traces/{seeded.trace.hex}?span={seeded.trace.spans['fallback'].hex()}")
        page.locator("form.replay-form button").click()
        result = page.locator(".replay-out .replay-result")
        result.wait_for()
        assert result.locator(".replay-col").count() == 4
        assert "http: HTTP 500" in result.locator(".replay-col.failed").inner_text()
        assert f"gpt-4o-mini says {XSS}" in result.inner_text()
        assert page.locator("main script").count() == 0
        shot(page, "replay")
        serious = serious_accessibility_violations(page)
        assert serious == [], serious
    assert seen["dialogs"] == []
