"""Scores: evaluation results on a trace or a span, whoever produced them.

Three producers, one shape (`ScoreInput`):
- the API (`POST /api/scores`): `parse_score` checks a client's JSON object and says precisely
  what is wrong with it;
- OpenTelemetry GenAI evaluation events (`gen_ai.evaluation.result`, as a span event or as a
  log record): `from_evaluation_event` reads `gen_ai.evaluation.name`, `.score.value`,
  `.score.label` and `.explanation`;
- the built-in evaluators (core/evaluators.py), source = the evaluator's name.

Every score carries a key (16 bytes of a digest) that makes writing it idempotent: a client's
own idempotency `id`, else the score's content; an event's identity; an evaluator's (span, name),
so a re-run replaces rather than adds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

import orjson

DATA_TYPES = ("numeric", "boolean", "categorical")
EVALUATION_EVENT = "gen_ai.evaluation.result"
SOURCE_API = "api"
SOURCE_OTEL = "otel"
MAX_NAME = 200
MAX_LABEL = 200
MAX_SOURCE = 100
MAX_COMMENT = 4000
MAX_ID = 200
MAX_BATCH = 1000
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")
_FIELDS = frozenset({"trace_id", "span_id", "name", "value", "data_type", "source", "comment", "id"})


class ScoreError(ValueError):
    """A score the client sent is invalid; the message says what to fix."""


@dataclass(frozen=True)
class ScoreInput:
    key: bytes
    trace_id: bytes
    span_id: bytes | None
    name: str
    data_type: str
    value: float | None
    label: str | None
    source: str
    comment: str | None

    def row(self, project_id: int) -> dict[str, Any]:
        return {"project_id": project_id, "score_key": self.key, "trace_id": self.trace_id, "span_id": self.span_id,
                "name": self.name, "data_type": self.data_type, "value": self.value, "label": self.label,
                "source": self.source, "comment": self.comment}


def redacted(scores: list[ScoreInput], redact) -> list[ScoreInput]:
    """The scores with their comments passed through `redact` (text -> text): a comment may
    quote captured content, so the project's redaction applies to it as to content."""
    return [dataclasses.replace(s, comment=redact(s.comment)) if s.comment else s for s in scores]


def digest(*parts: Any) -> bytes:
    return hashlib.sha256(orjson.dumps(parts, default=lambda v: v.hex() if isinstance(v, bytes) else str(v))).digest()[:16]


def _text(obj: Mapping, field: str, limit: int, *, required: bool = False) -> str | None:
    value = obj.get(field)
    if value is None:
        if required:
            raise ScoreError(f"{field} is required")
        return None
    if not isinstance(value, str):
        raise ScoreError(f"{field} must be a string, got {_kind(value)}")
    if "\x00" in value:
        raise ScoreError(f"{field} must not contain NUL characters")
    value = value.strip()
    if required and not value:
        raise ScoreError(f"{field} must not be empty")
    if len(value) > limit:
        raise ScoreError(f"{field} is limited to {limit} characters, got {len(value)}")
    return value or None


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def typed_value(value: Any, data_type: str | None) -> tuple[str, float | None, str | None]:
    """(data_type, value, label) from a JSON value: a boolean is stored as 1/0, a number as is,
    a string as a category label. `data_type`, when given, must agree with the value."""
    if data_type is not None and data_type not in DATA_TYPES:
        raise ScoreError(f"data_type must be one of {', '.join(DATA_TYPES)}, got {data_type!r}")
    if isinstance(value, bool):
        found = "boolean"
        number, label = float(value), None
    elif isinstance(value, (int, float)):
        number = float(value) if not isinstance(value, int) or abs(value) < 2**63 else math.inf
        if not math.isfinite(number):
            raise ScoreError("value must be a finite number")
        found, label = "numeric", None
        if data_type == "boolean" and number in (0.0, 1.0):
            found = "boolean"  # 0/1 for a boolean score is accepted
    elif isinstance(value, str):
        label = value.strip()
        if not label or len(label) > MAX_LABEL or "\x00" in label:
            raise ScoreError(f"a categorical value must be 1 to {MAX_LABEL} characters without NUL")
        found, number = "categorical", None
    else:
        raise ScoreError(f"value must be a number, a boolean or a string (a category), got {_kind(value)}")
    if data_type is not None and data_type != found:
        raise ScoreError(f"value {value!r} is {_kind(value)}, which does not fit data_type {data_type!r}")
    return found, number, label


