"""Alert rules, channels, per-subject states and deliveries (the outbox); docs/alerts.md.

Query functions take a session and never commit. A delivery is inserted `pending` in the
transaction that decided it (with the state change), claimed one at a time with
FOR UPDATE SKIP LOCKED while it is sent, then marked sent, retried later or failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, text, true
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, aliased

from core.alerts import AlertState as State, Rule
from db.models import AlertChannel, AlertDelivery, AlertRule, AlertState, Project
from db.queries.failures import DIMENSIONS

# pg_try_advisory_lock key of the evaluator: one evaluation cycle at a time across processes.
EVALUATOR_LOCK = 0x43_4C_41_4C  # "CLAL"


# --- rules and channels -----------------------------------------------------------------

def list_rules(session: Session, project_id: int) -> list[AlertRule]:
    return list(session.scalars(select(AlertRule).where(AlertRule.project_id == project_id).order_by(AlertRule.name)))


def get_rule(session: Session, project_id: int, rule_id: int) -> AlertRule | None:
    return session.scalar(select(AlertRule).where(AlertRule.project_id == project_id, AlertRule.id == rule_id))


def rule_by_name(session: Session, project_id: int, name: str) -> AlertRule | None:
    return session.scalar(select(AlertRule).where(AlertRule.project_id == project_id, AlertRule.name == name))


def save_rule(session: Session, project_id: int, name: str, rule: Rule, *, enabled: bool, channel_ids: list[int],
              existing: AlertRule | None = None) -> AlertRule:
    """Create a rule, or update `existing` (its states are kept: an edit does not re-fire)."""
    row = existing or AlertRule(project_id=project_id)
    row.name, row.kind, row.params, row.threshold = name, rule.kind, dict(rule.params), rule.threshold
    row.window_s, row.renotify_s = int(rule.window.total_seconds()), int(rule.renotify.total_seconds())
    row.min_volume, row.enabled, row.channel_ids = rule.min_volume, enabled, list(channel_ids)
    row.updated_at = func.now()
    if existing is None:
        session.add(row)
    session.flush()
    return row


def delete_rule(session: Session, project_id: int, rule_id: int) -> str | None:
    """Deletes the rule; returns its name, or None when the project has no such rule."""
    return session.scalar(delete(AlertRule).where(AlertRule.project_id == project_id, AlertRule.id == rule_id)
                          .returning(AlertRule.name))


def list_channels(session: Session, project_id: int) -> list[AlertChannel]:
    return list(session.scalars(select(AlertChannel).where(AlertChannel.project_id == project_id)
                                .order_by(AlertChannel.name)))


def plain_secret_channels(session: Session, sealed_prefix: str) -> list[AlertChannel]:
    """Channels (of every project: the alert job's housekeeping) whose secret is not encrypted yet."""
    return list(session.scalars(select(AlertChannel).where(AlertChannel.secret.is_not(None),
                                                           ~AlertChannel.secret.startswith(sealed_prefix, autoescape=True))
                                .with_for_update()))


def get_channel(session: Session, project_id: int, channel_id: int) -> AlertChannel | None:
    return session.scalar(select(AlertChannel).where(AlertChannel.project_id == project_id,
                                                     AlertChannel.id == channel_id))


def channel_by_name(session: Session, project_id: int, name: str) -> AlertChannel | None:
    return session.scalar(select(AlertChannel).where(AlertChannel.project_id == project_id,
                                                     AlertChannel.name == name))


def add_channel(session: Session, project_id: int, *, name: str, kind: str, target: str,
                secret: str | None, secret_hint: str | None) -> AlertChannel:
    """`secret` as stored: encrypted by the caller (alerts/secret_box.py)."""
    row = AlertChannel(project_id=project_id, name=name, kind=kind, target=target, secret=secret,
                       secret_hint=secret_hint)
    session.add(row)
    session.flush()
    return row


def delete_channel(session: Session, project_id: int, channel_id: int) -> str | None:
    """Removes a channel and takes it off every rule of the project; returns its name, or None
    when the project has no such channel."""
    name = session.scalar(delete(AlertChannel).where(AlertChannel.project_id == project_id,
                                                     AlertChannel.id == channel_id).returning(AlertChannel.name))
    if name is not None:
        session.execute(text("UPDATE alert_rules SET channel_ids = array_remove(channel_ids, :id) "
                             "WHERE project_id = :project_id"), {"id": channel_id, "project_id": project_id})
    return name


def last_test_at(session: Session, project_id: int, channel_id: int) -> datetime | None:
    """When the channel's latest test notification was recorded; locks the channel row first, so
    two test requests for one channel are decided one after the other."""
    session.execute(select(AlertChannel.id).where(AlertChannel.project_id == project_id,
                                                  AlertChannel.id == channel_id).with_for_update())
    return session.scalar(select(func.max(AlertDelivery.created_at)).where(
        AlertDelivery.project_id == project_id, AlertDelivery.channel_id == channel_id, AlertDelivery.event == "test"))


# --- evaluation -----------------------------------------------------------------------------

def try_evaluator_lock(connection) -> bool:
    """Session-level advisory lock on `connection` (released by release_evaluator_lock or when
    the connection closes): false when another process is evaluating."""
    return bool(connection.execute(select(func.pg_try_advisory_lock(EVALUATOR_LOCK))).scalar())


def release_evaluator_lock(connection) -> None:
    connection.execute(select(func.pg_advisory_unlock(EVALUATOR_LOCK)))


@dataclass(frozen=True)
class RuleToEvaluate:
    row: AlertRule
    project_slug: str


def enabled_rules(session: Session) -> list[RuleToEvaluate]:
    rows = session.execute(select(AlertRule, Project.slug).join(Project, Project.id == AlertRule.project_id)
                           .where(AlertRule.enabled).order_by(AlertRule.project_id, AlertRule.id)).all()
    return [RuleToEvaluate(rule, slug) for rule, slug in rows]


def states_of(session: Session, rule_ids: list[int]) -> dict[int, dict[str, State]]:
    """rule id -> subject -> state, for every rule given (one query)."""
    out: dict[int, dict[str, State]] = {}
    for r in session.scalars(select(AlertState).where(AlertState.rule_id.in_(rule_ids))):
        out.setdefault(r.rule_id, {})[r.subject] = State(r.status, r.since, r.last_notified)
    return out


def firing_states(session: Session, project_id: int) -> list[AlertState]:
    return list(session.scalars(
        select(AlertState).join(AlertRule, AlertRule.id == AlertState.rule_id)
        .where(AlertRule.project_id == project_id, AlertState.status == "firing")
        .order_by(AlertState.since.desc())))


def rule_status(session: Session, project_id: int) -> dict[int, tuple[str, datetime, datetime | None]]:
    """rule id -> (firing or ok, since when, when it last started firing): firing if any subject
    fires (since the earliest), else ok since the latest change."""
    rows = session.execute(text("""
        SELECT s.rule_id, bool_or(s.status = 'firing') AS firing,
               COALESCE(min(s.since) FILTER (WHERE s.status = 'firing'), max(s.since)) AS since,
               max(s.fired_at) AS fired_at
        FROM alert_states s JOIN alert_rules r ON r.id = s.rule_id
        WHERE r.project_id = :project_id GROUP BY s.rule_id"""), {"project_id": project_id}).all()
    return {r.rule_id: ("firing" if r.firing else "ok", r.since, r.fired_at) for r in rows}


def save_state(session: Session, rule_id: int, subject: str, state: State, *, value: float | None,
               evidence: dict, now: datetime, fired: bool = False) -> None:
    """Upsert one subject's state; `fired`: it starts firing now (remembered after it resolves)."""
    values = {"status": state.status, "since": state.since, "last_notified": state.last_notified,
              "value": value, "evidence": evidence, "evaluated_at": now}
    if fired:
        values["fired_at"] = now
    session.execute(insert(AlertState).values(rule_id=rule_id, subject=subject, **values)
                    .on_conflict_do_update(index_elements=["rule_id", "subject"], set_=values))


def forget_quiet_states(session: Session, rule_id: int, keep: set[str]) -> None:
    """Drop `ok` states of subjects no longer measured (old event findings), so they do not pile up."""
    session.execute(delete(AlertState).where(AlertState.rule_id == rule_id, AlertState.status == "ok",
                                             AlertState.subject.not_in(keep) if keep else true()))


def new_failure_keys(session: Session, project_id: int, dimension: str, *, since: datetime, until: datetime,
                     examples: int = 3) -> list[tuple[str, datetime, int, list[bytes]]]:
    """Root-cause groups (by a /api/failures dimension) seen in [since, until) and never before:
    (key, first seen, failures, latest example runs)."""
    expr = DIMENSIONS[dimension]  # grouped exactly as /api/failures groups
    rows = session.execute(text(f"""
        WITH w AS (
            SELECT COALESCE({expr}, '') AS grp, min(tf.trace_start) AS first_seen, count(*) AS n,
                   (array_agg(tf.trace_id ORDER BY tf.trace_start DESC))[1:{int(examples)}] AS ex
            FROM trace_failures tf
            WHERE tf.project_id = :project_id AND tf.trace_start >= :since AND tf.trace_start < :until
            GROUP BY 1
        )
        SELECT grp, first_seen, n, ex FROM w
        WHERE NOT EXISTS (
            SELECT 1 FROM trace_failures tf
            WHERE tf.project_id = :project_id AND tf.trace_start < :since AND COALESCE({expr}, '') = w.grp)
        ORDER BY first_seen, grp"""), {"project_id": project_id, "since": since, "until": until}).all()
    return [(r.grp, r.first_seen, int(r.n), [bytes(t) for t in r.ex]) for r in rows]


# --- deliveries ----------------------------------------------------------------------------

def add_delivery(session: Session, *, project_id: int, rule_id: int | None, channel_id: int, event: str,
                 idempotency_key: str, payload: dict, now: datetime) -> bool:
    """Record the intent to send; false when this very notification is already recorded."""
    result = session.execute(insert(AlertDelivery).values(
        project_id=project_id, rule_id=rule_id, channel_id=channel_id, event=event,
        idempotency_key=idempotency_key, payload=payload, status="pending", attempts=0, next_attempt_at=now,
        created_at=now).on_conflict_do_nothing(index_elements=["idempotency_key"]))
    return result.rowcount > 0


def claim_due(session: Session, now: datetime, *, only: int | None = None) -> tuple[AlertDelivery, AlertChannel] | None:
    """The oldest due pending delivery, locked for this transaction (others skip it). A channel's
    deliveries go out in order: none while an older one to the same channel is still pending
    (a resolve never overtakes its trigger)."""
    older = aliased(AlertDelivery)
    query = (select(AlertDelivery).where(
        AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= now,
        ~select(older.id).where(older.channel_id == AlertDelivery.channel_id, older.status == "pending",
                                older.id < AlertDelivery.id).exists())
        .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id).limit(1).with_for_update(skip_locked=True))
    if only is not None:
        query = query.where(AlertDelivery.id == only)
    row = session.scalar(query)
    if row is None:
        return None
    return row, session.get(AlertChannel, row.channel_id)


def recent_deliveries(session: Session, project_id: int, *, limit: int = 50) -> list[tuple[AlertDelivery, str | None, str | None]]:
    """Latest deliveries with their channel's and rule's names."""
    rows = session.execute(
        select(AlertDelivery, AlertChannel.name, AlertRule.name)
        .join(AlertChannel, AlertChannel.id == AlertDelivery.channel_id)
        .outerjoin(AlertRule, AlertRule.id == AlertDelivery.rule_id)
        .where(AlertDelivery.project_id == project_id)
        .order_by(AlertDelivery.created_at.desc(), AlertDelivery.id.desc()).limit(limit)).all()
    return [(d, c, r) for d, c, r in rows]
