"""/api/alerts: alert rules and channels (read with `read`, changed with `manage_alerts`), what
is firing, recent deliveries, and a test notification per channel. Every change is an audit event
in its own transaction; a change from a browser session must come from this site (CSRF)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from access.audit import record
from access.csrf import require_same_site
from alerts.evaluator import utcnow
from alerts.manage import TooSoon, put_channel, put_rule, send_test
from api.deps import AppSettings, DbSession, ReadPrincipal, api_requires
from core.alerts import RuleError
from core.permissions import Permission, Principal
from db.queries.alerts import delete_channel, delete_rule, get_channel, get_rule
from pages.alerts import (
    AlertsOut, ChannelIn, CreatedChannelOut, DeliveryOut, RuleIn, RuleOut, alerts_data, channel_out, rule_out,
)

AlertManager = Annotated[Principal, Depends(api_requires(Permission.MANAGE_ALERTS))]


def _refused(exc: RuleError) -> HTTPException:
    return HTTPException(422, detail=[{"loc": ["body", exc.field], "msg": str(exc), "type": "value_error"}])


def make_alerts_router() -> APIRouter:
    router = APIRouter(tags=["alerts"])

    @router.get("/alerts", response_model=AlertsOut, summary="Alert rules, channels (secrets masked), what is "
                "firing and the latest deliveries with their outcome")
    def get_alerts(principal: ReadPrincipal, session: DbSession) -> AlertsOut:
        return alerts_data(session, principal)

    @router.post("/alerts/rules", response_model=RuleOut, status_code=201, summary="Create an alert rule")
    def create_rule(body: RuleIn, request: Request, principal: AlertManager, session: DbSession) -> RuleOut:
        require_same_site(request, principal)
        try:
            row = put_rule(session, principal.project_id, body)
        except RuleError as exc:
            raise _refused(exc) from None
        record(session, request, principal, "alert_rule.create", target=row.name,
               details={"id": row.id, "kind": row.kind})
        out = rule_out(row)
        session.commit()
        return out

    @router.put("/alerts/rules/{rule_id}", response_model=RuleOut, summary="Replace an alert rule's definition")
    def update_rule(rule_id: int, body: RuleIn, request: Request, principal: AlertManager,
                    session: DbSession) -> RuleOut:
        require_same_site(request, principal)
        row = get_rule(session, principal.project_id, rule_id)
        if row is None:
            raise HTTPException(404, detail="no such alert rule in this project")
        try:
            row = put_rule(session, principal.project_id, body, existing=row)
        except RuleError as exc:
            raise _refused(exc) from None
        record(session, request, principal, "alert_rule.update", target=row.name,
               details={"id": row.id, "kind": row.kind, "enabled": row.enabled})
        out = rule_out(row)
        session.commit()
        return out

    @router.delete("/alerts/rules/{rule_id}", status_code=204, summary="Delete an alert rule")
    def remove_rule(rule_id: int, request: Request, principal: AlertManager, session: DbSession) -> Response:
        require_same_site(request, principal)
        name = delete_rule(session, principal.project_id, rule_id)
        if name is None:
            raise HTTPException(404, detail="no such alert rule in this project")
        record(session, request, principal, "alert_rule.delete", target=name, details={"id": rule_id})
        session.commit()
        return Response(status_code=204)

    @router.post("/alerts/channels", response_model=CreatedChannelOut, status_code=201,
                 summary="Create a channel; its secret is in this response only (masked afterwards)")
    def create_channel(body: ChannelIn, request: Request, principal: AlertManager,
                       session: DbSession) -> CreatedChannelOut:
        require_same_site(request, principal)
        try:
            row, secret = put_channel(session, principal.project_id, body, request.app.state.settings)
        except RuleError as exc:
            raise _refused(exc) from None
        record(session, request, principal, "alert_channel.create", target=row.name,
               details={"id": row.id, "kind": row.kind})
        out = channel_out(row, created_secret=secret, reveal=True)
        session.commit()
        return out

    @router.delete("/alerts/channels/{channel_id}", status_code=204,
                   summary="Delete a channel (and take it off every rule)")
    def remove_channel(channel_id: int, request: Request, principal: AlertManager, session: DbSession) -> Response:
        require_same_site(request, principal)
        name = delete_channel(session, principal.project_id, channel_id)
        if name is None:
            raise HTTPException(404, detail="no such channel in this project")
        record(session, request, principal, "alert_channel.delete", target=name, details={"id": channel_id})
        session.commit()
        return Response(status_code=204)

    @router.post("/alerts/channels/{channel_id}/test", response_model=DeliveryOut,
                 summary="Send a test notification through a channel now; answers with the delivery's outcome")
    def test_channel(channel_id: int, request: Request, principal: AlertManager, session: DbSession,
                     settings: AppSettings) -> DeliveryOut:
        require_same_site(request, principal)
        channel = get_channel(session, principal.project_id, channel_id)
        if channel is None:
            raise HTTPException(404, detail="no such channel in this project")
        try:
            delivery = send_test(session, request.app.state.sessionmaker, settings, principal.project_id, channel,
                                 utcnow(), lambda: record(session, request, principal, "alert_channel.test",
                                                          target=channel.name, details={"id": channel.id}))
        except TooSoon as exc:
            raise HTTPException(429, detail=str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
        return DeliveryOut(id=delivery.id, rule=None, channel=channel.name, event=delivery.event,
                           status=delivery.status, attempts=delivery.attempts, last_error=delivery.last_error,
                           created_at=delivery.created_at, sent_at=delivery.sent_at,
                           summary=delivery.payload.get("summary"))

    return router
