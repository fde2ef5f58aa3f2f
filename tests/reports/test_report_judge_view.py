"""The incident report carries the judge's view of the run (judge-assisted attribution) apart from
the root causes, its reasoning (model output) escaped and shown only with captured content."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from core.masking import MASK
from db.models import JudgeAttribution
from tests.reports.test_reports import _create

REASONING = "The billing model misread the order <script>alert(1)</script>"


def test_incident_report_has_the_judges_view(session, seeded):  # noqa: F811
    project, trace = seeded
    session.add(JudgeAttribution(
        project_id=project.id, trace_id=trace.trace_id, trace_updated_at=datetime.now(timezone.utc), status="verdict",
        agent="billing", step_index=1, span_id=trace.spans["billing_llm"], reasoning=REASONING,
        prompt_version="attribution_all_at_once@1", model="gpt-4o-mini"))
    session.commit()
    full = json.loads(_create(session, project, kind="incident", trace_id=trace.trace_id, fmt="json",
                              include_content=True).body)
    [row] = full["tables"]["judge_view"]["rows"]
    assert (row["agent"], row["step"], row["reasoning"], row["model"]) == ("billing", 1, REASONING, "gpt-4o-mini")
    assert row["step span"] and "root_causes" in full["tables"]
    masked = json.loads(_create(session, project, kind="incident", trace_id=trace.trace_id, fmt="json").body)
    assert masked["tables"]["judge_view"]["rows"][0]["reasoning"] == MASK
    html = _create(session, project, kind="incident", trace_id=trace.trace_id, fmt="html", include_content=True).body
    assert b"The judge&#39;s view" in html or b"The judge's view" in html
    assert b"<script>alert(1)" not in html and b"&lt;script&gt;alert(1)" in html


def test_no_judge_no_table(session, seeded):  # noqa: F811
    project, trace = seeded
    data = json.loads(_create(session, project, kind="incident", trace_id=trace.trace_id, fmt="json").body)
    assert "judge_view" not in data["tables"]
