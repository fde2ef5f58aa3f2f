"""The judge's view on the trace page's attribution panel and in the attribution JSON: shown apart
from the structural root causes, labelled as the judge's, its reasoning (model output) escaped,
and masked for viewers without content access."""

from __future__ import annotations

from datetime import datetime, timezone

from db.models import JudgeAttribution
from db.queries.auth import add_membership, create_user
from tests.web.conftest import PASSWORD, login

REASONING = 'The Coder used the wrong column </p><script>alert("x")</script>'


def judged(session, seeded, status="verdict"):
    t = seeded.trace
    session.add(JudgeAttribution(
        project_id=seeded.project.id, trace_id=t.trace_id, trace_updated_at=datetime.now(timezone.utc), status=status,
        agent="Coder", step_index=2, span_id=t.spans["llm"], reasoning=REASONING,
        prompt_version="attribution_all_at_once@1", model="gpt-4o-mini", judge_call_id=7))
    session.commit()


def test_the_judges_view_is_shown_escaped_and_apart(client, seeded, session):
    judged(session, seeded)
    login(client, seeded)
    t = seeded.trace
    html = client.get(f"/traces/{t.hex}").text
    view = html.split('<div class="judge-view">')[1].split("</div>")[0]
    assert "The judge's view" in view and "(gpt-4o-mini, prompt attribution_all_at_once@1)" in view
    assert "not structural evidence" in view
    assert f'Agent <strong>Coder</strong> at step <a href="/traces/{t.hex}?span={t.spans["llm"].hex()}">2</a>' in view
    assert "<script>" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in view
    assert html.index('class="grid attribution"') < html.index('<div class="judge-view">')  # beside, not among

    api = client.get(f"/api/traces/{t.hex}/attribution").json()
    assert api["judge"] == {
        "source": "judge", "method": "all_at_once", "agent": "Coder", "step_index": 2,
        "span_id": t.spans["llm"].hex(), "reasoning": REASONING, "model": "gpt-4o-mini",
        "prompt_version": "attribution_all_at_once@1", "judge_call_id": 7, "created_at": api["judge"]["created_at"],
    }
    assert api["failures"]  # the structural root causes are unchanged beside it


def test_no_verdict_no_view(client, seeded, session):
    judged(session, seeded, status="error")
    login(client, seeded)
    t = seeded.trace
    assert "judge-view" not in client.get(f"/traces/{t.hex}").text
    assert client.get(f"/api/traces/{t.hex}/attribution").json()["judge"] is None


def test_a_viewer_sees_the_reasoning_masked(client, seeded, session):
    judged(session, seeded)
    user = create_user(session, "viewer@example.com", PASSWORD)
    add_membership(session, user.id, seeded.project.id, role="viewer")
    session.commit()
    login(client, type(seeded)(seeded.project, seeded.trace, "viewer@example.com", PASSWORD))
    t = seeded.trace
    html = client.get(f"/traces/{t.hex}").text
    assert "Agent <strong>Coder</strong>" in html and "wrong column" not in html
    api = client.get(f"/api/traces/{t.hex}/attribution").json()
    assert api["judge"]["agent"] == "Coder" and "wrong column" not in (api["judge"]["reasoning"] or "")
