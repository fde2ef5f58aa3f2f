"""Scores in the UI: the trace page and span detail, the Traces list's score filter, Providers;
comments (which may quote content) escaped, and masked for viewers."""

from __future__ import annotations

import html

from db.queries.auth import add_membership, create_user
from db.queries.scores import insert_scores
from core.scores import parse_score
from tests.api.seed import XSS, seed_agent_trace
from tests.web.conftest import ORIGIN, login

HX = {"HX-Request": "true"}


def scored(session, seeded):
    trace = seeded.trace
    other = seed_agent_trace(session, seeded.project.id)
    insert_scores(session, seeded.project.id, [parse_score(s) for s in (
        {"trace_id": trace.hex, "span_id": trace.spans["fallback"].hex(), "name": "relevance", "value": 0.9,
         "comment": f"quotes the prompt {XSS}"},
        {"trace_id": trace.hex, "name": "resolved", "value": False, "source": "reviewer"},
        {"trace_id": other.hex, "name": "relevance", "value": 0.3},
    )])
    session.commit()
    return trace, other


def test_trace_page_and_span_detail_show_scores(client, session, seeded):
    trace, _ = scored(session, seeded)
    login(client, seeded)
    page = client.get(f"/traces/{trace.hex}").text
    assert "Scores" in page and "relevance" in page and "reviewer" in page and "the run" in page
    assert XSS not in page and "&lt;script&gt;" in page
    assert 'class="score-fail">false' in page  # a failed boolean stands out
    detail = client.get(f"/traces/{trace.hex}/spans/{trace.spans['fallback'].hex()}", headers=HX).text
    assert "relevance" in detail and "0.9" in detail and XSS not in detail
    twin = client.get(f"/api/traces/{trace.hex}").json()
    assert {s["name"] for s in twin["scores"]} == {"relevance", "resolved"}


def test_viewers_see_score_comments_masked(client, session, seeded):
    trace, _ = scored(session, seeded)
    viewer = create_user(session, "viewer@example.com", "viewer password!")
    add_membership(session, viewer.id, seeded.project.id, "viewer")
    session.commit()
    response = client.post("/login", data={"email": "viewer@example.com", "password": "viewer password!"},
                           headers=ORIGIN, follow_redirects=False)
    assert response.status_code == 303
    page = html.unescape(client.get(f"/traces/{trace.hex}").text)
    assert "relevance" in page and "quotes the prompt" not in page
    api = client.get("/api/scores", params={"trace_id": trace.hex}).json()["scores"]
    assert all("quotes the prompt" not in (s["comment"] or "") for s in api)


def test_trace_list_filters_by_score(client, session, seeded):
    trace, other = scored(session, seeded)
    unscored = seed_agent_trace(session, seeded.project.id)
    session.commit()
    login(client, seeded)
    good = client.get("/traces", params={"score_name": "relevance", "min_score": "0.5"}).text
    assert trace.hex in good and other.hex not in good and unscored.hex not in good
    any_relevance = client.get("/traces", params={"score_name": "relevance"}).text
    assert trace.hex in any_relevance and other.hex in any_relevance and unscored.hex not in any_relevance
    bad = client.get("/traces", params={"min_score": "lots"}).text
    assert "must be a number" in bad
    api = client.get("/api/traces", params={"score_name": "relevance", "min_score": 0.5}).json()["traces"]
    assert [t["trace_id"] for t in api] == [trace.hex]
    assert client.get("/api/traces", params={"min_score": "nan"}).status_code == 422


def test_providers_page_shows_scores_per_model(client, session, seeded):
    scored(session, seeded)
    login(client, seeded)
    page = client.get("/providers").text
    assert "Evaluation scores per model" in page and "(trace)" in page
    data = client.get("/api/providers").json()["scores"]
    assert {(g["name"], g["group"]) for g in data["groups"]} >= {("resolved", "(trace)"), ("relevance", "(trace)")}


def test_export_page_previews_and_links_the_download(client, session, seeded):
    login(client, seeded)  # an engineer by default: may read content
    page = client.get("/export").text
    assert "Fine-tuning data" in page and "Download" not in page
    previewed = client.get("/export", params={"preview": "1", "outcome": "any", "since": "2020-01-01T00:00",
                                              "agent": "triage"})
    assert previewed.status_code == 200
    assert "Preview" in previewed.text and "/api/export/finetune/preview?" in previewed.headers["link"]
    bad = client.get("/export", params={"preview": "1", "min_score": "high", "since": "soon"}).text
    assert "“Min score” must be a number." in bad and "is not a date/time" in bad


def test_viewers_have_no_export_page(client, session, seeded):
    viewer = create_user(session, "viewer@example.com", "viewer password!")
    add_membership(session, viewer.id, seeded.project.id, "viewer")
    session.commit()
    client.post("/login", data={"email": "viewer@example.com", "password": "viewer password!"}, headers=ORIGIN)
    assert client.get("/export", follow_redirects=False).status_code == 403
    assert 'href="/export"' not in client.get("/traces").text
