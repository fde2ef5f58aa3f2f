"""The Alerts page's data (and GET /api/alerts): rules, channels (secrets masked), what is
firing, recent deliveries with their outcome; plus the input models of the rule and channel
forms and API bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from core.alerts import CHANNEL_KINDS, KINDS, PERIODS, mask_target
from core.permissions import Permission, Principal
from db.queries.alerts import firing_states, list_channels, list_rules, recent_deliveries, rule_status


class RuleIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(description=f"One of: {', '.join(KINDS)}.")
    params: dict[str, str] = Field(default_factory=dict, description="Scope of the rule (see docs/alerts.md): agent, "
                                   "step, provider, model, error_class, period (hour/day/month), user, dimension, metric.")
    threshold: float | None = Field(default=None, description="Rates are shares (0.1 = 10%), latency in ms, cost in USD; "
                                    "ignored by event rules (new root cause, anomaly, served-model change).")
    window_s: int | None = Field(default=None, description="Window judged, seconds (default 3600; cost rules use their period).")
    renotify_s: int | None = Field(default=None, description="Re-notify interval while firing, seconds (default 4 h; 0: never).")
    min_volume: int = Field(default=0, ge=0, description="Runs or calls below which the rule does not judge.")
    enabled: bool = True
    channel_ids: list[int] = Field(default_factory=list)


class ChannelIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(description=f"One of: {', '.join(CHANNEL_KINDS)}.")
    target: str = Field(default="", max_length=2000, description="webhook: its URL; pagerduty: Events API URL (default "
                        "PagerDuty's); email: comma-separated addresses; slack: unused.")
    secret: str | None = Field(default=None, max_length=2000, description="webhook: HMAC key (generated when empty); "
                               "slack: the incoming-webhook URL; pagerduty: the routing key. Shown once, then masked.")


class RuleOut(BaseModel):
    id: int
    name: str
    kind: str
    params: dict[str, str]
    threshold: float
    window_s: int
    renotify_s: int
    min_volume: int
    enabled: bool
    channel_ids: list[int]
    updated_at: datetime
    status: str | None = Field(default=None, description="firing or ok (null: never breached), since `status_since`.")
    status_since: datetime | None = None
    last_fired: datetime | None = Field(default=None, description="When it last started firing (kept after it resolved).")


class ChannelOut(BaseModel):
    id: int
    name: str
    kind: str
    target: str
    secret: str | None = Field(description="Masked; the full secret is returned once, when the channel is created.")
    created_at: datetime


class CreatedChannelOut(ChannelOut):
    secret: str | None = Field(description="The full secret, shown this once.")


class FiringOut(BaseModel):
    rule_id: int
    subject: str
    since: datetime
    last_notified: datetime | None
    value: float | None
    evidence: dict


class DeliveryOut(BaseModel):
    id: int
    rule: str | None
    channel: str
    event: str
    status: str = Field(description="pending (retrying), sent or failed (gave up).")
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    summary: str | None


class KindOut(BaseModel):
    kind: str
    params: list[str]
    threshold: str


class AlertsOut(BaseModel):
    project: str
    can_manage: bool
    kinds: list[KindOut]
    channel_kinds: list[str]
    periods: list[str]
    rules: list[RuleOut]
    channels: list[ChannelOut]
    firing: list[FiringOut]
    deliveries: list[DeliveryOut]


def rule_out(r, status: tuple[str, datetime, datetime | None] | None = None) -> RuleOut:
    return RuleOut(id=r.id, name=r.name, kind=r.kind, params=dict(r.params), threshold=r.threshold, window_s=r.window_s,
                   renotify_s=r.renotify_s, min_volume=r.min_volume, enabled=r.enabled,
                   channel_ids=list(r.channel_ids), updated_at=r.updated_at,
                   status=status[0] if status else None, status_since=status[1] if status else None,
                   last_fired=status[2] if status else None)


def channel_out(c, *, created_secret: str | None = None, reveal: bool = False) -> ChannelOut:
    """A channel as listed (target and secret masked), or, with `reveal` right after its creation,
    with its target and plain secret (`created_secret`: the stored one is encrypted)."""
    if reveal:
        return CreatedChannelOut(id=c.id, name=c.name, kind=c.kind, target=c.target, secret=created_secret,
                                 created_at=c.created_at)
    return ChannelOut(id=c.id, name=c.name, kind=c.kind, target=mask_target(c.kind, c.target),
                      secret=c.secret_hint, created_at=c.created_at)


def alerts_data(session: Session, principal: Principal) -> AlertsOut:
    pid = principal.project_id
    statuses = rule_status(session, pid)
    return AlertsOut(
        project=principal.project_slug, can_manage=principal.can(Permission.MANAGE_ALERTS),
        kinds=[KindOut(kind=k, params=list(p), threshold=t) for k, (p, t) in KINDS.items()],
        channel_kinds=list(CHANNEL_KINDS), periods=list(PERIODS),
        rules=[rule_out(r, statuses.get(r.id)) for r in list_rules(session, pid)],
        channels=[channel_out(c) for c in list_channels(session, pid)],
        firing=[FiringOut(rule_id=s.rule_id, subject=s.subject, since=s.since, last_notified=s.last_notified,
                          value=s.value, evidence=s.evidence) for s in firing_states(session, pid)],
        deliveries=[DeliveryOut(id=d.id, rule=rule, channel=channel, event=d.event, status=d.status,
                                attempts=d.attempts, last_error=d.last_error, created_at=d.created_at,
                                sent_at=d.sent_at, summary=d.payload.get("summary"))
                    for d, channel, rule in recent_deliveries(session, pid)],
    )
