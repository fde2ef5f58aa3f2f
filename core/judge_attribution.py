"""Judge-assisted failure attribution (pure): when to ask the judge, what to ask, how to read
its answer.

The method is "all-at-once" from Who&When (Zhang et al., ICML 2025): the judge reads the whole
failed run, one message per step in order, and names the agent that made the decisive mistake
and the step where it first made it, with its reasoning. It is asked only when structural
attribution (core.attribution) has weak evidence: the run failed but no error span explains it
(`weak_evidence`): a semantic failure, such as a wrong answer, that no exception records.

Everything the judge reads is captured content (attacker-influenced) and everything it answers is
model output: the conversation is fenced as data in the prompt, and an answer that does not name
one of the run's agents and one of its steps is an error, never a verdict. No I/O: the prompt
template is read by judge/prompts.py and passed in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from core.attribution import STRUCTURED_EVIDENCE
from core.attribution_model import Failure, TraceAttribution
from core.judge_evaluators import fill, parse_prompt
from core.span import MODEL_CALL_CATEGORIES

METHOD = "all_at_once"
# Evidence that an error span says what went wrong (an exception, an error type, an HTTP status,
# a guardrail, a blocking finish reason): core.attribution's structured signals plus a message.
ERROR_EVIDENCE = (*STRUCTURED_EVIDENCE, "exception.message=")
STEP_CATEGORIES = ("agent", *MODEL_CALL_CATEGORIES)
MAX_STEP_CHARS = 20_000           # one step's content in the prompt
MAX_CONVERSATION_CHARS = 200_000  # all steps (about 65k tokens); longer steps are cut evenly
MAX_REASONING_CHARS = 4_000       # kept of the judge's reasoning
MAX_ANSWER_CHARS = 64_000         # read of the judge's answer
MAX_JSON_ATTEMPTS = 50            # "{" positions tried as the start of the verdict object


class VerdictError(ValueError):
    """The judge's answer is not a verdict (garbage, an unknown agent, a step out of range)."""


@dataclass(frozen=True, slots=True)
class Step:
    index: int
    agent: str
    content: str
    span_id: bytes | None = None
    label: str | None = None  # the span's name when it says more than the agent (e.g. "Orchestrator (-> WebSurfer)")


@dataclass(frozen=True, slots=True)
class Verdict:
    agent: str
    step: int
    reasoning: str


# -- when ------------------------------------------------------------------------------------

def explains_run(failure: Failure) -> bool:
    """An error span explains the run's failure: it was not recovered, and it says what went
    wrong (an exception, error type, HTTP status, ... or a class named by its message) — except
    the run's top span failing alone with only a message, which is how a run records that its
    answer was wrong (the root marked failed), not an error."""
    if failure.recovered:
        return False
    has_error = any(item.startswith(ERROR_EVIDENCE) for item in failure.evidence)
    if not has_error and failure.error_class == "unknown":
        return False
    top_alone = len(failure.propagation_path) == 1 and failure.reached_top
    return has_error or not top_alone


def weak_evidence(attribution: TraceAttribution) -> bool:
    """The run failed and no failure explains it: structural attribution cannot say who caused
    it, so the judge may be asked."""
    return attribution.failed and not any(explains_run(f) for f in attribution.failures)


# -- what ------------------------------------------------------------------------------------

