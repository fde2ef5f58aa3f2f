"""The alert evaluation cycle: measure every enabled rule, move each subject's state, record the
notifications (the outbox), then send what is due. docs/alerts.md.

One cycle at a time across every server process (a PostgreSQL advisory lock); time is
passed in (`now`), so tests drive it explicitly. Per rule, the state change and the
deliveries it decides commit together, before anything is sent; each delivery is then
claimed, sent and marked in its own transaction. A crash after a send and before its mark
re-sends it once, with the same idempotency key; nothing else sends twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker as SessionMaker

from alerts.channels import DeliveryError, send as send_notification
from alerts.secret_box import PREFIX, SecretBox, SecretBoxError
from alerts.signals import Memo, measure
from core.alert_messages import notification
from core.alerts import FIRING, dedup_key, evaluate, mask_secret, next_attempt, parse_rule
from core.settings import Settings
from core.ticker import Ticker
from db.models import AlertChannel, AlertDelivery, AlertRule, Project
from db.queries.alerts import (
    add_delivery, claim_due, enabled_rules, forget_quiet_states, plain_secret_channels, release_evaluator_lock,
    save_state, states_of,
    try_evaluator_lock,
)

log = logging.getLogger("causeline.alerts")
Sender = Callable[[str, str, str | None, dict, Settings], None]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def idempotency_key(*parts) -> str:
    """Deterministic: the same decision recorded twice is one row (unique in alert_deliveries)."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:40]


@dataclass
class CycleResult:
    rules: int = 0
    recorded: int = 0  # deliveries written
    sent: int = 0
    failed_attempts: int = 0
    queries: int = 0
    errors: list[str] = field(default_factory=list)


def rule_summary(row: AlertRule) -> dict:
    return {"id": row.id, "name": row.name, "kind": row.kind, "params": dict(row.params),
            "threshold": row.threshold}


def record_rule(session, row: AlertRule, project_slug: str, rule, since: datetime, until: datetime,
                measured, prev: dict, channels: list[AlertChannel], settings: Settings, now: datetime) -> int:
    """One measured rule: transition every subject, store the states that matter, record the
    notifications (intents, sent later). Returns how many were recorded."""
    recorded = 0
    for t in evaluate(rule, prev, measured, now):
        m = t.measurement
        evidence = dict(m.evidence) if m else {}
        if t.action or t.state.status == FIRING or t.subject in prev:
            save_state(session, row.id, t.subject, t.state, value=m.value if m else None, evidence=evidence, now=now,
                       fired=t.action == "firing")
        if not t.action:
            continue
        for channel in channels:
            key = idempotency_key(row.id, t.subject, t.action, now.isoformat(), channel.id)
            payload = notification(
                idempotency_key=key, event=t.action, dedup_key=dedup_key(row.id, t.subject),
                project_slug=project_slug, rule=rule_summary(row), subject=t.subject,
                value=m.value if m else None, volume=m.volume if m else 0, since=since.isoformat(),
                until=until.isoformat(), evidence=evidence, base_url=settings.public_base_url,
                created_at=now.isoformat())
            recorded += add_delivery(session, project_id=row.project_id, rule_id=row.id, channel_id=channel.id,
                                     event=t.action, idempotency_key=key, payload=payload, now=now)
    measured_subjects = {m.subject for m in measured}
    if any(st.status != FIRING and s not in measured_subjects for s, st in prev.items()):
        forget_quiet_states(session, row.id, measured_subjects)
    return recorded


def evaluate_rules(sessions: SessionMaker, settings: Settings, now: datetime, result: CycleResult) -> None:
    """Measure every enabled rule (reads, shared through the cycle's memo; a rule whose reads
    fail is skipped, its state untouched), then move the states and record the notifications
    of all of them in one transaction: one commit per cycle, a handful of writes per change."""
    memo = Memo()
    measured = []
    with sessions() as reads:
        for todo in enabled_rules(reads):
            row = todo.row
            try:
                rule = parse_rule(row.kind, row.params, row.threshold, row.window_s, row.renotify_s, row.min_volume)
                measured.append((todo, rule, *measure(reads, row.project_id, rule, now, memo)))
            except Exception as exc:  # noqa: BLE001 - one broken rule never stops the others
                reads.rollback()
                log.exception("alert rule %s could not be evaluated", row.id)
                result.errors.append(f"rule {row.id}: {type(exc).__name__}: {exc}")
    result.queries += memo.queries
    if not measured:
        return
    with sessions.begin() as session:
        states = states_of(session, [todo.row.id for todo, *_ in measured])
        channels = {c.id: c for c in session.scalars(select(AlertChannel).where(
            AlertChannel.project_id.in_({todo.row.project_id for todo, *_ in measured})))}
        for todo, rule, since, until, found in measured:
            row = todo.row
            targets = [channels[i] for i in row.channel_ids if i in channels
                       and channels[i].project_id == row.project_id]
            result.recorded += record_rule(session, row, todo.project_slug, rule, since, until, found,
                                           states.get(row.id, {}), targets, settings, now)
            result.rules += 1


