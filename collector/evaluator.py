"""The background evaluator: turns new traces' evaluation events into scores and judges their
model calls with the built-in evaluators and the projects' rules (db/queries/evaluation.py); then,
when a model endpoint is configured, hands the sampled share of those runs to the LLM-as-judge
evaluators (judge/evaluate.py).

One daemon thread per collector process, like the attributor (collector/attributor.py): every
`interval` seconds it evaluates batches of quiet traces, each batch in its own transaction,
until none is pending. Claims use FOR UPDATE SKIP LOCKED, so several processes share the work.
The judging runs in a second thread, after the batch committed, so a slow model never holds a
claim, a transaction or the structural pass; its queue is bounded (runs beyond it are dropped:
judging is a sample anyway). An error is logged and retried on the next tick; it never stops ingest.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta, timezone

from sqlalchemy.orm import sessionmaker

from core.ticker import Ticker
from db.queries.evaluation import evaluate_pending
from judge.evaluate import RunJudge

JUDGE_QUEUE = 1000  # sampled runs waiting for the judge in this process
# Only new runs are judged: a backlog of old traces (evaluated for the first time after an upgrade)
# must not spend the day's budget.
NEW_RUN_AGE = timedelta(days=1)


class Evaluator:
    def __init__(self, sessions: sessionmaker, *, delay: float = 5.0, interval: float = 1.0, batch: int = 200,
                 builtins: bool = True, judge: RunJudge | None = None) -> None:
        self._sessions = sessions
        self.delay = delay
        self.interval = interval
        self.batch = batch
        self.builtins = builtins
        self.judge = judge
        self._to_judge: deque[tuple[int, bytes]] = deque(maxlen=JUDGE_QUEUE)
        self._ticker = Ticker("causeline-evaluator", interval, self._drain, what="evaluation")
        self._judging = Ticker("causeline-judge", interval, self.judge_pending, what="LLM-as-judge evaluation")
        self.evaluated = 0  # traces evaluated since start (for tests)

    @classmethod
    def from_settings(cls, sessions: sessionmaker, settings) -> "Evaluator":
        return cls(sessions, delay=settings.evaluation_delay_s, builtins=settings.evaluators_enabled,
                   judge=RunJudge.from_settings(sessions, settings))

    def start(self) -> None:
        self._ticker.start()
        if self.judge is not None:
            self._judging.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._ticker.stop(timeout)
        self._judging.stop(timeout)

    def run_once(self) -> int:
        """Evaluate one batch of pending traces and commit; returns how many. The sampled ones
        are queued for the judge once the batch is committed."""
        claimed: list[tuple[int, bytes, datetime]] = []
        with self._sessions.begin() as session:
            done = evaluate_pending(session, delay=self.delay, limit=self.batch, builtins=self.builtins,
                                    claimed_out=claimed)
        if self.judge is not None:
            since = datetime.now(timezone.utc) - NEW_RUN_AGE
            self._to_judge.extend((project_id, trace_id) for project_id, trace_id, updated in claimed
                                  if updated >= since and self.judge.wants(trace_id))
        self.evaluated += done
        return done

    def judge_pending(self) -> int:
        """Judge the queued runs, one at a time; returns the verdicts written."""
        written = 0
        while self.judge is not None and self._to_judge and not self._judging.stopping():
            project_id, trace_id = self._to_judge.popleft()
            written += self.judge.judge_run(project_id, trace_id)
        return written

    def _drain(self) -> None:
        while self.run_once() >= self.batch and not self._ticker.stopping():
            pass
