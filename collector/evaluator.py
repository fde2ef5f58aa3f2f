"""The background evaluator: turns new traces' evaluation events into scores and judges their
model calls with the built-in evaluators and the projects' rules (db/queries/evaluation.py).

One daemon thread per collector process, like the attributor (collector/attributor.py): every
`interval` seconds it evaluates batches of quiet traces, each batch in its own transaction,
until none is pending. Claims use FOR UPDATE SKIP LOCKED, so several processes share the work.
An error is logged and retried on the next tick; it never stops ingest.
"""

from __future__ import annotations

from sqlalchemy.orm import sessionmaker

from core.ticker import Ticker
from db.queries.evaluation import evaluate_pending


class Evaluator:
    def __init__(self, sessions: sessionmaker, *, delay: float = 5.0, interval: float = 1.0, batch: int = 200,
                 builtins: bool = True) -> None:
        self._sessions = sessions
        self.delay = delay
        self.interval = interval
        self.batch = batch
        self.builtins = builtins
        self._ticker = Ticker("causeline-evaluator", interval, self._drain, what="evaluation")
        self.evaluated = 0  # traces evaluated since start (for tests)

    @classmethod
    def from_settings(cls, sessions: sessionmaker, settings) -> "Evaluator":
        return cls(sessions, delay=settings.evaluation_delay_s, builtins=settings.evaluators_enabled)

    def start(self) -> None:
        self._ticker.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._ticker.stop(timeout)

    def run_once(self) -> int:
        """Evaluate one batch of pending traces and commit; returns how many."""
        with self._sessions.begin() as session:
            done = evaluate_pending(session, delay=self.delay, limit=self.batch, builtins=self.builtins)
        self.evaluated += done
        return done

    def _drain(self) -> None:
        while self.run_once() >= self.batch and not self._ticker.stopping():
            pass
