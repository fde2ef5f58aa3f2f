"""Scores, the Export page and Settings > Evaluation in real Chromium: a hostile score comment never executes, and the
pages have no serious accessibility violations (axe-core)."""

from __future__ import annotations

from core.scores import parse_score
from db.queries.evaluation import save_rule
from db.queries.scores import insert_scores
from tests.api.seed import XSS
from tests.web.browser import chromium, serious_accessibility_violations

HOSTILE = {"name": f"tone {XSS}", "value": f"rude {XSS}", "comment": f"says {XSS}", "source": f"r {XSS}"}


def test_scores_and_export_pages_are_safe_and_accessible(app, seeded, session):
    trace = seeded.trace
    insert_scores(session, seeded.project.id, [parse_score(s) for s in (
        {"trace_id": trace.hex, **HOSTILE},
        {"trace_id": trace.hex, "span_id": trace.spans["fallback"].hex(), "name": "relevance", "value": 0.2},
        {"trace_id": trace.hex, "span_id": trace.spans["fallback"].hex(), "name": "non_empty", "value": False},
    )])
    save_rule(session, seeded.project.id, "polite", "llm_rubric", {"rubric": f"Thanks the customer {XSS}"})
    session.commit()
    with chromium(app, seeded) as (base, page, seen):
        for path, part in ((f"/traces/{trace.hex}?span={trace.spans['fallback'].hex()}", "table.scores"),
                           ("/providers", "section[aria-label='Evaluation scores per model']"),
                           ("/traces?score_name=relevance&min_score=0.1", "form"),
                           ("/export?preview=1&outcome=any&since=2020-01-01T00:00", "main"),
                           ("/settings/evaluation", "main table")):
            page.goto(f"{base}{path}")
            assert page.locator("main script, main img, main iframe").count() == 0
            assert page.locator(part).count() >= 1, f"{path}: no {part}"
            serious = serious_accessibility_violations(page)
            assert serious == [], f"{path}: {serious}"
        page.goto(f"{base}/traces/{trace.hex}")
        assert XSS in page.locator("table.scores").first.inner_text()  # shown as text, never run
        page.goto(f"{base}/settings/evaluation")
        assert XSS in page.locator("main").inner_text()
    assert seen["dialogs"] == []
