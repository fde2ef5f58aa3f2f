"""Built-in evaluators that need no model: checks of a model call's output, each a pass/fail score.

Always on (when evaluators run at all, `evaluators_enabled`):
- `non_empty`: the call answered something (content captured and not blank; or, without captured
  content, output tokens reported > 0). Calls that failed are not judged.
- `complete`: the answer was not cut off (finish reason `length` / `max_tokens`).
- `no_refusal`: the model did not refuse (a refusal field in the answer, finish reason
  `content_filter`, or a refusal phrase at the start of the answer).
- `json_valid`: the answer parses as JSON, for calls that asked for JSON output
  (`gen_ai.output.type` = json, or an OpenAI `response_format` of json_object / json_schema).
Configured per project (`evaluator_rules`): `json_schema` (the answer is JSON conforming to a
JSON Schema, via jsonschema), `regex` (an RE2 pattern the answer must, or must not, match) and
`llm_rubric` (a rubric a judge model grades the run's final answer against, core/judge_evaluators.py;
never checked here), each optionally only for calls whose model, agent or span name match
shell-style globs.

A verdict is a score named after the evaluator: value 1 (pass) or 0 (fail), label pass/fail,
and a comment saying why. Pure: no I/O.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from core.coerce import as_lower_tuple
from core.redaction import InvalidPattern, compile_custom
from core.scores import ScoreInput, digest

BUILTINS = ("non_empty", "complete", "no_refusal", "json_valid")
BUILTIN_JUDGES = ("faithfulness", "relevance", "consistency")  # LLM-as-judge (core/judge_evaluators.py)
RULE_KINDS = ("json_schema", "regex", "llm_rubric")
MAX_RUBRIC_CHARS = 4_000
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
MAX_SCHEMA_CHARS = 64 * 1024
TRUNCATED = frozenset({"length", "max_tokens", "max_output_tokens"})
FILTERED = frozenset({"content_filter", "content_filtered", "safety", "refusal"})
_FINISH_KEYS = ("gen_ai.response.finish_reasons", "gen_ai.completion.0.finish_reason", "llm.finish_reason")
_JSON_FORMATS = frozenset({"json", "json_object", "json_schema"})
_FORMAT_KEYS = ("gen_ai.output.type", "gen_ai.openai.request.response_format", "gen_ai.request.response_format")
# Every attribute of a call an evaluator reads: the evaluation pass fetches only these (a call's
# attributes can hold whole prompts; parsing them all cost more than the checks).
ATTRIBUTE_KEYS = _FINISH_KEYS + _FORMAT_KEYS
# Refusals open the answer; only its start is read (bounded work on attacker-sized text).
_REFUSAL_WINDOW = 400
_REFUSAL = re.compile(
    r"^\W*(?:(?:i'?m|i am)\s+(?:so\s+)?sorry,?\s+(?:but\s+)?i\s+(?:can(?:no|')?t|cannot|won'?t|am\s+unable|'m\s+unable)"
    r"|i\s+(?:can(?:no|')?t|cannot|won'?t)\s+(?:help|assist|comply|provide|do\s+that|fulfil)"
    r"|i'?m\s+(?:not\s+able|unable)\s+to\s+(?:help|assist|comply|provide)"
    r"|i\s+must\s+(?:decline|refuse)"
    r"|as\s+an\s+ai(?:\s+language\s+model)?,?\s+i\s+(?:can(?:no|')?t|cannot|don'?t|am\s+not\s+able))",
    re.IGNORECASE)


class RuleError(ValueError):
    """A configured rule is invalid; the message says what to fix."""


@dataclass(frozen=True)
class Call:
    """What an evaluator sees of one model call."""
    output: str | None  # as stored (plain text or JSON messages), content from log events merged
    attributes: Mapping[str, Any] = field(default_factory=dict)
    status: str = "unset"
    output_tokens: int | None = None
    model: str | None = None
    agent: str | None = None
    name: str = ""


@dataclass(frozen=True)
class Verdict:
    name: str
    passed: bool
    comment: str


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    config: Mapping[str, Any]
    check: Any  # a jsonschema validator or a compiled RE2 pattern

    def applies(self, call: Call) -> bool:
        for key, value in (("model", call.model), ("agent", call.agent), ("span_name", call.name)):
            glob = self.config.get(key)
            if glob and not fnmatch.fnmatchcase(value or "", glob):
                return False
        return True


# -- reading an output ------------------------------------------------------------------------------

def _part_text(part: Any) -> str | None:
    if isinstance(part, str):
        return part
    if isinstance(part, dict):
        for key in ("content", "text", "message.content"):
            if isinstance(part.get(key), str):
                return part[key]
        if isinstance(part.get("message"), dict):
            return _message_text(part["message"])
    return None


def _message_text(message: Mapping) -> str | None:
    content = message.get("content", message.get("parts", message.get("message.content")))
    if isinstance(content, list):
        texts = [t for t in (_part_text(p) for p in content) if t is not None]
        return "\n".join(texts) if texts else None
    if content is None and isinstance(message.get("message"), dict):
        return _message_text(message["message"])
    if content is None and isinstance(message.get("refusal"), str):
        return message["refusal"]  # OpenAI's refusal is the answer's text
    return _part_text(content) if content is not None else None


def _parsed(output: str) -> Any:
    stripped = output.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):
        return None


def _messages(value: Any) -> list[dict] | None:
    """The output as chat messages / choices, when it is that shape."""
    if isinstance(value, dict) and isinstance(value.get("choices"), list):
        value = value["choices"]
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value) and any(
            k in m for m in value for k in ("role", "message", "parts", "message.role", "finish_reason")):
        return value
    return None


def output_text(output: str | None) -> str | None:
    """The answer's text: the assistant messages' text when the output is a message list (every
    convention Causeline stores), else the output as is."""
    if output is None:
        return None
    messages = _messages(_parsed(output))
    if messages is None:
        return output
    texts = [t for t in (_message_text(m) for m in messages) if t is not None]
    return "\n".join(texts)


def finish_reasons(call: Call) -> tuple[str, ...]:
    for key in _FINISH_KEYS:
        reasons = as_lower_tuple(call.attributes.get(key))
        if reasons:
            return reasons
    messages = _messages(_parsed(call.output)) if call.output else None
    return tuple(str(m["finish_reason"]).lower() for m in messages or () if isinstance(m.get("finish_reason"), str))


def _refused_field(call: Call) -> str | None:
    for m in (_messages(_parsed(call.output)) if call.output else None) or ():
        inner = m.get("message") if isinstance(m.get("message"), dict) else m
        if isinstance(inner.get("refusal"), str) and inner["refusal"].strip():
            return inner["refusal"]
    return None


def wants_json(attributes: Mapping[str, Any]) -> bool:
    for key in _FORMAT_KEYS:
        value = attributes.get(key)
        if isinstance(value, dict):
            value = value.get("type")
        if isinstance(value, str) and value.strip().lower() in _JSON_FORMATS:
            return True
    return False


# -- the evaluators ---------------------------------------------------------------------------------

def builtin_verdicts(call: Call) -> list[Verdict]:
    if call.status == "error":
        return []  # a failed call is attribution's business, not an output to judge
    verdicts: list[Verdict] = []
    text = output_text(call.output)
    if text is not None:
        verdicts.append(Verdict("non_empty", bool(text.strip()), "the answer is empty" if not text.strip()
                                else f"{len(text)} characters"))
    elif call.output_tokens is not None:
        verdicts.append(Verdict("non_empty", call.output_tokens > 0, f"{call.output_tokens} output tokens (content "
                                                                     "not captured)"))
    reasons = finish_reasons(call)
    if reasons:
        cut = sorted(TRUNCATED.intersection(reasons))
        verdicts.append(Verdict("complete", not cut, f"finish reason {cut[0]}: the answer was cut off" if cut
                                else f"finish reason {', '.join(reasons)}"))
    refusal = _refused_field(call)
    filtered = sorted(FILTERED.intersection(reasons))
    if refusal is not None:
        verdicts.append(Verdict("no_refusal", False, f"refused: {refusal[:200]}"))
    elif filtered:
        verdicts.append(Verdict("no_refusal", False, f"finish reason {filtered[0]}"))
    elif text and text.strip():
        match = _REFUSAL.search(text[:_REFUSAL_WINDOW].replace("\u2019", "'"))
        verdicts.append(Verdict("no_refusal", match is None, f"refusal phrase: {match.group(0)[:120]!r}" if match
                                else "no refusal phrase"))
    if text is not None and wants_json(call.attributes):
        problem = _json_problem(text)
        verdicts.append(Verdict("json_valid", problem is None, problem or "valid JSON"))
    return verdicts


def _json_problem(text: str) -> str | None:
    try:
        json.loads(text)
    except RecursionError:
        return "not JSON: nested too deeply"
    except ValueError as exc:
        return f"not JSON: {str(exc)[:200]}"
    return None


def rule_verdict(rule: Rule, call: Call) -> Verdict | None:
    """The rule's verdict on one call (None: the rule does not apply). A rule that cannot be
    checked is a failed verdict saying why, never an exception: one bad rule must not stall the
    evaluation of every other project's runs."""
    try:
        return _rule_verdict(rule, call)
    except Exception as exc:  # noqa: BLE001 - a verdict, whatever the schema library raised
        return Verdict(rule.name, False, f"the rule could not be checked ({type(exc).__name__}: {str(exc)[:200]})")