def parse_score(obj: Any) -> ScoreInput:
    """One score as a client sent it (a JSON object) → ScoreInput, or ScoreError saying why not."""
    if not isinstance(obj, dict):
        raise ScoreError(f"a score must be a JSON object, got {_kind(obj)}")
    unknown = sorted(set(obj) - _FIELDS)
    if unknown:
        raise ScoreError(f"unknown field(s): {', '.join(unknown)} (allowed: {', '.join(sorted(_FIELDS))})")
    trace_hex = _text(obj, "trace_id", 32, required=True)
    if not _HEX32.fullmatch(trace_hex or ""):
        raise ScoreError("trace_id must be 32 hexadecimal characters")
    span_hex = _text(obj, "span_id", 16)
    if span_hex is not None and not _HEX16.fullmatch(span_hex):
        raise ScoreError("span_id must be 16 hexadecimal characters")
    name = _text(obj, "name", MAX_NAME, required=True)
    if "value" not in obj or obj["value"] is None:
        raise ScoreError("value is required: a number, a boolean or a string (a category)")
    data_type = obj.get("data_type")
    if data_type is not None and not isinstance(data_type, str):
        raise ScoreError(f"data_type must be a string, got {_kind(data_type)}")
    data_type, value, label = typed_value(obj["value"], data_type)
    source = _text(obj, "source", MAX_SOURCE) or SOURCE_API
    comment = _text(obj, "comment", MAX_COMMENT)
    client_id = _text(obj, "id", MAX_ID)
    trace_id, span_id = bytes.fromhex(trace_hex), bytes.fromhex(span_hex) if span_hex else None
    key = (digest("api-id", client_id) if client_id is not None
           else digest("api", trace_id, span_id, name, source, data_type, value, label, comment))
    return ScoreInput(key, trace_id, span_id, name, data_type, value, label, source, comment)


def parse_scores(body: Any) -> list[ScoreInput]:
    """A request body: one score object or a list of them (at most MAX_BATCH). A bad item
    refuses the whole request, naming its position."""
    items = body if isinstance(body, list) else [body]
    if not items:
        raise ScoreError("no scores: send a score object or a non-empty list of them")
    if len(items) > MAX_BATCH:
        raise ScoreError(f"at most {MAX_BATCH} scores per request, got {len(items)}")
    parsed = []
    for i, item in enumerate(items):
        try:
            parsed.append(parse_score(item))
        except ScoreError as exc:
            raise ScoreError(f"scores[{i}]: {exc}" if isinstance(body, list) else str(exc)) from None
    return parsed


def from_evaluation_event(attributes: Mapping[str, Any], trace_id: bytes, span_id: bytes | None,
                          time_ns: int) -> ScoreInput:
    """A `gen_ai.evaluation.result` event (attributes already flattened) → ScoreInput, or
    ScoreError. The name is required, and a score value or a label (or both)."""
    name = attributes.get("gen_ai.evaluation.name")
    if not isinstance(name, str) or not name.strip():
        raise ScoreError(f"{EVALUATION_EVENT} without gen_ai.evaluation.name")
    name = name.strip()[:MAX_NAME]
    raw_value = attributes.get("gen_ai.evaluation.score.value")
    raw_label = attributes.get("gen_ai.evaluation.score.label")
    value = None
    if isinstance(raw_value, str):  # some SDKs send every attribute as a string
        try:
            raw_value = float(raw_value)
        except ValueError:
            raw_value = None
    if isinstance(raw_value, (int, float)) and not isinstance(raw_value, bool):
        value = float(raw_value)
        if not math.isfinite(value):
            value = None
    elif isinstance(raw_value, bool):
        value = float(raw_value)
    label = raw_label.strip()[:MAX_LABEL] or None if isinstance(raw_label, str) else None
    if value is None and label is None:
        raise ScoreError(f"{EVALUATION_EVENT} {name!r}: neither gen_ai.evaluation.score.value nor .score.label")
    explanation = attributes.get("gen_ai.evaluation.explanation")
    comment = explanation[:MAX_COMMENT] if isinstance(explanation, str) and explanation.strip() else None
    data_type = "numeric" if value is not None else "categorical"
    key = digest("otel", trace_id, span_id, name, time_ns, value, label)
    return ScoreInput(key, trace_id, span_id, name, data_type, value, label, SOURCE_OTEL, comment)


