"""The Export page: fine-tuning data (docs/evaluation.md). The form previews what an export would
write (counts, tokens); the download itself is the API's stream (/api/export/finetune), which the
login cookie authorizes and which records the export in the audit trail."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from core.permissions import Permission, Principal
from core.run_outcome import OUTCOMES
from db.queries.finetune import ExportFilters
from pages.export import export_preview
from pages.params import has_nul, time_error
from web.auth import AppSettings, DbSession, page_requires
from web.page import render_page, twin

router = APIRouter()
ContentReader = Annotated[Principal, Depends(page_requires(Permission.READ_CONTENT))]
FIELDS = ("since", "until", "outcome", "agent", "step", "model", "score_name", "min_score", "format")


def _time(text: str, label: str, errors: list[str]) -> datetime | None:
    if not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        errors.append(f"“{label}” is not a date/time like 2026-11-20T12:00 (UTC).")
        return None
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if time_error(value):
        errors.append(f"“{label}” {time_error(value)}.")
        return None
    return value


def parse_form(form: dict[str, str]) -> tuple[ExportFilters | None, list[str]]:
    errors = [f"“{k}” must not contain NUL characters." for k, v in form.items() if has_nul(v)]
    if errors:
        return None, errors
    until = _time(form["until"], "To", errors) or datetime.now(timezone.utc)
    since = _time(form["since"], "From", errors) or until - timedelta(days=7)
    minimum = None
    if form["min_score"].strip():
        try:
            minimum = float(form["min_score"])
        except ValueError:
            minimum = math.nan
        if not math.isfinite(minimum):
            errors.append("“Min score” must be a number.")
    if form["outcome"] not in (*OUTCOMES, "any"):
        errors.append(f"Outcome must be one of {', '.join(OUTCOMES)} or any.")
    if errors:
        return None, errors
    try:
        return ExportFilters(since=since, until=until, outcome=None if form["outcome"] == "any" else form["outcome"],
                             agent=form["agent"].strip() or None, step=form["step"].strip() or None,
                             model=form["model"].strip() or None, score_name=form["score_name"].strip() or None,
                             min_score=minimum), []
    except ValueError as exc:
        return None, [str(exc)]


@router.get("/export")
def export_page(request: Request, viewer: ContentReader, session: DbSession, settings: AppSettings,
                since: str = "", until: str = "", outcome: str = "ok", agent: str = "", step: str = "", model: str = "",
                score_name: str = "", min_score: str = "", format: str = "openai", preview: str = ""):
    form = {"since": since, "until": until, "outcome": outcome, "agent": agent, "step": step, "model": model,
            "score_name": score_name, "min_score": min_score, "format": format if format in ("openai", "generic")
            else "openai"}
    filters, errors = parse_form(form) if preview else (None, [])
    counts = export_preview(session, viewer.project_id, filters, settings.finetune_max_calls) if filters else None
    query = {k: v for k, v in form.items() if k != "format"}
    if filters is not None:  # the window the preview used, so the download exports exactly that
        query.update(since=filters.since.isoformat(), until=filters.until.isoformat())
    return render_page(request, "export.html", {
        "viewer": viewer, "form": form, "errors": errors, "preview": counts, "outcomes": (*OUTCOMES, "any"),
        "download": twin("/api/export/finetune", {**query, "format": form["format"], "project": viewer.project_slug}),
    }, json_href=twin("/api/export/finetune/preview", query) if counts else None)
