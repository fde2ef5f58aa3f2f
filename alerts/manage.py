"""Changes to a project's alert rules and channels, shared by the API and the Settings page:
every input checked here (core.alerts for rules), the caller records the audit event and commits;
and the test notification, sent at once and at most once per channel every TEST_INTERVAL_S."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from datetime import datetime
from email.utils import getaddresses
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from core.alert_messages import PAGERDUTY_URL
from core.alerts import CHANNEL_KINDS, RuleError, mask_secret, parse_rule
from alerts.evaluator import CycleResult, deliver_due, record_test_notification
from alerts.secret_box import SecretBox
from core.settings import Settings
from db.models import AlertChannel, AlertDelivery, AlertRule
from db.queries.alerts import add_channel, channel_by_name, last_test_at, list_channels, rule_by_name, save_rule

TEST_INTERVAL_S = 10  # "send test notification" cannot be used to flood a receiver


class TooSoon(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"this channel was tested less than {TEST_INTERVAL_S} s ago; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s
from pages.alerts import ChannelIn, RuleIn


def _http_url(value: str, field: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RuleError(field, f"{field} must be an http:// or https:// URL")
    return value.strip()


def put_rule(session: Session, project_id: int, data: RuleIn, existing: AlertRule | None = None) -> AlertRule:
    """Create a rule or update `existing`; raises RuleError naming the bad field."""
    rule = parse_rule(data.kind, data.params, data.threshold, data.window_s, data.renotify_s, data.min_volume)
    name = data.name.strip()
    clash = rule_by_name(session, project_id, name)
    if clash is not None and clash is not existing:
        raise RuleError("name", f"a rule named {name!r} exists already")
    known = {c.id for c in list_channels(session, project_id)}
    unknown = [i for i in data.channel_ids if i not in known]
    if unknown:
        raise RuleError("channel_ids", f"no such channel in this project: {', '.join(map(str, unknown))}")
    return save_rule(session, project_id, name, rule, enabled=data.enabled,
                     channel_ids=list(dict.fromkeys(data.channel_ids)), existing=existing)


def put_channel(session: Session, project_id: int, data: ChannelIn,
                settings: Settings) -> tuple[AlertChannel, str | None]:
    """Create a channel; the row (its secret encrypted) and the plain secret, to show once.
    Raises RuleError."""
    name, target, secret = data.name.strip(), data.target.strip(), (data.secret or "").strip() or None
    if data.kind not in CHANNEL_KINDS:
        raise RuleError("kind", f"kind must be one of {', '.join(CHANNEL_KINDS)}")
    if channel_by_name(session, project_id, name) is not None:
        raise RuleError("name", f"a channel named {name!r} exists already")
    if data.kind == "webhook":
        target = _http_url(target, "target")
        secret = secret or "whsec_" + secrets.token_urlsafe(32)
    elif data.kind == "slack":
        secret, target = _http_url(secret or "", "secret"), "Slack incoming webhook"
    elif data.kind == "pagerduty":
        target = _http_url(target or PAGERDUTY_URL, "target")
        if not secret:
            raise RuleError("secret", "a PagerDuty channel needs its integration's routing key")
    else:
        addresses = [a for _, a in getaddresses([target])]
        if not addresses or not all("@" in a and len(a) <= 254 for a in addresses):
            raise RuleError("target", "target must be one or more e-mail addresses, comma-separated")
        target, secret = ", ".join(addresses), None
    row = add_channel(session, project_id, name=name, kind=data.kind, target=target,
                      secret=SecretBox.from_settings(settings).seal(secret), secret_hint=mask_secret(secret))
    return row, secret


def send_test(session: Session, sessions: sessionmaker, settings: Settings, project_id: int, channel: AlertChannel,
              now: datetime, audit: Callable[[], None]) -> AlertDelivery:
    """Record a test notification (and, through `audit`, its audit event) in one transaction,
    commit, and send it now through the delivery loop; the delivery with its outcome. Raises
    TooSoon when the channel was tested less than TEST_INTERVAL_S ago."""
    last = last_test_at(session, project_id, channel.id)
    if last is not None and (waited := (now - last).total_seconds()) < TEST_INTERVAL_S:
        session.rollback()
        raise TooSoon(max(1, math.ceil(TEST_INTERVAL_S - waited)))
    delivery_id = record_test_notification(session, project_id, channel, settings, now)
    audit()
    session.commit()
    deliver_due(sessions, settings, now, CycleResult(), only=delivery_id)
    session.expire_all()
    return session.get(AlertDelivery, delivery_id)