def _rule_verdict(rule: Rule, call: Call) -> Verdict | None:
    text = output_text(call.output)
    if rule.kind == "llm_rubric" or text is None or call.status == "error" or not rule.applies(call):
        return None  # a rubric is the judge's (core/judge_evaluators.py), in the background
    if rule.kind == "regex":
        found = rule.check.search(text) is not None
        if rule.config.get("expect", "match") == "match":
            return Verdict(rule.name, found, "pattern found" if found else "pattern not found")
        return Verdict(rule.name, not found, "pattern found" if found else "pattern not found")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return Verdict(rule.name, False, f"not JSON: {str(exc)[:200]}")
    import jsonschema

    error = jsonschema.exceptions.best_match(rule.check.iter_errors(document))
    if error is None:
        return Verdict(rule.name, True, "conforms to the schema")
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return Verdict(rule.name, False, f"at {where}: {error.message[:300]}")


def evaluate(call: Call, rules: Sequence[Rule] = ()) -> list[Verdict]:
    """Every verdict on one call: the built-ins', then each applicable rule's."""
    verdicts = builtin_verdicts(call)
    for rule in rules:
        verdict = rule_verdict(rule, call)
        if verdict is not None:
            verdicts.append(verdict)
    return verdicts


def as_score(verdict: Verdict, trace_id: bytes, span_id: bytes) -> ScoreInput:
    """The verdict as a score: one per (span, evaluator), so a re-run replaces it."""
    return ScoreInput(digest("evaluator", trace_id, span_id, verdict.name), trace_id, span_id, verdict.name,
                      "boolean", 1.0 if verdict.passed else 0.0, "pass" if verdict.passed else "fail",
                      verdict.name, verdict.comment[:4000])


