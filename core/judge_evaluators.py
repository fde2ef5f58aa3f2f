"""LLM-as-judge evaluators (pure): which runs and which model call to judge, the judge's messages
built from the run, and the verdict read back from its reply.

- Sampling: a run is judged when a hash of its trace id falls under the sample rate, so every
  process (and every re-evaluation) makes the same choice without coordinating.
- What is judged: the run's final answer, the last model call that answered something.
- What the judge sees: the user's question (the first user message of the run's first model call
  that has one, else of the judged call), the answer (the call's output text) and the retrieved
  context (outputs of retrieval spans, OpenInference RETRIEVER documents, and tool outputs that
  started before the call in the same run). Each part is cut to a bound, so a judge call has a
  bounded size whatever the run holds.
- Judges: `faithfulness` (needs context; skipped without), `relevance` (needs a question),
  `consistency`, and each project's `llm_rubric` rules (core/evaluators.py).
- Verdicts: the reply must hold a JSON object {"score": 1-5, "reasoning": "..."}; anything else is
  a VerdictError (recorded as a failed call), never a score. The score is stored as a number in
  0..1 ((score - 1) / 4), labelled "4/5".
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from core.evaluators import BUILTIN_JUDGES, Call, Rule, output_text
from core.finetune import input_messages
from core.scores import ScoreInput, digest

RUBRIC = "rubric"  # the prompt every llm_rubric rule uses
SOURCE_PREFIX = "judge:"
SCALE = (1, 5)
MAX_QUESTION = 4_000  # characters of each part sent to the judge
MAX_ANSWER = 8_000
MAX_CONTEXT = 16_000
MAX_REASONING = 2_000
_PLACEHOLDER = re.compile(r"\{\{(question|answer|context|rubric)\}\}")
_DOCUMENT_KEY = re.compile(r"retrieval\.documents\.(\d+)\.document\.content")


class VerdictError(ValueError):
    """The judge's reply is not a usable verdict."""


@dataclass(frozen=True)
class Prompt:
    name: str
    version: int
    system: str
    user: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class RunSpan:
    """What the judges read of one span of a run."""
    span_id: bytes
    category: str
    start_ns: int
    status: str = "unset"
    input: str | None = None
    output: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    model: str | None = None
    agent: str | None = None


@dataclass(frozen=True)
class Task:
    """One judge call to make: `name` is the score's name (a built-in judge or a rubric rule)."""
    name: str
    prompt: Prompt
    span_id: bytes
    messages: list[dict]

    @property
    def source(self) -> str:
        return f"{SOURCE_PREFIX}{self.prompt.ref}"


@dataclass(frozen=True)
class Verdict:
    score: float  # on the prompt's 1-5 scale
    reasoning: str

    @property
    def value(self) -> float:
        return (self.score - SCALE[0]) / (SCALE[1] - SCALE[0])


# -- configuration ----------------------------------------------------------------------------------

def enabled_judges(text: str) -> tuple[str, ...]:
    """CAUSELINE_JUDGE_EVALUATORS → the built-in judges to run; ValueError names an unknown one."""
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in BUILTIN_JUDGES]
    if unknown:
        raise ValueError(f"unknown judge(s) {', '.join(unknown)}: choose from {', '.join(BUILTIN_JUDGES)}")
    return names


def sampled(trace_id: bytes, rate: float) -> bool:
    """Whether the run is in the judged share: the same answer in every process, every time."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    position = int.from_bytes(hashlib.sha256(b"judge-sample:" + trace_id).digest()[:8], "big") / 2**64
    return position < rate


# -- prompts ----------------------------------------------------------------------------------------

def parse_prompt(name: str, version: int, text: str) -> Prompt:
    """A prompt file: a `# system` section, then a `# user` section."""
    match = re.fullmatch(r"\s*# system\n(.*?)\n# user\n(.*)", text, re.DOTALL)
    if match is None:
        raise ValueError(f"prompt {name}.v{version}: needs a '# system' then a '# user' section")
    return Prompt(name, version, match.group(1).strip(), match.group(2).strip())


def fill(template: str, values: Mapping[str, str], placeholder: re.Pattern = _PLACEHOLDER) -> str:
    """Placeholders replaced in one pass: a value that itself contains "{{answer}}" stays as is."""
    return placeholder.sub(lambda m: values.get(m.group(1), ""), template)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} characters cut]"


def judge_messages(prompt: Prompt, *, question: str | None, answer: str, context: Sequence[str] = (),
                   rubric: str | None = None) -> list[dict]:
    joined = "\n\n".join(f"[{n}] {c}" for n, c in enumerate(context, 1))
    values = {"question": _cut(question or "(no question captured)", MAX_QUESTION),
              "answer": _cut(answer, MAX_ANSWER),
              "context": _cut(joined, MAX_CONTEXT) if joined else "(no retrieved context)",
              "rubric": rubric or ""}
    return [{"role": "system", "content": fill(prompt.system, values)},
            {"role": "user", "content": fill(prompt.user, values)}]


# -- reading the run --------------------------------------------------------------------------------

def _answer(span: RunSpan) -> str | None:
    text = output_text(span.output)
    return text if text and text.strip() else None


def final_call(spans: Sequence[RunSpan]) -> RunSpan | None:
    """The run's final answer: the last model call (by start) that did not fail and answered."""
    calls = [s for s in spans if s.category == "llm" and s.status != "error" and _answer(s) is not None]
    return max(calls, key=lambda s: (s.start_ns, s.span_id), default=None)


