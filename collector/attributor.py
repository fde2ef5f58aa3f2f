"""The background attributor: keeps `trace_failures` up to date for /api/failures.

One daemon thread per collector process, with its own database sessions. Every
`interval` seconds it runs db.queries.forensics.attribute_pending in its own
transaction until nothing is pending: traces quiet for `delay` seconds whose
attribution is missing or older than their last update are claimed with
FOR UPDATE SKIP LOCKED (so several collectors share the work), fairly across projects
(the longest-waiting projects first, an equal share of the batch each), recomputed within
a per-trace budget (`budget_s`, `max_spans`: a larger or slower trace is attributed by a
bounded method and marked partially attributed) and committed. An error is logged and
retried on the next tick; it never stops ingest.
"""

from __future__ import annotations

from sqlalchemy.orm import sessionmaker

from core.ticker import Ticker
from db.queries.failure_rollups import fold
from db.queries.forensics import BUDGET_S, BUDGET_SPANS, attribute_pending


class Attributor:
    def __init__(self, sessions: sessionmaker, *, delay: float = 5.0, interval: float = 1.0, batch: int = 500,
                 budget_s: float = BUDGET_S, max_spans: int = BUDGET_SPANS) -> None:
        self._sessions = sessions
        self.delay = delay
        self.budget_s = budget_s
        self.max_spans = max_spans
        self.interval = interval
        self.batch = batch
        self._ticker = Ticker("causeline-attributor", interval, self._drain, what="failure attribution")
        self.attributed = 0  # traces attributed since start (for tests and metrics)

    @classmethod
    def from_settings(cls, sessions: sessionmaker, settings) -> "Attributor":
        # The budget settings are read with defaults until core/settings.py declares them.
        return cls(sessions, delay=settings.attribution_delay_s,
                   budget_s=settings.attribution_budget_s,
                   max_spans=settings.attribution_max_spans)

    def start(self) -> None:
        self._ticker.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._ticker.stop(timeout)

    def run_once(self) -> int:
        """Attribute one batch of pending traces and commit; returns how many."""
        with self._sessions.begin() as session:
            done = attribute_pending(session, delay=self.delay, limit=self.batch, budget_s=self.budget_s,
                                     max_spans=self.max_spans)
        self.attributed += done
        if done:
            # The batch journaled its failure_rollups changes; fold them in, in a short transaction
            # of its own (the batch's never waits on another collector's rollup rows).
            with self._sessions.begin() as session:
                fold(session)
        return done

    def _drain(self) -> None:
        while self.run_once() >= self.batch and not self._ticker.stopping():
            pass