def steps_of(spans: Iterable[Any]) -> list[Step]:
    """The run's messages in start order, one per step: agent and model-call spans with captured
    content that have no such span below them (an agent run that made model calls is told by
    its calls), the top span excluded unless nothing else qualifies. Each step's agent is its
    own agent name, else its nearest agent ancestor's, else its span name.

    `spans`: objects with span_id, parent_span_id, name, category, agent_name, start_ns, input
    and output (db.models.SpanRow or alike)."""
    spans = list(spans)
    by_id = {s.span_id: s for s in spans}
    candidates = [s for s in spans if s.category in STEP_CATEGORIES and _content(s)]
    ids = {s.span_id for s in candidates}
    has_step_below: set[bytes] = set()
    for s in candidates:
        for ancestor in _ancestors(s, by_id):
            if ancestor.span_id in ids:
                has_step_below.add(ancestor.span_id)
    leaves = [s for s in candidates if s.span_id not in has_step_below]
    inner = [s for s in leaves if s.parent_span_id in by_id]
    chosen = sorted(inner or leaves, key=lambda s: (s.start_ns, s.span_id))
    steps = []
    for index, s in enumerate(chosen):
        agent = s.agent_name or next((a.agent_name for a in _ancestors(s, by_id) if a.agent_name), None) or s.name
        steps.append(Step(index, agent, _content(s), s.span_id, s.name if s.name != agent else None))
    return steps


def _content(span: Any) -> str:
    """What the step said: a model call's output (its input repeats the history), else the
    span's output, else its input."""
    if span.category in MODEL_CALL_CATEGORIES:
        return span.output or ""
    return span.output or span.input or ""


def _ancestors(span: Any, by_id: dict) -> Iterable[Any]:
    seen = {span.span_id}
    current = by_id.get(span.parent_span_id)
    while current is not None and current.span_id not in seen:  # parent cycles in hostile data
        seen.add(current.span_id)
        yield current
        current = by_id.get(current.parent_span_id)


