"""Built-in evaluators and configured rules (core/evaluators.py), as tables of cases."""

from __future__ import annotations

import json

import pytest

from core.evaluators import Call, RuleError, as_score, evaluate, output_text, parse_rule, wants_json
from core.scores import ScoreError, from_evaluation_event, from_span_events, parse_score, shown_value

GENAI_OUT = json.dumps([{"role": "assistant", "finish_reason": "length",
                         "parts": [{"type": "text", "content": "The answer is"}]}])
CHOICE_OUT = json.dumps([{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "4"}}])
REFUSAL_FIELD = json.dumps([{"role": "assistant", "content": None, "refusal": "I can't help with that."}])


@pytest.mark.parametrize("output, expected", [
    (None, None),
    ("plain answer", "plain answer"),
    (GENAI_OUT, "The answer is"),
    (CHOICE_OUT, "4"),
    ('[{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]', "a\nb"),
    ('{"name": "Ada", "age": 36}', '{"name": "Ada", "age": 36}'),  # JSON that is no message list: the answer
    ('[1, 2]', '[1, 2]'),
    ('[{"message.role": "assistant", "message.content": "flat"}]', "flat"),
])
def test_output_text(output, expected):
    assert output_text(output) == expected


def verdicts(call: Call, rules=()) -> dict[str, tuple[bool, str]]:
    return {v.name: (v.passed, v.comment) for v in evaluate(call, rules)}


@pytest.mark.parametrize("call, expected", [
    (Call("Paris."), {"non_empty": True, "no_refusal": True}),
    (Call("   "), {"non_empty": False}),
    (Call(None, output_tokens=0), {"non_empty": False}),
    (Call(None, output_tokens=12), {"non_empty": True}),
    (Call(None), {}),  # nothing captured, nothing reported: nothing to judge
    (Call("boom", status="error"), {}),  # failed calls are not judged
    (Call(GENAI_OUT), {"non_empty": True, "complete": False, "no_refusal": True}),
    (Call(CHOICE_OUT), {"non_empty": True, "complete": True, "no_refusal": True}),
    (Call("text", attributes={"gen_ai.response.finish_reasons": ["max_tokens"]}),
     {"non_empty": True, "complete": False, "no_refusal": True}),
    (Call("I'm sorry, but I can't help with that request."), {"non_empty": True, "no_refusal": False}),
    (Call("I\u2019m unable to assist with this."), {"non_empty": True, "no_refusal": False}),
    (Call("As an AI language model, I cannot browse."), {"non_empty": True, "no_refusal": False}),
    (Call("Here is why I can't stop smiling: ..."), {"non_empty": True, "no_refusal": True}),  # not at the start
    (Call(REFUSAL_FIELD), {"non_empty": True, "no_refusal": False}),
    (Call("", attributes={"gen_ai.response.finish_reasons": "content_filter"}),
     {"non_empty": False, "complete": True, "no_refusal": False}),
    (Call('{"a": 1}', attributes={"gen_ai.output.type": "json"}),
     {"non_empty": True, "no_refusal": True, "json_valid": True}),
    (Call('{"a": 1', attributes={"gen_ai.openai.request.response_format": "json_object"}),
     {"non_empty": True, "no_refusal": True, "json_valid": False}),
    (Call("not json", attributes={"gen_ai.request.response_format": {"type": "json_schema"}}),
     {"non_empty": True, "no_refusal": True, "json_valid": False}),
    (Call("not json", attributes={"gen_ai.output.type": "text"}), {"non_empty": True, "no_refusal": True}),
])
def test_builtin_evaluators(call, expected):
    assert {name: passed for name, (passed, _) in verdicts(call).items()} == expected


SCHEMA = {"type": "object", "required": ["intent"], "properties": {"intent": {"enum": ["refund", "track"]}}}


@pytest.mark.parametrize("output, passed, comment", [
    ('{"intent": "refund"}', True, "conforms"),
    ('{"intent": "cancel"}', False, "at intent: 'cancel' is not one of"),
    ('{"other": 1}', False, "'intent' is a required property"),
    ("refund please", False, "not JSON"),
])
def test_json_schema_rule(output, passed, comment):
    rule = parse_rule("intent-schema", "json_schema", {"schema": SCHEMA, "model": "gpt-4o*"})
    got = verdicts(Call(output, model="gpt-4o-mini"), [rule])["intent-schema"]
    assert got[0] is passed and comment in got[1]
    assert "intent-schema" not in verdicts(Call(output, model="claude-3"), [rule])  # the glob selects calls