def deliver_due(sessions: SessionMaker, settings: Settings, now: datetime, result: CycleResult, *,
                send: Sender = send_notification, only: int | None = None, limit: int = 200) -> None:
    """Send due deliveries, oldest first, one per transaction (held while it is sent, so no
    other process sends it too); a failure is retried with backoff, then given up."""
    box = SecretBox.from_settings(settings)
    for _ in range(limit):
        with sessions.begin() as session:
            claimed = claim_due(session, now, only=only)
            if claimed is None:
                return
            delivery, channel = claimed
            delivery.attempts += 1
            try:
                try:
                    secret = box.open(channel.secret)
                except SecretBoxError as exc:
                    raise DeliveryError(str(exc)) from None
                send(channel.kind, channel.target, secret, delivery.payload, settings)
            except DeliveryError as exc:
                result.failed_attempts += 1
                delivery.last_error = str(exc)
                # A test notification is tried once: its outcome is the answer to the button, and a
                # retried one would hold the channel's real notifications behind it.
                retry = None if delivery.event == "test" else next_attempt(delivery.attempts, now)
                if retry is None:
                    delivery.status = "failed"
                else:
                    delivery.next_attempt_at = retry
                log.warning("alert delivery %s to %s failed (attempt %s): %s", delivery.id, channel.name,
                            delivery.attempts, exc)
            else:
                result.sent += 1
                delivery.status, delivery.sent_at, delivery.last_error = "sent", now, None
        if only is not None:
            return


def run_cycle(engine: Engine, sessions: SessionMaker, settings: Settings, now: datetime, *,
              send: Sender = send_notification) -> CycleResult | None:
    """One full cycle, or None when another process holds the evaluator lock."""
    with engine.connect() as lock:
        got = try_evaluator_lock(lock)
        lock.commit()  # the session-level lock outlives this transaction; no idle transaction held
        if not got:
            return None
        try:
            result = CycleResult()
            seal_plain_secrets(sessions, settings)
            evaluate_rules(sessions, settings, now, result)
            deliver_due(sessions, settings, now, result, send=send)
            return result
        finally:
            release_evaluator_lock(lock)
            lock.commit()


def seal_plain_secrets(sessions: SessionMaker, settings: Settings) -> int:
    """Encrypt channel secrets stored before encryption existed (schema 0029); how many."""
    with sessions.begin() as session:
        channels = plain_secret_channels(session, PREFIX)
        if channels:
            box = SecretBox.from_settings(settings)
            for channel in channels:
                channel.secret, channel.secret_hint = box.seal(channel.secret), mask_secret(channel.secret)
        return len(channels)


def record_test_notification(session, project_id: int, channel: AlertChannel, settings: Settings, now: datetime) -> int:
    """Record a test delivery to `channel` (sent by deliver_due(only=...)); returns its id."""
    slug = session.scalar(select(Project.slug).where(Project.id == project_id))
    key = idempotency_key("test", channel.id, now.isoformat())
    payload = notification(
        idempotency_key=key, event="test", dedup_key=f"causeline-test-{channel.id}", project_slug=slug,
        rule={"id": None, "name": "Test notification", "kind": "test", "params": {}, "threshold": 0},
        subject="", value=None, volume=0, since=now.isoformat(), until=now.isoformat(),
        evidence={"note": "sent from Settings > Alerts to check this channel"}, base_url=settings.public_base_url,
        created_at=now.isoformat())
    add_delivery(session, project_id=project_id, rule_id=None, channel_id=channel.id, event="test",
                 idempotency_key=key, payload=payload, now=now)
    return session.scalar(select(AlertDelivery.id).where(AlertDelivery.idempotency_key == key))


class AlertJob:
    """The evaluator in the background: a daemon thread running `run_cycle` every `interval`
    seconds. Started and stopped by create_app's lifespan (server/app.py)."""

    def __init__(self, engine: Engine, sessions: SessionMaker, settings: Settings, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.engine, self.sessions, self.settings, self.clock = engine, sessions, settings, clock
        self._ticker = Ticker("causeline-alerts", settings.alerts_interval_s, self._cycle, what="alert evaluation")

    @property
    def running(self) -> bool:
        return self._ticker.running

    def start(self) -> None:
        self._ticker.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._ticker.stop(timeout)

    def _cycle(self) -> None:
        run_cycle(self.engine, self.sessions, self.settings, self.clock())


def replay(engine: Engine, sessions: SessionMaker, settings: Settings, since: datetime, until: datetime,
           step, stop: threading.Event | None = None) -> list[CycleResult]:
    """Evaluate as if the evaluator had run every `step` from `since` to `until` (a rule's
    history over data already stored, e.g. the demo week); notifications are recorded as they
    would have been. Ends early, between two cycles, once `stop` is set."""
    results, t = [], since
    while t <= until and not (stop is not None and stop.is_set()):
        result = run_cycle(engine, sessions, settings, t)
        if result is not None:
            results.append(result)
        t += step
    return results