def from_span_events(events: list, trace_id: bytes, span_id: bytes) -> list[ScoreInput]:
    """The evaluation events among a span's events (as stored: dicts with name, time_ns and
    attributes); an event that carries no usable score is skipped."""
    found = []
    for event in events or ():
        if not isinstance(event, dict) or event.get("name") != EVALUATION_EVENT:
            continue
        attributes = event.get("attributes")
        time_ns = event.get("time_ns")
        try:
            found.append(from_evaluation_event(attributes if isinstance(attributes, dict) else {}, trace_id, span_id,
                                               time_ns if isinstance(time_ns, int) else 0))
        except ScoreError:
            continue
    return found


def from_evaluation_span(attributes: Mapping[str, Any], trace_id: bytes, span_id: bytes,
                         parent_span_id: bytes | None) -> ScoreInput | None:
    """A span that is itself an evaluation result (some SDKs send `gen_ai.evaluation.*` as a span
    rather than an event): a score of the span it names (`gen_ai.evaluation.trace_id` /
    `.span_id`, hex), else of its parent span, else of its run. None when it carries no score."""
    target_trace, target_span = trace_id, parent_span_id
    named_trace, named_span = attributes.get("gen_ai.evaluation.trace_id"), attributes.get("gen_ai.evaluation.span_id")
    if isinstance(named_trace, str) and _HEX32.fullmatch(named_trace):
        target_trace, target_span = bytes.fromhex(named_trace), None
    if isinstance(named_span, str) and _HEX16.fullmatch(named_span):
        target_span = bytes.fromhex(named_span)
    try:
        score = from_evaluation_event(attributes, target_trace, target_span, 0)
    except ScoreError:
        return None
    source = attributes.get("gen_ai.evaluation.source")
    if isinstance(source, str) and source.strip():
        score = dataclasses.replace(score, source=source.strip()[:MAX_SOURCE])
    # One score per evaluation span, however often its trace is evaluated.
    return dataclasses.replace(score, key=digest("otel-span", trace_id, span_id))


def from_openinference_evaluator(attributes: Mapping[str, Any], span_name: str, trace_id: bytes, span_id: bytes,
                                 parent_span_id: bytes | None) -> ScoreInput | None:
    """An OpenInference EVALUATOR span → a score of its parent span (the one it evaluated), else of
    its run; None when it is not one or carries no score. The result is read from `metadata`
    (the JSON attribute, or flattened `metadata.*` keys: `score`, `label`, `explanation`,
    `evaluator_name`), else from an `output.value` JSON object with the same keys; the name is
    the evaluator's, else the span's."""
    if attributes.get("openinference.span.kind") != "EVALUATOR":
        return None
    found: dict[str, Any] = {}
    output = attributes.get("output.value")
    for source in (_json_object(output), _json_object(attributes.get("metadata")),
                   {k[len("metadata."):]: v for k, v in attributes.items() if k.startswith("metadata.")}):
        found.update({k: v for k, v in source.items() if v is not None})
    name = found.get("evaluator_name") or found.get("name") or span_name
    explanation = found.get("explanation")
    if explanation is None and isinstance(output, str) and not _json_object(output):
        explanation = output
    converted = {"gen_ai.evaluation.name": name if isinstance(name, str) else str(name),
                 "gen_ai.evaluation.score.value": found.get("score"),
                 "gen_ai.evaluation.score.label": found.get("label"),
                 "gen_ai.evaluation.explanation": explanation}
    try:
        score = from_evaluation_event(converted, trace_id, parent_span_id, 0)
    except ScoreError:
        return None
    return dataclasses.replace(score, source="openinference", key=digest("openinference-span", trace_id, span_id))


def _json_object(value: Any) -> dict:
    if not isinstance(value, str) or not value.lstrip().startswith("{"):
        return {}
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def shown_value(data_type: str, value: float | None, label: str | None) -> str:
    """How a score reads in a table: a label, true/false, or the number (trimmed)."""
    if data_type == "boolean" and value is not None:
        return "true" if value >= 0.5 else "false"
    if value is None:
        return label or ""
    number = f"{value:.4g}"
    return f"{number} ({label})" if label else number