@pytest.mark.parametrize("config, output, passed", [
    ({"pattern": r"ORDER-\d{4}"}, "your ORDER-1234 ships", True),
    ({"pattern": r"ORDER-\d{4}"}, "no order here", False),
    ({"pattern": r"(?i)password", "expect": "no_match"}, "the Password is hunter2", False),
    ({"pattern": r"(?i)password", "expect": "no_match"}, "all good", True),
    ({"pattern": r"\d+", "agent": "billing"}, "12", None),  # another agent: not applied
])
def test_regex_rule(config, output, passed):
    rule = parse_rule("check", "regex", config)
    got = verdicts(Call(output, agent="triage"), [rule]).get("check")
    assert (got[0] if got else None) is passed


@pytest.mark.parametrize("name, kind, config, message", [
    ("Bad Name", "regex", {"pattern": "x"}, "a rule name is"),
    ("json_valid", "regex", {"pattern": "x"}, "built-in"),
    ("r", "sql", {}, "kind must be one of"),
    ("r", "regex", {}, "needs a pattern"),
    ("r", "regex", {"pattern": "(a"}, "not an RE2 pattern"),
    ("r", "regex", {"pattern": "a*"}, "matches the empty string"),
    ("r", "regex", {"pattern": "a", "expect": "maybe"}, "expect must be"),
    ("r", "regex", {"pattern": "a", "colour": 1}, "unknown config field(s) for regex: colour"),
    ("r", "json_schema", {"schema": {"type": "nonsense"}}, "not a valid JSON Schema"),
    ("r", "json_schema", {"schema": "x"}, "needs a schema"),
    ("r", "json_schema", {"schema": {}, "model": 5}, "model must be a string"),
    ("r", "regex", [], "config must be a JSON object"),
    # Never fetched: URLs and files are refused, not resolved by jsonschema's default registry.
    ("r", "json_schema", {"schema": {"$ref": "http://169.254.169.254/latest/meta-data"}}, "may only point inside"),
    ("r", "json_schema", {"schema": {"properties": {"a": {"$ref": "file:///etc/passwd"}}}}, "may only point inside"),
    # Python's backtracking re would run these on model output.
    ("r", "json_schema", {"schema": {"type": "string", "pattern": "(a+)+$"}}, "'pattern' is not allowed"),
    ("r", "json_schema", {"schema": {"items": [{"patternProperties": {"^x": {}}}]}}, "'patternProperties' is not"),
])
def test_invalid_rules_say_why(name, kind, config, message):
    with pytest.raises(RuleError, match=None) as refused:
        parse_rule(name, kind, config)
    assert message in str(refused.value)


def test_verdicts_become_replaceable_boolean_scores():
    [first] = [as_score(v, b"t" * 16, b"s" * 8) for v in evaluate(Call("", output_tokens=None))]
    [again] = [as_score(v, b"t" * 16, b"s" * 8) for v in evaluate(Call("now an answer"))
               if v.name == "non_empty"]
    assert first.key == again.key  # one score per (span, evaluator): a re-run replaces it
    assert (first.data_type, first.value, first.label, first.source) == ("boolean", 0.0, "fail", "non_empty")
    assert (again.value, again.label) == (1.0, "pass")


