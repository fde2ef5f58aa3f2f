"""Judge-assisted failure attribution: ask the judge who caused a failed run that structural
attribution cannot explain (core/judge_attribution.py says when and what), and store its verdict in
judge_attributions beside the structural root causes.

`JudgeAttributor` is the background job (off by default: CAUSELINE_JUDGE_ATTRIBUTION, and only with
an endpoint configured). Each tick it takes failed runs whose attribution is up to date and that
the judge has not read in their current version, claims each in a short transaction, reads it,
and only then (no transaction open) asks the judge, through judge.ask, which checks the project's
daily budget and records the call. A run is asked about once per version: a call that fails or
answers garbage is stored as an error and not retried until the run gets new spans; a project
whose budget is spent is left alone for BUDGET_PAUSE_S.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

from sqlalchemy import update
from sqlalchemy.orm import sessionmaker

from core.judge_attribution import METHOD, Step, Verdict, VerdictError, build_messages, parse_verdict, steps_of, weak_evidence
from core.settings import Settings
from core.ticker import Ticker
from db.models import JudgeCall
from db.queries.forensics import trace_attribution
from db.queries.judge_attributions import Pending, claim, last_call_id, pending_runs, release, settle
from db.queries.traces import get_trace
from judge.ask import ask
from judge.client import JudgeError, ModelEndpoint

log = logging.getLogger("causeline.judge")

PROMPT_FILE = "attribution_all_at_once.v1.md"
PROMPT_VERSION = "attribution_all_at_once@1"
MAX_SPANS = 5_000        # spans of one run read for its messages (earliest first)
MAX_REPLY_TOKENS = 1024
BUDGET_PAUSE_S = 300.0   # a project whose daily budget is spent is not looked at again before this


@lru_cache(maxsize=1)
def prompt_template() -> str:
    return files("judge").joinpath("prompts", PROMPT_FILE).read_text(encoding="utf-8")


@dataclass(frozen=True)
class RunMessages:
    steps: list[Step]
    problem: str | None
    failure: str | None


def read_run(sessions: sessionmaker, project_id: int, trace_id: bytes) -> tuple[bool, RunMessages] | None:
    """(weak structural evidence?, the run's messages) read in a short read-only session; None when
    the run is gone."""
    with sessions() as session:
        result = trace_attribution(session, project_id, trace_id)
        if result is None:
            return None
        weak = weak_evidence(result.attribution)
        detail = get_trace(session, project_id, trace_id, max_spans=MAX_SPANS) if weak else None
        if detail is None:
            return weak, RunMessages([], None, None)
        root = next((s for s in detail.spans if s.span_id == detail.trace.root_span_id), None)
        return weak, RunMessages(steps_of(detail.spans), root.input if root is not None else None,
                                 root.status_message if root is not None else None)


def judge_run(sessions: sessionmaker, endpoint: ModelEndpoint, settings: Settings, project_id: int,
              trace_id: bytes, run: RunMessages, *, ground_truth: str | None = None) -> tuple[Verdict, str]:
    """Ask the judge about one run: (verdict, model that answered). Raises JudgeError (the call
    failed or was refused by the budget) or VerdictError (the answer is no verdict; its call is
    then marked `garbage` in judge_calls)."""
    messages = build_messages(prompt_template(), steps=run.steps, problem=run.problem, failure=run.failure,
                              ground_truth=ground_truth)
    reply = ask(sessions, endpoint, settings, project_id=project_id, purpose="attribution", name=METHOD,
                prompt_version=PROMPT_VERSION, messages=messages, trace_id=trace_id, max_tokens=MAX_REPLY_TOKENS)
    try:
        return parse_verdict(reply.text, run.steps), reply.model
    except VerdictError as exc:
        with sessions.begin() as session:
            call = last_call_id(session, project_id, trace_id, METHOD)
            if call is not None:
                session.execute(update(JudgeCall).where(JudgeCall.project_id == project_id, JudgeCall.id == call)
                                .values(outcome="garbage", error=str(exc)[:500]))
        raise


class JudgeAttributor:
    def __init__(self, sessions: sessionmaker, endpoint: ModelEndpoint, settings: Settings, *,
                 interval: float = 5.0, batch: int = 20) -> None:
        self._sessions = sessions
        self.endpoint = endpoint
        self.settings = settings
        self.batch = batch
        self._paused: dict[int, float] = {}  # project -> monotonic time its budget pause ends
        self._ticker = Ticker("causeline-judge-attributor", interval, self.run_once, what="judge-assisted attribution")
        self.asked = 0  # calls sent since start (for tests)

    @classmethod
    def from_settings(cls, sessions: sessionmaker, settings: Settings) -> "JudgeAttributor | None":
        """The job, or None when judge-assisted attribution is off or no endpoint is configured."""
        endpoint = ModelEndpoint.from_settings(settings)
        if not settings.judge_attribution or endpoint is None:
            return None
        return cls(sessions, endpoint, settings)

    def start(self) -> None:
        self._ticker.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._ticker.stop(timeout)

    def run_once(self) -> int:
        """Judge one batch of pending runs; returns how many were settled."""
        now = time.monotonic()
        self._paused = {p: until for p, until in self._paused.items() if until > now}
        with self._sessions() as session:
            runs = pending_runs(session, limit=self.batch, skip_projects=frozenset(self._paused))
        done = 0
        for run in runs:
            if self._ticker.stopping():
                break
            if run.project_id in self._paused:
                continue
            with self._sessions.begin() as session:
                if not claim(session, run):
                    continue
            try:
                done += self._judge(run)
            except Exception as exc:  # noqa: BLE001 - one bad run must not be read again every tick
                log.exception("judge-assisted attribution of trace %s failed", run.trace_id.hex())
                done += self._settle(run, status="error", error=f"internal: {type(exc).__name__}"[:500])
        return done

    def _judge(self, run: Pending) -> int:
        read = read_run(self._sessions, run.project_id, run.trace_id)
        if read is None:
            with self._sessions.begin() as session:
                release(session, run)
            return 0
        weak, messages = read
        if not weak:
            return self._settle(run, status="not_needed")
        if not messages.steps:
            return self._settle(run, status="error", error="no captured messages to judge")
        self.asked += 1
        try:
            verdict, model = judge_run(self._sessions, self.endpoint, self.settings, run.project_id, run.trace_id,
                                       messages)
        except JudgeError as exc:
            if exc.kind == "over_budget":
                self._paused[run.project_id] = time.monotonic() + BUDGET_PAUSE_S
                with self._sessions.begin() as session:
                    release(session, run)
                log.info("judge-assisted attribution paused for project %s: %s", run.project_id, exc.reason)
                return 0
            return self._settle(run, status="error", error=f"{exc.kind}: {exc.reason}"[:500], call=True)
        except VerdictError as exc:
            return self._settle(run, status="error", error=f"garbage: {exc}"[:500], call=True)
        step = messages.steps[verdict.step]
        return self._settle(run, status="verdict", agent=verdict.agent, step_index=verdict.step,
                            span_id=step.span_id, reasoning=verdict.reasoning, model=model, call=True)

    def _settle(self, run: Pending, *, status: str, call: bool = False, **values) -> int:
        with self._sessions.begin() as session:
            call_id = last_call_id(session, run.project_id, run.trace_id, METHOD) if call else None
            settle(session, run, status=status, prompt_version=PROMPT_VERSION if call else None,
                   judge_call_id=call_id, **values)
        return 1