# -- configured rules -------------------------------------------------------------------------------

def parse_rule(name: str, kind: str, config: Any) -> Rule:
    """A project's rule as configured → Rule, or RuleError saying what is wrong."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise RuleError("a rule name is 1-40 characters of a-z, 0-9, '_', '.' and '-', starting with a letter or digit")
    if name in BUILTINS or name in BUILTIN_JUDGES:
        raise RuleError(f"{name!r} is a built-in evaluator's name")
    if kind not in RULE_KINDS:
        raise RuleError(f"kind must be one of {', '.join(RULE_KINDS)}")
    if not isinstance(config, dict):
        raise RuleError("config must be a JSON object")
    allowed = {"json_schema": {"schema"}, "regex": {"pattern", "expect"}, "llm_rubric": {"rubric"}}[kind]
    unknown = sorted(set(config) - allowed - {"model", "agent", "span_name"})
    if unknown:
        raise RuleError(f"unknown config field(s) for {kind}: {', '.join(unknown)}")
    for key in ("model", "agent", "span_name"):
        if config.get(key) is not None and not isinstance(config[key], str):
            raise RuleError(f"{key} must be a string (a shell-style glob such as 'gpt-4o*')")
    if kind == "llm_rubric":
        rubric = config.get("rubric")
        if not isinstance(rubric, str) or not rubric.strip():
            raise RuleError("an llm_rubric rule needs a rubric: the criteria the judge grades the answer against")
        if len(rubric) > MAX_RUBRIC_CHARS:
            raise RuleError(f"the rubric is limited to {MAX_RUBRIC_CHARS} characters")
        return Rule(name, kind, config, None)
    if kind == "regex":
        pattern = config.get("pattern")
        if not isinstance(pattern, str):
            raise RuleError("a regex rule needs a pattern (RE2 syntax)")
        if config.get("expect", "match") not in ("match", "no_match"):
            raise RuleError("expect must be 'match' (the answer must match) or 'no_match'")
        try:
            check = compile_custom(pattern)
        except InvalidPattern as exc:
            raise RuleError(str(exc)) from None
        return Rule(name, kind, config, check)
    schema = config.get("schema")
    if not isinstance(schema, (dict, bool)):
        raise RuleError("a json_schema rule needs a schema (a JSON Schema object)")
    if len(json.dumps(schema)) > MAX_SCHEMA_CHARS:
        raise RuleError(f"the schema is limited to {MAX_SCHEMA_CHARS} characters of JSON")
    import jsonschema

    from referencing import Registry

    _refuse_unsafe_keywords(schema)
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        validator_class.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        raise RuleError(f"not a valid JSON Schema: {exc.message[:300]}") from None
    # An empty registry with no retrieve function: a $ref resolves inside the schema or not at all
    # (jsonschema's default would fetch http(s):// and file:// references).
    return Rule(name, kind, config, validator_class(schema, registry=Registry()))


# Keywords a configured schema may not use. References: only inside the schema ("#..."), never a
# URL or file. Patterns: jsonschema matches them with Python's backtracking `re`, which a crafted
# pattern and a model's output can keep busy for minutes; a regex rule (RE2) checks patterns.
_REFERENCE_KEYS = ("$ref", "$dynamicRef", "$recursiveRef")
_PATTERN_KEYS = ("pattern", "patternProperties")


# Keywords whose value maps names (of properties, definitions) to schemas: those keys are names.
_NAME_MAPS = ("properties", "$defs", "definitions", "dependentSchemas")


def _refuse_unsafe_keywords(schema: Any) -> None:
    stack: list[tuple[Any, bool]] = [(schema, False)]  # (node, its keys are names, not keywords)
    while stack:
        node, names = stack.pop()
        if isinstance(node, list):
            stack.extend((item, False) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if names:
                stack.append((value, False))
                continue
            if key in _REFERENCE_KEYS and not (isinstance(value, str) and value.startswith("#")):
                raise RuleError(f"{key} may only point inside the schema ('#/...'): a rule never fetches anything")
            if key in _PATTERN_KEYS:
                raise RuleError(f"'{key}' is not allowed in a schema rule (it would run a backtracking regular "
                                "expression on model output): use a regex rule, which runs RE2")
            stack.append((value, key in _NAME_MAPS))
