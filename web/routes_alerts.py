"""Settings > Alerts: rules, channels, what is firing, recent deliveries (JSON twin /api/alerts).

Changes are POST forms like the rest of Settings: CSRF-checked, allowed by `manage_alerts`,
audited and committed in one transaction, answered with a redirect — except a new channel,
whose secret is shown once in that response, and a test notification, whose outcome is shown.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from access.audit import record
from access.csrf import same_origin
from alerts.evaluator import utcnow
from alerts.manage import TooSoon, put_channel, put_rule, send_test
from core.alerts import KINDS, RuleError, parse_rule
from core.permissions import Permission, Principal
from db.queries.alerts import delete_channel, delete_rule, get_channel, get_rule, save_rule
from pages.alerts import ChannelIn, RuleIn, alerts_data, channel_out
from web.auth import CurrentViewer, DbSession, page_requires
from web.page import render_page

router = APIRouter()
AlertManager = Annotated[Principal, Depends(page_requires(Permission.MANAGE_ALERTS))]
PARAMS = sorted({p for params, _ in KINDS.values() for p in params})
NOTICES = {
    "rule-added": "Alert rule added. It is evaluated from the next cycle.",
    "rule-removed": "Alert rule removed.",
    "rule-toggled": "Alert rule updated.",
    "channel-removed": "Channel removed (and taken off every rule).",
}


def _page(request: Request, session, viewer: Principal, *, status: int = 200, error: str | None = None,
          created=None, tested=None, form: dict | None = None):
    return render_page(request, "alerts.html", {
        "viewer": viewer, "data": alerts_data(session, viewer), "error": error, "created": created,
        "tested": tested, "form": form or {}, "params": PARAMS,
        "notice": NOTICES.get(request.query_params.get("notice", "")),
    }, json_href="/api/alerts", status_code=status)


def _cross_site(request: Request, session, viewer: Principal):
    if not same_origin(request):
        return _page(request, session, viewer, status=403,
                     error="This form was not submitted from this site. Reload the page and try again.")
    return None


def _done(notice: str) -> RedirectResponse:
    return RedirectResponse(f"/settings/alerts?notice={notice}", status_code=303)


def _number(text: str, label: str, *, scale: float = 1) -> float | None:
    if not text.strip():
        return None
    try:
        return float(text.strip()) * scale
    except ValueError:
        raise RuleError(label, f"{label} must be a number") from None


@router.get("/settings/alerts")
def alerts_page(request: Request, viewer: CurrentViewer, session: DbSession):
    return _page(request, session, viewer)


@router.post("/settings/alerts/rules")
async def add_rule(request: Request, viewer: AlertManager, session: DbSession):
    if (refused := _cross_site(request, session, viewer)) is not None:
        return refused
    form = await request.form()
    fields = {k: str(v) for k, v in form.items() if k != "channels"}
    allowed = set(KINDS.get(fields.get("kind", ""), ((), ""))[0])
    try:
        body = RuleIn(
            name=fields.get("name", "").strip() or "-", kind=fields.get("kind", ""),
            # Only the chosen kind's parameters: the form shows every parameter field at once.
            params={p: fields[p].strip() for p in PARAMS if p in allowed and fields.get(p, "").strip()},
            threshold=_number(fields.get("threshold", ""), "threshold"),
            window_s=None if (w := _number(fields.get("window_min", ""), "window", scale=60)) is None else int(w),
            renotify_s=None if (r := _number(fields.get("renotify_min", ""), "re-notify", scale=60)) is None else int(r),
            min_volume=int(_number(fields.get("min_volume", ""), "minimum volume") or 0),
            channel_ids=[int(c) for c in form.getlist("channels") if str(c).isdigit()],
        )
        row = put_rule(session, viewer.project_id, body)
    except (RuleError, ValidationError, ValueError) as exc:
        return _page(request, session, viewer, status=400, error=f"Rule not added: {exc}", form=fields)
    record(session, request, viewer, "alert_rule.create", target=row.name, details={"id": row.id, "kind": row.kind})
    session.commit()
    return _done("rule-added")


@router.post("/settings/alerts/rules/{rule_id}/toggle")
def toggle_rule(request: Request, rule_id: int, viewer: AlertManager, session: DbSession):
    if (refused := _cross_site(request, session, viewer)) is not None:
        return refused
    row = get_rule(session, viewer.project_id, rule_id)
    if row is None:
        return _page(request, session, viewer, status=404, error=f"No alert rule {rule_id} in this project.")
    rule = parse_rule(row.kind, row.params, row.threshold, row.window_s, row.renotify_s, row.min_volume)
    save_rule(session, viewer.project_id, row.name, rule, enabled=not row.enabled, channel_ids=row.channel_ids,
              existing=row)
    record(session, request, viewer, "alert_rule.update", target=row.name,
           details={"id": row.id, "kind": row.kind, "enabled": row.enabled})
    session.commit()
    return _done("rule-toggled")


@router.post("/settings/alerts/rules/{rule_id}/remove")
def remove_rule(request: Request, rule_id: int, viewer: AlertManager, session: DbSession):
    if (refused := _cross_site(request, session, viewer)) is not None:
        return refused
    name = delete_rule(session, viewer.project_id, rule_id)
    if name is None:
        return _page(request, session, viewer, status=404, error=f"No alert rule {rule_id} in this project.")
    record(session, request, viewer, "alert_rule.delete", target=name, details={"id": rule_id})
    session.commit()
    return _done("rule-removed")


@router.post("/settings/alerts/channels")
def add_channel_form(request: Request, viewer: AlertManager, session: DbSession,
                     name: Annotated[str, Form()] = "", kind: Annotated[str, Form()] = "",
                     target: Annotated[str, Form()] = "", secret: Annotated[str, Form()] = ""):
    if (refused := _cross_site(request, session, viewer)) is not None:
        return refused
    form = {"channel_name": name, "channel_kind": kind, "channel_target": target}
    try:
        row, plain = put_channel(session, viewer.project_id,
                                 ChannelIn(name=name.strip() or "-", kind=kind, target=target, secret=secret or None),
                                 request.app.state.settings)
    except (RuleError, ValidationError) as exc:
        return _page(request, session, viewer, status=400, error=f"Channel not added: {exc}", form=form)
    record(session, request, viewer, "alert_channel.create", target=row.name, details={"id": row.id, "kind": row.kind})
    session.commit()
    return _page(request, session, viewer, created=channel_out(row, created_secret=plain, reveal=True))


@router.post("/settings/alerts/channels/{channel_id}/remove")
def remove_channel(request: Request, channel_id: int, viewer: AlertManager, session: DbSession):
    if (refused := _cross_site(request, session, viewer)) is not None:
        return refused
    name = delete_channel(session, viewer.project_id, channel_id)
    if name is None:
        return _page(request, session, viewer, status=404, error=f"No channel {channel_id} in this project.")
    record(session, request, viewer, "alert_channel.delete", target=name, details={"id": channel_id})
    session.commit()
    return _done("channel-removed")


@router.post("/settings/alerts/channels/{channel_id}/test")
def test_channel(request: Request, channel_id: int, viewer: AlertManager, session: DbSession):
    if (refused := _cross_site(request, session, viewer)) is not None:
        return refused
    channel = get_channel(session, viewer.project_id, channel_id)
    if channel is None:
        return _page(request, session, viewer, status=404, error=f"No channel {channel_id} in this project.")
    try:
        delivery = send_test(session, request.app.state.sessionmaker, request.app.state.settings, viewer.project_id,
                             channel, utcnow(), lambda: record(session, request, viewer, "alert_channel.test",
                                                               target=channel.name, details={"id": channel.id}))
    except TooSoon as exc:
        return _page(request, session, viewer, status=429, error=f"Test not sent: {exc}.")
    return _page(request, session, viewer, tested=(channel.name, delivery))