def _first_user(text: str | None) -> str | None:
    for message in input_messages(text) or ():
        if message["role"] == "user" and message["content"].strip():
            return message["content"]
    return None


def question(spans: Sequence[RunSpan], call: RunSpan) -> str | None:
    for span in sorted((s for s in spans if s.category == "llm"), key=lambda s: (s.start_ns, s.span_id)):
        found = _first_user(span.input)
        if found:
            return found
    return _first_user(call.input)


def _documents(attributes: Mapping[str, Any]) -> list[str]:
    found = []
    for key, value in attributes.items():
        match = _DOCUMENT_KEY.fullmatch(key)
        if match and isinstance(value, str) and value.strip():
            found.append((int(match.group(1)), value))
    return [text for _, text in sorted(found)]


def context(spans: Sequence[RunSpan], call: RunSpan) -> list[str]:
    """Retrieved documents and tool outputs that started before the call, in run order."""
    found: list[str] = []
    for span in sorted(spans, key=lambda s: (s.start_ns, s.span_id)):
        if span.start_ns >= call.start_ns or span.category not in ("retrieval", "tool"):
            continue
        documents = _documents(span.attributes) if span.category == "retrieval" else []
        if documents:
            found.extend(documents)
        elif span.output and span.output.strip():
            found.append(span.output)
    return found


def tasks(spans: Sequence[RunSpan], judges: Sequence[str], rubrics: Sequence[Rule],
          prompts: Mapping[str, Prompt]) -> list[Task]:
    """The judge calls to make for one run (none when it has no answer to judge)."""
    call = final_call(spans)
    if call is None:
        return []
    answer = _answer(call) or ""
    asked = question(spans, call)
    retrieved = context(spans, call)
    made = []
    for name in judges:
        if name == "faithfulness" and not retrieved:
            continue  # nothing to be faithful to
        if name == "relevance" and asked is None:
            continue
        made.append(Task(name, prompts[name], call.span_id, judge_messages(
            prompts[name], question=asked, answer=answer, context=retrieved if name == "faithfulness" else ())))
    as_call = Call(call.output, call.attributes, call.status, None, call.model, call.agent, call.name)
    for rule in rubrics:
        if rule.kind == "llm_rubric" and rule.applies(as_call):
            made.append(Task(rule.name, prompts[RUBRIC], call.span_id, judge_messages(
                prompts[RUBRIC], question=asked, answer=answer, context=retrieved, rubric=rule.config["rubric"])))
    return made


# -- the verdict ------------------------------------------------------------------------------------

def _json_object(text: str) -> dict:
    stripped = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", stripped, re.DOTALL)
    if fenced:
        stripped = fenced.group(1)
    try:
        value = json.loads(stripped)
    except (ValueError, RecursionError):
        # Prose around one object: the span from the first "{" to the last "}".
        start, end = stripped.find("{"), stripped.rfind("}")
        if start < 0 or end <= start:
            raise VerdictError(f"no JSON object in the reply: {text[:120]!r}") from None
        try:
            value = json.loads(stripped[start:end + 1])
        except (ValueError, RecursionError):
            raise VerdictError(f"no JSON object in the reply: {text[:120]!r}") from None
    if not isinstance(value, dict):
        raise VerdictError(f"the reply is JSON but not an object: {text[:120]!r}")
    return value


def parse_verdict(text: str) -> Verdict:
    """The judge's reply → Verdict, or VerdictError: a missing, non-numeric or out-of-scale score
    is never guessed at."""
    value = _json_object(text)
    score = value.get("score")
    if isinstance(score, str):
        try:
            score = float(score.strip())
        except ValueError:
            raise VerdictError(f"score is not a number: {score[:40]!r}") from None
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise VerdictError(f"score is missing or not a number: {str(score)[:40]!r}")
    if not SCALE[0] <= score <= SCALE[1]:
        raise VerdictError(f"score {score:g} is outside {SCALE[0]}-{SCALE[1]}")
    reasoning = value.get("reasoning", value.get("explanation", ""))
    if not isinstance(reasoning, str):
        reasoning = json.dumps(reasoning)[:MAX_REASONING]
    return Verdict(float(score), reasoning.strip()[:MAX_REASONING])


def as_score(task: Task, verdict: Verdict, trace_id: bytes) -> ScoreInput:
    """One per (span, judge): judging again replaces the earlier verdict."""
    return ScoreInput(digest("judge", trace_id, task.span_id, task.name), trace_id, task.span_id, task.name,
                      "numeric", verdict.value, f"{verdict.score:g}/{SCALE[1]}", task.source,
                      verdict.reasoning or None)
