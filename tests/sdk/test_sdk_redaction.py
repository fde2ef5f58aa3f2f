"""Redaction (built-in patterns + user hooks, fail closed) and truncation."""

from __future__ import annotations

import json

import pytest
from opentelemetry.trace import StatusCode

import causeline
from causeline.redaction import ContentPolicy, redact_builtin, to_messages


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+tag@mail.example.co.uk now", "write to [REDACTED_EMAIL] now"),
        ("key sk-proj-Abc123def456ghi789jkl012mno", "key [REDACTED_API_KEY]"),
        ("anthropic sk-ant-api03-abcdefghijklmnopqrstuv", "anthropic [REDACTED_API_KEY]"),
        ("aws AKIAIOSFODNN7EXAMPLE here", "aws [REDACTED_API_KEY] here"),
        ("gh ghp_" + "a" * 36, "gh [REDACTED_API_KEY]"),
        ("google AIza" + "B" * 35, "google [REDACTED_API_KEY]"),
        ("Authorization: Bearer abcdef0123456789abcdef", "Authorization: Bearer [REDACTED_API_KEY]"),
        ("api_key=hunter2hunter2", "api_key=[REDACTED_API_KEY]"),
        ('{"password": "correct-horse"}', '{"password": "[REDACTED_API_KEY]"}'),
        ("card 4111 1111 1111 1111 exp 12/29", "card [REDACTED_CARD] exp 12/29"),
        ("card 5500-0000-0000-0004", "card [REDACTED_CARD]"),
        ("amex 378282246310005", "amex [REDACTED_CARD]"),
        # not cards: Luhn fails, or too short; ordinary numbers and prose stay
        ("order 1234 5678 9012 3456", "order 1234 5678 9012 3456"),
        ("tokens used: 1200, cost 0.0042", "tokens used: 1200, cost 0.0042"),
        ("phone 555-0100", "phone 555-0100"),
        ("an @mention and a sky-blue sk-short", "an @mention and a sky-blue sk-short"),
    ],
)
def test_builtin_patterns(text, expected):
    assert redact_builtin(text) == expected
    assert causeline.redact_builtin(text) == expected


def test_user_redactors_run_after_builtins_in_order():
    calls = []

    def first(s):
        calls.append(("first", s))
        return s.replace("ACME", "[CUSTOMER]")

    def second(s):
        calls.append(("second", s))
        return s.upper()

    policy = ContentPolicy(enabled=True, redactors=[first, second])
    assert policy.text("ACME mail a@b.io") == "[CUSTOMER] MAIL [REDACTED_EMAIL]"
    assert calls[0] == ("first", "ACME mail [REDACTED_EMAIL]")


def test_builtin_patterns_can_be_turned_off():
    assert ContentPolicy(enabled=True, builtin=False).text("a@b.io") == "a@b.io"


def test_failing_redactor_drops_the_value():
    def broken(s):
        raise RuntimeError("oops")

    policy = ContentPolicy(enabled=True, redactors=[broken])
    assert policy.text("secret") is None
    assert policy.json({"a": "secret"}) is None
    assert ContentPolicy(enabled=True, redactors=[lambda s: 42]).text("x") is None  # wrong type


def test_truncation_with_marker():
    policy = ContentPolicy(enabled=True, max_length=20)
    out = policy.text("x" * 50)
    assert out == "x" * 20 + "…[truncated 30 chars]"
    # structured values: each string is truncated and the JSON stays valid
    data = json.loads(policy.json({"a": "y" * 30, "b": [1, 2]}))
    assert data == {"a": "y" * 20 + "…[truncated 10 chars]", "b": [1, 2]}


def test_capture_off_records_nothing():
    policy = ContentPolicy(enabled=False)
    assert policy.text("x") is None
    assert policy.json({"a": 1}) is None
    assert policy.messages("hi") is None
    # error messages are still redacted
    assert policy.redact_text("failed for a@b.io") == "failed for [REDACTED_EMAIL]"


def test_json_handles_odd_values():
    class Thing:
        def __repr__(self):
            return "Thing(mail=x@y.com)"

    policy = ContentPolicy(enabled=True)
    data = json.loads(policy.json({"t": Thing(), "b": b"\x00\x01", "s": {1, 2}, 3: None}))
    assert data["t"] == "Thing(mail=[REDACTED_EMAIL])"
    assert data["b"] == "<2 bytes>"
    assert sorted(data["s"]) == [1, 2]
    assert data["3"] is None


