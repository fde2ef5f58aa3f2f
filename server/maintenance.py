"""The storage maintenance job: partitions made ahead of time, retention enforced.

One daemon thread per server process (started by server/serve.py, like the attributor). At
start it makes the partitions; then every `interval` seconds:
  1. today's and the next AHEAD_DAYS days' partitions of `spans` are created if missing;
  2. every daily partition that no project's retention still covers (and that holds no row of
     a project on legal hold) is truncated, then detached and dropped: no row-by-row delete,
     nothing to vacuum, and no lock on `spans` longer than SHORT_LOCK_TIMEOUT (db/partitions.py);
  3. what is left past each project's cutoff (a project with a shorter retention than its
     neighbours in the same day, spans in the default partition, the trace rollups, lineage,
     root causes and log content of expired traces, rollups past their own longer retention)
     goes in batches of `batch` rows, one short transaction each, pausing between batches.
Several server processes may run it: partition DDL is serialized by an advisory lock (the
others skip that round), and batched deletes are idempotent. A project that lost rows gets one
audit event per round (`retention.enforced`). Days that step 3 emptied are dropped at the end
of the round if `spans` lets them. Errors are logged and retried next round.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from core.retention import AHEAD_DAYS, DEFAULT_DAYS, DEFAULT_ROLLUP_DAYS, Effective, blocking, effective
from core.ticker import Ticker
from db.partitions import (
    detach_partition, empty_partition, ensure_partitions, has_rows_of, hold_still, is_partitioned, partitions,
)
from db.queries.audit import append
from db.queries.retention import (
    delete_log_records, delete_rollups, delete_spans, delete_traces, held_projects, lock_holds, policies,
)

log = logging.getLogger("causeline.maintenance")

LOCK = 0x5CA1E  # pg_try_advisory_xact_lock key of the partition DDL
ACTOR = "causeline:retention"
DETACH_ATTEMPTS, DETACH_PAUSE_S = 3, 1.0  # each failed attempt held ingest up to SHORT_LOCK_TIMEOUT


@dataclass
class Round:
    created: list = field(default_factory=list)  # days
    dropped: list = field(default_factory=list)  # partition names
    deleted: dict = field(default_factory=dict)  # project id -> {what: rows}

    def count(self, project_id: int, what: str, rows: int) -> None:
        if rows:
            per = self.deleted.setdefault(project_id, {})
            per[what] = per.get(what, 0) + rows


class Maintenance:
    def __init__(self, sessions: sessionmaker, *, days: int = DEFAULT_DAYS, rollup_days: int = DEFAULT_ROLLUP_DAYS,
                 interval: float = 3600.0, batch: int = 1000, pause: float = 0.01, ahead: int = AHEAD_DAYS,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self._sessions = sessions
        self.days, self.rollup_days = days, rollup_days
        self.interval, self.batch, self.pause, self.ahead = interval, batch, pause, ahead
        self.clock = clock
        # At start only the partitions: the first deletion waits one interval, so a restart
        # (or a misconfigured retention, noticed at once) never deletes the moment it begins.
        self._ticker = Ticker("causeline-maintenance", interval, self._round, first=self._first_round,
                              what="storage maintenance")
        self.rounds = 0  # rounds the thread finished (for tests)

    @classmethod
    def from_settings(cls, sessions: sessionmaker, settings) -> "Maintenance":
        return cls(sessions, days=settings.retention_days, rollup_days=settings.rollup_retention_days,
                   interval=settings.retention_interval_s, batch=settings.retention_batch_rows)

    def start(self) -> None:
        self._ticker.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._ticker.stop(timeout)

    def _first_round(self) -> None:
        try:
            self.ensure_partitions(self.clock())
        finally:
            self.rounds += 1

    def _round(self) -> None:
        try:
            self.run_once()
        finally:
            self.rounds += 1

    # -- one round --------------------------------------------------------------------------

    def run_once(self) -> Round:
        now = self.clock()
        done = Round()
        try:
            done.created = self.ensure_partitions(now)
        except OperationalError:  # e.g. spans_default busy past the lock timeout: 7 days ahead leave time
            log.warning("storage maintenance: partitions not created this round; retention goes on", exc_info=True)
        with self._sessions() as session:
            rules = [effective(p, now, default_days=self.days, default_rollup_days=self.rollup_days)
                     for p in policies(session)]
        done.dropped = self.drop_partitions(rules)
        for rule in rules:
            if self._ticker.stopping():
                break
            self._delete(rule, done)
        if done.deleted:  # days the batches emptied (their TRUNCATE or DETACH found spans busy)
            done.dropped += self.drop_partitions(rules)
        self._audit(done, rules)
        return done

    def ensure_partitions(self, now: datetime) -> list:
        with self._sessions.begin() as session:
            if not self._ddl_lock(session):
                return []
            return ensure_partitions(session.connection(), now.astimezone(timezone.utc).date(), self.ahead)

    def drop_partitions(self, rules: list[Effective]) -> list[str]:
        """Expired days: emptied (TRUNCATE, space freed at once), then detached and dropped; a
        drop that found `spans` busy is retried next round (the empty day costs nothing)."""
        dropped = []
        with self._sessions() as session:
            conn = session.connection()
            candidates = [p for p in partitions(conn) if p.day is not None] if is_partitioned(conn) else []
        horizon = max((r.span_cutoff for r in rules if r.span_cutoff is not None), default=None)
        for partition in candidates:
            if horizon is None or partition.upper > horizon or self._ticker.stopping():
                continue  # no project's retention has passed this day's end yet
            with self._sessions.begin() as session:
                if not self._may_go(session, partition, rules):
                    continue
                if not empty_partition(session.connection(), partition):
                    log.info("retention: %s busy; its rows go in batches instead", partition.name)
            for attempt in range(DETACH_ATTEMPTS):
                if attempt:
                    self._ticker.pause(DETACH_PAUSE_S)
                with self._sessions.begin() as session:  # again: a late span or a hold may have come since
                    if not self._may_go(session, partition, rules):
                        break
                    if detach_partition(session.connection(), partition):
                        dropped.append(partition.name)
                        log.info("retention: dropped partition %s", partition.name)
                        break
        return dropped

    def _delete(self, rule: Effective, done: Round) -> None:
        if rule.legal_hold:
            return
        steps = (("spans", delete_spans, rule.span_cutoff), ("traces", delete_traces, rule.span_cutoff),
                 ("log_records", delete_log_records, rule.span_cutoff),
                 ("rollups", delete_rollups, rule.rollup_cutoff))
        for what, step, cutoff in steps:
            while not self._ticker.stopping():
                with self._sessions.begin() as session:
                    lock_holds(session)
                    if rule.project_id in held_projects(session):
                        return  # a hold placed during this round wins at once
                    rows = step(session, rule.project_id, cutoff, self.batch)
                done.count(rule.project_id, what, rows)
                if rows < self.batch:
                    break
                time.sleep(self.pause)  # let ingest and readers through between batches

    def _audit(self, done: Round, rules: list[Effective]) -> None:
        by_id = {r.project_id: r for r in rules}
        for project_id, counts in sorted(done.deleted.items()):
            rule = by_id[project_id]
            with self._sessions.begin() as session:
                append(session, project_id=project_id, actor=ACTOR, action="retention.enforced",
                       details={**counts, "days": rule.days, "rollup_days": rule.rollup_days,
                                "cutoff": rule.span_cutoff.isoformat() if rule.span_cutoff else None})
        if done.dropped:
            with self._sessions.begin() as session:
                append(session, project_id=None, actor=ACTOR, action="retention.partitions_dropped",
                       details={"partitions": ",".join(done.dropped)})

    def _may_go(self, session, partition, rules: list[Effective]) -> bool:
        """In the deleting transaction: no other server is doing partition DDL, and no row of a
        project still keeping this day (or on hold now) is in it."""
        if not self._ddl_lock(session):
            return False
        lock_holds(session)
        if not hold_still(session.connection(), partition):
            return False
        kept = sorted(set(blocking(partition.upper, rules)) | held_projects(session))
        return not has_rows_of(session.connection(), partition, kept)

    @staticmethod
    def _ddl_lock(session) -> bool:
        return bool(session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK}).scalar())

