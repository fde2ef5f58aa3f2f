"""The LLM-as-judge evaluators at work: judge one sampled run's final answer with the enabled
built-in judges and the project's llm_rubric rules (core/judge_evaluators.py).

The run is read in a short session that is closed before the first call; each call goes through
judge/ask.py (budget checked, call recorded in judge_calls, no transaction held meanwhile); each
verdict is written in its own short transaction as a score replacing that judge's earlier verdict
on the span. A reply that is no verdict marks its call `garbage` and writes no score. When the
project's daily budget is reached, its runs are not judged again until the next UTC day (logged
once). Created only when an endpoint is configured: otherwise nothing is ever sent.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone

from sqlalchemy.orm import sessionmaker

from core.judge_evaluators import Prompt, VerdictError, as_score, enabled_judges, parse_verdict, sampled, tasks
from core.settings import Settings
from db.queries.evaluation import project_rules
from db.queries.judging import judged, mark_unusable, run_spans
from db.queries.scores import insert_scores
from judge.ask import ask
from judge.client import JudgeError, ModelEndpoint
from judge.prompts import latest

log = logging.getLogger(__name__)

MAX_VERDICT_TOKENS = 400  # a score and three sentences


class RunJudge:
    def __init__(self, sessions: sessionmaker, endpoint: ModelEndpoint, settings: Settings,
                 prompts: dict[str, Prompt] | None = None) -> None:
        self._sessions = sessions
        self._endpoint = endpoint
        self._settings = settings
        self._prompts = prompts or latest()
        self.judges = enabled_judges(settings.judge_evaluators)
        self.rate = settings.judge_sample_rate
        self._over_budget: dict[int, date] = {}  # project -> the UTC day its budget ran out
        self.scored = 0  # verdicts written since start (for tests)

    @classmethod
    def from_settings(cls, sessions: sessionmaker, settings: Settings) -> "RunJudge | None":
        """None when no endpoint is configured or nothing is sampled: then no call is ever made."""
        endpoint = ModelEndpoint.from_settings(settings)
        if endpoint is None or settings.judge_sample_rate <= 0:
            return None
        return cls(sessions, endpoint, settings)

    def wants(self, trace_id: bytes) -> bool:
        return sampled(trace_id, self.rate)

    def judge_run(self, project_id: int, trace_id: bytes) -> int:
        """Ask every judge not yet asked about this run's final answer; returns the verdicts written."""
        today = datetime.now(timezone.utc).date()
        if self._over_budget.get(project_id) == today:
            return 0
        with self._sessions() as session:
            spans = run_spans(session, project_id, trace_id)
            asked = judged(session, project_id, trace_id)
            rubrics = [r for r in project_rules(session, project_id) if r.kind == "llm_rubric"]
        written = 0
        for task in tasks(spans, self.judges, rubrics, self._prompts):
            if (task.span_id, task.name) in asked:
                continue
            try:
                reply = ask(self._sessions, self._endpoint, self._settings, project_id=project_id,
                            purpose="evaluator", name=task.name, prompt_version=task.prompt.ref,
                            messages=task.messages, trace_id=trace_id, span_id=task.span_id,
                            max_tokens=MAX_VERDICT_TOKENS)
            except JudgeError as exc:
                if exc.kind == "over_budget":
                    self._over_budget[project_id] = today
                    log.warning("LLM-as-judge evaluation stopped for project %s until the next UTC day: %s",
                                project_id, exc.reason)
                    return written
                continue  # recorded in judge_calls by ask(); this judge is not asked again on this span
            try:
                verdict = parse_verdict(reply.text)
            except VerdictError as exc:
                with self._sessions.begin() as session:
                    mark_unusable(session, project_id, trace_id, task.span_id, task.name, str(exc))
                continue
            with self._sessions.begin() as session:
                insert_scores(session, project_id, [as_score(task, verdict, trace_id)], replace=True)
            written += 1
        self.scored += written
        return written
