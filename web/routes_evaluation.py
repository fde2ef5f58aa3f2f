"""Settings > Evaluation: the evaluators, the project's rules (added and removed here as in
/api/evaluators), the LLM judge's configuration and what it cost today (JSON twin /api/evaluators).

Changes are POST forms like the rest of Settings: same-site checked, allowed by `manage_settings`,
audited and committed in one transaction, answered with a redirect.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from access.audit import record
from access.csrf import same_origin
from core.evaluators import RuleError
from core.permissions import Permission, Principal
from db.queries.evaluation import delete_rule, save_rule
from pages.evaluation import evaluators_data
from web.auth import AppSettings, CurrentViewer, DbSession, page_requires
from web.page import render_page

router = APIRouter()
SettingsManager = Annotated[Principal, Depends(page_requires(Permission.MANAGE_SETTINGS))]
NOTICES = {"rule-saved": "Evaluator rule saved. It applies to runs evaluated from now on.",
           "rule-removed": "Evaluator rule removed."}


def _page(request: Request, session, viewer: Principal, settings, *, status: int = 200, error: str | None = None,
          form: dict | None = None):
    return render_page(request, "evaluation.html", {
        "viewer": viewer, "data": evaluators_data(session, viewer, settings), "error": error, "form": form or {},
        "notice": NOTICES.get(request.query_params.get("notice", "")),
    }, json_href="/api/evaluators", status_code=status)


def _cross_site(request: Request, session, viewer: Principal, settings):
    if not same_origin(request):
        return _page(request, session, viewer, settings, status=403,
                     error="This form was not submitted from this site. Reload the page and try again.")
    return None


def _config(kind: str, fields: dict[str, str]) -> dict:
    """The form's fields for the chosen kind as the rule's config (checked by parse_rule)."""
    config: dict = {k: fields[k].strip() for k in ("model", "agent", "span_name") if fields.get(k, "").strip()}
    if kind == "llm_rubric":
        config["rubric"] = fields.get("rubric", "").strip()
    elif kind == "regex":
        config["pattern"] = fields.get("pattern", "")
        config["expect"] = fields.get("expect", "match")
    elif kind == "json_schema":
        try:
            config["schema"] = json.loads(fields.get("schema", "") or "null")
        except ValueError as exc:
            raise RuleError(f"the schema is not JSON: {exc}") from None
    return config


@router.get("/settings/evaluation")
def evaluation_page(request: Request, viewer: CurrentViewer, session: DbSession, settings: AppSettings):
    return _page(request, session, viewer, settings)


@router.post("/settings/evaluation/rules")
async def save_rule_form(request: Request, viewer: SettingsManager, session: DbSession, settings: AppSettings):
    if (refused := _cross_site(request, session, viewer, settings)) is not None:
        return refused
    fields = {k: str(v) for k, v in (await request.form()).items()}
    name, kind = fields.get("name", "").strip(), fields.get("kind", "")
    try:
        save_rule(session, viewer.project_id, name, kind, _config(kind, fields))
    except RuleError as exc:
        return _page(request, session, viewer, settings, status=400, error=f"Rule not saved: {exc}", form=fields)
    record(session, request, viewer, "evaluator_rule.save", target=name, details={"kind": kind})
    session.commit()
    return RedirectResponse("/settings/evaluation?notice=rule-saved", status_code=303)


@router.post("/settings/evaluation/rules/{name}/remove")
def remove_rule_form(request: Request, name: str, viewer: SettingsManager, session: DbSession,
                     settings: AppSettings):
    if (refused := _cross_site(request, session, viewer, settings)) is not None:
        return refused
    if not delete_rule(session, viewer.project_id, name):
        return _page(request, session, viewer, settings, status=404, error=f"No evaluator rule {name!r} in this project.")
    record(session, request, viewer, "evaluator_rule.delete", target=name)
    session.commit()
    return RedirectResponse("/settings/evaluation?notice=rule-removed", status_code=303)