def test_to_messages_shapes():
    assert to_messages("hi") == [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    assert to_messages("ok", role="assistant", finish_reason="stop")[0]["finish_reason"] == "stop"
    genai = [{"role": "user", "parts": [{"type": "text", "content": "x"}]}]
    assert to_messages(genai) == genai
    multi = to_messages([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url"}]}])
    assert multi[0]["parts"] == [{"type": "text", "content": "a"}, {"type": "image_url"}]


def test_redaction_applies_to_recorded_spans(start_causeline):
    rec = start_causeline(
        capture_content=True, redact=[lambda s: s.replace("Project Falcon", "[CODENAME]")], max_content_length=64
    )

    @causeline.tool("notes")
    def notes(text):
        return "ok " + "z" * 100

    notes("Project Falcon, contact ops@corp.example")
    span = rec.one("execute_tool notes")
    assert json.loads(span.attributes["gen_ai.tool.call.arguments"]) == {"text": "[CODENAME], contact [REDACTED_EMAIL]"}
    assert span.attributes["gen_ai.tool.call.result"].endswith("…[truncated 39 chars]")


def test_exception_messages_are_redacted_even_without_capture(rec):
    with causeline.tool_call("login") as t:
        t.record_exception(PermissionError("bad key sk-live-0123456789abcdefghij for bob@corp.io"))
    span = rec.one("execute_tool login")
    assert span.status.status_code == StatusCode.ERROR
    assert "sk-live" not in span.status.description and "bob@corp.io" not in span.status.description
    (event,) = span.events
    assert event.attributes["exception.message"] == "bad key [REDACTED_API_KEY] for [REDACTED_EMAIL]"


def test_failing_user_redactor_in_pipeline_drops_content(start_causeline):
    def broken(s):
        raise RuntimeError("nope")

    rec = start_causeline(capture_content=True, redact=[broken])
    with causeline.model_call("openai", "gpt-4o", input="secret"):
        pass
    assert "gen_ai.input.messages" not in rec.one("chat gpt-4o").attributes


def test_long_exception_messages_are_cut_before_redaction(start_causeline, monkeypatch):
    """A huge message (capture off) is cut to the limit plus a margin before any
    pattern or user redactor sees it, so redaction work in the caller's thread is bounded."""
    from causeline import redaction

    builtin_inputs: list[int] = []
    user_inputs: list[int] = []
    real = redaction.redact_builtin

    def spy(text):
        builtin_inputs.append(len(text))
        return real(text)

    def user_redactor(text):
        user_inputs.append(len(text))
        return text

    monkeypatch.setattr(redaction, "redact_builtin", spy)
    rec = start_causeline(max_content_length=100, redact=[user_redactor])
    message = "upstream said: " + "a." * 100_000 + "@"  # pathological for an unbounded e-mail pattern
    with pytest.raises(ValueError) as info:
        with causeline.tool_call("fetch"):
            raise ValueError(message)
    assert str(info.value) == message  # the user's exception is untouched
    event = rec.one("execute_tool fetch").events[0]
    recorded = event.attributes["exception.message"]
    assert recorded.startswith("upstream said: a.a.") and len(recorded) < 140
    assert recorded.endswith(f"…[truncated {len(message) - 100} chars]")
    # message: limit + margin; stack trace: its own 16 KiB limit + margin; never the whole 200k
    assert builtin_inputs and user_inputs
    assert min(builtin_inputs) <= 100 + redaction._CUT_MARGIN
    assert max(builtin_inputs + user_inputs) <= 16384 + redaction._CUT_MARGIN


def test_secret_split_by_the_cut_is_not_kept():
    from causeline import redaction

    policy = ContentPolicy(enabled=True, max_length=100)
    for head in (100 + redaction._CUT_MARGIN - 10, 90, 100 + redaction._CUT_MARGIN - 700):
        text = "x" * head + " sk-live-" + "A" * 3000 + " tail"
        out = policy.text(text)
        assert "AAAA" not in out, head
        assert len(out) <= 100 + len("…[truncated 9999999 chars]")


@pytest.mark.parametrize(
    "text",
    [
        "a" * 50_000 + "@",
        "a." * 25_000 + "@x",
        "x@" + "a-" * 25_000,
        "eyJ-" * 12_000,
        "1 " * 25_000,
        "password" + " " * 50_000,
    ],
)
def test_builtin_patterns_on_pathological_input_still_work(text):
    # (linear-time patterns; here only correctness: nothing to redact, text unchanged)
    assert redact_builtin(text) == text


def test_structured_content_is_cut_while_walking_and_stays_valid_json():
    policy = ContentPolicy(enabled=True, max_length=100)
    value = [{"role": "user", "content": "x" * 4000} for _ in range(20)]
    text = policy.json(value)
    data = json.loads(text)  # valid JSON, not a string cut in the middle
    assert len(text) <= 100 * 8 + 100
    assert data[-1].startswith("…[truncated ") and data[-1].endswith(" items]")
    assert data[0]["content"].startswith("x" * 100 + "…[truncated")

    class CountingList(list):
        iterated = 0

        def __iter__(self):
            for item in super().__iter__():
                CountingList.iterated += 1
                yield item

    big = CountingList(range(100_000))
    data = json.loads(policy.json({"rows": big, "nan": float("nan")}))
    assert CountingList.iterated < 1_000  # the walk stopped at the budget
    assert data["rows"][-1] == f"…[truncated {100_000 - len(data['rows']) + 1} items]"
