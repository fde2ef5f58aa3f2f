"""Fine-tuning export: content, formats, filters, de-duplication, redaction, access and audit."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from core.finetune import CallContent, example, input_messages
from core.scores import parse_score
from db.models import AuditEvent
from db.queries.auth import add_membership, create_user, create_user_session
from db.queries.scores import insert_scores
from tests.api.seed import make_span, seed_project, store

NOW = datetime.now(timezone.utc).replace(microsecond=0)
WINDOW = {"since": (NOW - timedelta(days=1)).isoformat(), "until": (NOW + timedelta(hours=1)).isoformat()}


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def run(session, project_id: int, *, outcome: str = "ok", prompt: str = "Where is my order?", answer: str = "On its way.",
        agent: str = "triage", model: str = "gpt-4o", status: str = "ok") -> tuple[bytes, bytes]:
    trace_id, call_id = os.urandom(16), os.urandom(8)
    root = make_span(project_id, trace_id, name="invoke_agent triage", start_ms=0, duration_ms=100, category="agent",
                     agent_name=agent, base=NOW - timedelta(minutes=5), status="ok")
    call = make_span(project_id, trace_id, name="chat", span_id=call_id, parent=root.span_id, start_ms=1,
                     duration_ms=50, category="llm", agent_name=agent, request_model=model, status=status,
                     base=NOW - timedelta(minutes=5), input_tokens=12, output_tokens=4,
                     input=json.dumps([{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}]),
                     output=json.dumps([{"role": "assistant", "content": answer}]))
    trace = store(session, [root, call])
    trace.outcome = outcome
    return trace_id, call_id


@pytest.fixture
def acme(session):
    project = seed_project(session, "acme")
    session.commit()
    return project


def lines(response) -> list[dict]:
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def test_export_writes_distinct_successful_examples_redacted(client, session, acme):
    read = create_user(session, "eng@example.com", "pw")
    add_membership(session, read.id, acme.id, "engineer")
    first, _ = run(session, acme.id, prompt="Mail me at ada@example.com", answer="Done.")
    second, _ = run(session, acme.id, prompt="Mail me at ada@example.com", answer="Done.")  # the same again
    run(session, acme.id, prompt="Refund?", answer="Refunded.", outcome="failed")
    run(session, acme.id, prompt="Crash", answer="", status="error")
    cookie = create_user_session(session, read.id, days=1)
    session.commit()
    client.cookies.set("causeline_session", cookie)
    preview = client.get("/api/export/finetune/preview", params=WINDOW).json()
    assert (preview["calls"], preview["examples"], preview["duplicates"], preview["unusable"]) == (2, 1, 1, 0)
    assert (preview["input_tokens"], preview["output_tokens"]) == (12, 4)
    response = client.get("/api/export/finetune", params=WINDOW)
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in response.headers["content-disposition"]
    [example_line] = lines(response)
    assert example_line == {"messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Mail me at [REDACTED_EMAIL]"},
        {"role": "assistant", "content": "Done."}]}
    generic = lines(client.get("/api/export/finetune", params={**WINDOW, "format": "generic", "outcome": "any"}))
    assert len(generic) == 2 and {g["completion"] for g in generic} == {"Done.", "Refunded."}
    mailed = next(g for g in generic if g["completion"] == "Done.")
    assert mailed["metadata"]["trace_id"] in (first.hex(), second.hex()) and mailed["metadata"]["model"] == "gpt-4o"
    assert "user: Mail me at [REDACTED_EMAIL]" in mailed["prompt"]
    events = session.execute(select(AuditEvent.actor, AuditEvent.target, AuditEvent.details)
                             .where(AuditEvent.action == "export")).all()
    assert [(e.actor, e.target) for e in events] == [("user:eng@example.com", "finetune")] * 2
    assert events[1].details["format"] == "generic" and events[1].details["outcome"] == "any"


def test_export_filters(client, session, acme):
    good, good_call = run(session, acme.id, prompt="A", answer="a", agent="triage", model="gpt-4o")
    run(session, acme.id, prompt="B", answer="b", agent="billing", model="gpt-4o-mini")
    run(session, acme.id, prompt="C", answer="c", agent="triage", model="claude")
    insert_scores(session, acme.id, [parse_score({"trace_id": good.hex(), "span_id": good_call.hex(),
                                                  "name": "quality", "value": 0.9})])
    session.commit()
    key = auth(acme.read_key.secret)

    def prompts(**params) -> set[str]:
        return {l["messages"][-2]["content"] for l in lines(client.get(
            "/api/export/finetune", params={**WINDOW, **params}, headers=key))}

    assert prompts() == {"A", "B", "C"}
    assert prompts(agent="triage") == {"A", "C"}
    assert prompts(model="gpt-4o-mini") == {"B"}
    assert prompts(step="invoke_agent triage") == {"A", "B", "C"}  # the step the calls ran in
    assert prompts(step="no such step") == set()
    assert prompts(score_name="quality", min_score=0.5) == {"A"}
    assert prompts(min_score=0.95) == set()
    bad = client.get("/api/export/finetune", params={"since": WINDOW["until"], "until": WINDOW["since"]}, headers=key)
    assert bad.status_code == 422 and "later than since" in bad.json()["detail"]


def test_viewers_and_ingest_keys_cannot_export(client, session, acme):
    viewer = create_user(session, "viewer@example.com", "pw")
    add_membership(session, viewer.id, acme.id, "viewer")
    cookie = create_user_session(session, viewer.id, days=1)
    session.commit()
    assert client.get("/api/export/finetune", headers=auth(acme.ingest_key.secret)).status_code == 403
    client.cookies.set("causeline_session", cookie)
    assert client.get("/api/export/finetune").status_code == 403
    assert client.get("/api/export/finetune/preview").status_code == 403


@pytest.mark.parametrize("prompt, expected", [
    ("plain question", [{"role": "user", "content": "plain question"}]),
    ('[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]', [{"role": "user", "content": "hi"}]),
    ('[{"role": "developer", "content": "rules"}, {"role": "user", "content": [{"type": "text", "text": "q"}]},'
     ' {"role": "tool", "content": "result"}]', [{"role": "system", "content": "rules"}, {"role": "user", "content": "q"}]),
    ('[{"role": "system", "content": "only a system prompt"}]', None),
    ("   ", None),
])
def test_input_messages(prompt, expected):
    assert input_messages(prompt) == expected


def test_example_needs_an_answer():
    assert example(CallContent(b"t" * 16, b"s" * 8, "q", None)) is None
    assert example(CallContent(b"t" * 16, b"s" * 8, "q", '[{"role": "assistant", "content": ""}]')) is None
    assert example(CallContent(b"t" * 16, b"s" * 8, "q", "a"))[-1] == {"role": "assistant", "content": "a"}


def test_cli_export_and_preview(session, acme, database_url, monkeypatch, tmp_path, capsys):
    from server.cli import main

    run(session, acme.id, prompt="Call me at ada@example.com", answer="Sure.")
    run(session, acme.id, prompt="Call me at ada@example.com", answer="Sure.")
    session.commit()
    monkeypatch.setenv("DATABASE_URL", database_url)
    window = ["--since", WINDOW["since"], "--until", WINDOW["until"], "--project", "acme"]
    assert main(["export", "finetune", "--preview", *window]) == 0
    assert "1 examples to export (12 input / 4 output tokens) from 2 model calls: 1 duplicates" in capsys.readouterr().out
    out = tmp_path / "train.jsonl"
    assert main(["export", "finetune", "--format", "generic", "-o", str(out), *window]) == 0
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["completion"] == "Sure." and "[REDACTED_EMAIL]" in record["prompt"]
    assert main(["export", "finetune", "--since", "yesterday", "--project", "acme"]) == 2
    session.rollback()
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "export")) == 1