@pytest.mark.parametrize("attributes, expected", [
    ({"gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": 0.5}, ("numeric", 0.5, None)),
    ({"gen_ai.evaluation.name": "r", "gen_ai.evaluation.score.value": "0.25"}, ("numeric", 0.25, None)),
    ({"gen_ai.evaluation.name": "r", "gen_ai.evaluation.score.label": "pass"}, ("categorical", None, "pass")),
    ({"gen_ai.evaluation.name": "r", "gen_ai.evaluation.score.value": 1, "gen_ai.evaluation.score.label": "ok"},
     ("numeric", 1.0, "ok")),
    ({"gen_ai.evaluation.name": "r", "gen_ai.evaluation.score.value": float("nan")}, "neither"),
    ({"gen_ai.evaluation.score.value": 1}, "without gen_ai.evaluation.name"),
])
def test_evaluation_events(attributes, expected):
    if isinstance(expected, str):
        with pytest.raises(ScoreError, match=expected):
            from_evaluation_event(attributes, b"t" * 16, None, 1)
        return
    score = from_evaluation_event(attributes, b"t" * 16, None, 1)
    assert (score.data_type, score.value, score.label) == expected and score.source == "otel"


def test_span_events_skip_what_is_not_a_score():
    events = [{"name": "exception", "time_ns": 1, "attributes": {}},
              {"name": "gen_ai.evaluation.result", "time_ns": 2, "attributes": {"gen_ai.evaluation.name": "x"}},
              {"name": "gen_ai.evaluation.result", "time_ns": 3,
               "attributes": {"gen_ai.evaluation.name": "x", "gen_ai.evaluation.score.value": 2}},
              "garbage"]
    [score] = from_span_events(events, b"t" * 16, b"s" * 8)
    assert (score.name, score.value, score.span_id) == ("x", 2.0, b"s" * 8)


@pytest.mark.parametrize("data_type, value, label, shown", [
    ("boolean", 1.0, None, "true"), ("boolean", 0.0, "fail", "false"), ("numeric", 0.123456, None, "0.1235"),
    ("numeric", 4.0, "good", "4 (good)"), ("categorical", None, "polite", "polite"),
])
def test_shown_value(data_type, value, label, shown):
    assert shown_value(data_type, value, label) == shown


def test_api_score_keys_are_idempotent_per_id_or_content():
    base = {"trace_id": "a" * 32, "name": "n", "value": 1}
    assert parse_score(base).key == parse_score(dict(base)).key
    assert parse_score(base).key != parse_score({**base, "value": 2}).key
    assert parse_score({**base, "id": "k"}).key == parse_score({**base, "value": 2, "id": "k"}).key


def test_wants_json():
    assert wants_json({"gen_ai.output.type": "JSON"}) and not wants_json({})


@pytest.mark.parametrize("extra, expected_trace, expected_span", [
    ({}, b"t" * 16, b"p" * 8),  # the parent: the span evaluated
    ({"gen_ai.evaluation.span_id": "ab" * 8}, b"t" * 16, bytes.fromhex("ab" * 8)),
    ({"gen_ai.evaluation.trace_id": "cd" * 16}, bytes.fromhex("cd" * 16), None),
    ({"gen_ai.evaluation.trace_id": "not hex"}, b"t" * 16, b"p" * 8),
])
def test_evaluation_spans_name_their_target(extra, expected_trace, expected_span):
    from core.scores import from_evaluation_span

    attributes = {"gen_ai.evaluation.name": "q", "gen_ai.evaluation.score.value": 1, **extra}
    score = from_evaluation_span(attributes, b"t" * 16, b"s" * 8, b"p" * 8)
    assert (score.trace_id, score.span_id) == (expected_trace, expected_span)
    assert from_evaluation_span({"gen_ai.evaluation.name": "q"}, b"t" * 16, b"s" * 8, None) is None


def test_a_property_named_pattern_is_fine_and_local_references_resolve():
    schema = {"$defs": {"word": {"type": "string"}},
              "properties": {"pattern": {"$ref": "#/$defs/word"}, "$ref": {"type": "integer"}}}
    rule = parse_rule("named", "json_schema", {"schema": schema})
    call = Call(output='{"pattern": 5, "$ref": 1}')
    (verdict,) = [v for v in evaluate(call, [rule]) if v.name == "named"]
    assert not verdict.passed and "pattern" in verdict.comment


def test_a_rule_that_cannot_be_checked_is_a_failed_verdict_not_an_exception():
    rule = parse_rule("dangling", "json_schema", {"schema": {"$ref": "#/$defs/missing"}})
    (verdict,) = [v for v in evaluate(Call(output='{"a": 1}'), [rule]) if v.name == "dangling"]
    assert not verdict.passed and "could not be checked" in verdict.comment