def conversation(steps: Sequence[Step], *, max_chars: int = MAX_CONVERSATION_CHARS,
                 max_step_chars: int = MAX_STEP_CHARS) -> str:
    """The steps as the judge reads them, each fenced and numbered; long steps are cut (and say so)."""
    limit = max_step_chars
    if steps and sum(min(len(s.content), limit) for s in steps) > max_chars:
        limit = max(200, max_chars // len(steps))
    parts = []
    for s in steps:
        text = s.content if len(s.content) <= limit else (
            s.content[:limit] + f"\n[... {len(s.content) - limit} characters cut]")
        label = f" ({s.label})" if s.label else ""
        parts.append(f'<step index="{s.index}" agent="{_attr(s.agent)}">{label}\n{_defang(text)}\n</step>')
    return "\n".join(parts)


def build_messages(template: str, *, steps: Sequence[Step], problem: str | None = None,
                   failure: str | None = None, ground_truth: str | None = None) -> list[dict]:
    """The chat messages of one all-at-once attribution. `template` holds `{{problem}}`,
    `{{failure}}`, `{{ground_truth}}`, `{{agents}}`, `{{last_step}}` and `{{conversation}}`; a
    value is inserted once, never scanned for placeholders again (content may contain them)."""
    agents = sorted({s.agent for s in steps})
    values = {
        "problem": _defang(problem or "(not recorded)"),
        "failure": _defang(failure or "(no error message: the run was marked failed)"),
        "ground_truth": (f"The correct answer to the task is: {_defang(ground_truth)}" if ground_truth
                         else "The correct answer is not known."),
        "agents": ", ".join(json.dumps(a) for a in agents),
        "last_step": str(len(steps) - 1),
        "conversation": conversation(steps),
    }
    prompt = parse_prompt("attribution_all_at_once", 0, template)  # the one prompt-file format (judge/prompts)
    placeholder = re.compile(r"\{\{(" + "|".join(values) + r")\}\}")
    return [{"role": "system", "content": fill(prompt.system, values, placeholder)},
            {"role": "user", "content": fill(prompt.user, values, placeholder)}]


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _defang(text: str) -> str:
    # Captured content cannot close the fence it sits in and pose as instructions.
    return re.sub(r"</?\s*step\b", lambda m: m.group(0).replace("<", "&lt;"), text, flags=re.IGNORECASE)


# -- reading the answer ------------------------------------------------------------------------

_FIELD = {
    "agent": ("agent", "agent_name", "mistake_agent", "agent name"),
    "step": ("step", "step_index", "mistake_step", "step number"),
    "reasoning": ("reasoning", "reason", "mistake_reason", "reason for mistake", "explanation"),
}


def parse_verdict(text: Any, steps: Sequence[Step]) -> Verdict:
    """The judge's verdict from its answer: a JSON object (bare, fenced or inside prose) with
    agent, step and reasoning, else the paper's "Agent Name: / Step Number: / Reason for Mistake:"
    lines. Raises VerdictError unless the agent is one of the run's agents and the step one of its
    steps."""
    if not isinstance(text, str) or not text.strip():
        raise VerdictError("empty answer")
    text = text[:MAX_ANSWER_CHARS]  # a verdict is short; the scan below stays bounded
    fields = _json_fields(text) or _line_fields(text)
    if not fields:
        raise VerdictError(f"no verdict in the answer: {text[:80]!r}")
    agent = _known_agent(fields.get("agent"), steps)
    step = _step(fields.get("step"), len(steps))
    reasoning = fields.get("reasoning")
    reasoning = reasoning.strip()[:MAX_REASONING_CHARS] if isinstance(reasoning, str) else ""
    return Verdict(agent, step, reasoning)


def _json_fields(text: str) -> dict | None:
    decoder = json.JSONDecoder()
    for attempt, match in enumerate(re.finditer(r"\{", text)):
        if attempt >= MAX_JSON_ATTEMPTS:
            break
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            lowered = {str(k).strip().lower(): v for k, v in value.items()}
            fields = {name: next((lowered[k] for k in keys if k in lowered), None) for name, keys in _FIELD.items()}
            if fields["agent"] is not None or fields["step"] is not None:
                return fields
    return None


def _line_fields(text: str) -> dict | None:
    fields: dict[str, Any] = {}
    for name, keys in _FIELD.items():
        pattern = r"(?im)^[\s*#>-]*(?:%s)\s*\**\s*[:=]\s*\**\s*(.+)$" % "|".join(re.escape(k) for k in keys)
        match = re.search(pattern, text)
        if match:
            fields[name] = match.group(1).strip().strip("*`\"' ")
    if "reasoning" in fields:  # the reason may run over several lines
        match = re.search(r"(?is)(?:reason for mistake|reasoning|reason)\s*\**\s*[:=]\s*\**\s*(.+)$", text)
        fields["reasoning"] = match.group(1).strip() if match else fields["reasoning"]
    return fields if "agent" in fields or "step" in fields else None


def agent_key(name: str) -> str:
    """How agent names are compared: case and spacing ignored, a parenthesised note dropped
    (Magentic-One's "Orchestrator (thought)" is the Orchestrator)."""
    return re.sub(r"\s+", " ", re.sub(r"\s*\(.*\)\s*$", "", name)).strip().lower()


def _known_agent(value: Any, steps: Sequence[Step]) -> str:
    if not isinstance(value, str) or not value.strip():
        raise VerdictError("the answer names no agent")
    wanted = value.strip().strip("*`\"' ")
    for s in steps:
        if s.agent == wanted:
            return s.agent
    by_key = {agent_key(s.agent): s.agent for s in steps}
    if agent_key(wanted) in by_key:
        return by_key[agent_key(wanted)]
    raise VerdictError(f"the answer names an agent that is not in the run: {wanted[:80]!r}")


def _step(value: Any, count: int) -> int:
    if isinstance(value, bool):
        raise VerdictError("the step is not a number")
    if isinstance(value, int):
        step = value
    elif isinstance(value, float) and value.is_integer():
        step = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*(?:step\s*)?#?\s*(\d{1,9})\s*\.?\s*", value, re.IGNORECASE):
        step = int(re.search(r"\d+", value).group(0))
    else:
        raise VerdictError(f"the step is not a number: {str(value)[:40]!r}")
    if not 0 <= step < count:
        raise VerdictError(f"step {step} is not one of the run's steps (0-{count - 1})")
    return step
