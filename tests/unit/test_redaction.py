"""core/redaction.py: built-in detectors, custom RE2 patterns, spans, and linear time on hostile input."""

from __future__ import annotations

import time

import pytest

from core.redaction import (
    API_KEY, CARD, EMAIL, IBAN, JWT, PHONE, REDACTIONS_ATTR, TOO_DEEP, CustomPattern, InvalidPattern,
    RedactionPolicy, check_name, compile_custom, iban_ok, luhn_ok, redact_span, redact_text, redact_value,
)
from core.span import Event, Span, Tokens

JWT_TEXT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"

CASES = [
    # (text, expected, count)
    ("write to bob.smith@example.co.uk today", f"write to {EMAIL} today", 1),
    ("a@b.c is too short a domain", "a@b.c is too short a domain", 0),
    ("card 4111 1111 1111 1111 ok", f"card {CARD} ok", 1),
    ("card 4111-1111-1111-1111", f"card {CARD}", 1),
    ("not a card 4111 1111 1111 1112", "not a card 4111 1111 1111 1112", 0),  # Luhn fails
    ("amex 378282246310005.", f"amex {CARD}.", 1),
    ("iban DE89 3704 0044 0532 0130 00 paid", f"iban {IBAN} paid", 1),
    ("GB82WEST12345698765432", IBAN, 1),
    ("GB83WEST12345698765432", "GB83WEST12345698765432", 0),  # mod 97 fails
    ("call +44 20 7946 0958 now", f"call {PHONE} now", 1),
    ("or (555) 123-4567", f"or {PHONE}", 1),
    ("or 555.123.4567", f"or {PHONE}", 1),
    ("order 1234567890123 on 2026-12-01 at 12:30", "order 1234567890123 on 2026-12-01 at 12:30", 0),
    ("trace 4bf92f3577b34da6a3ce929d0e0e4736", "trace 4bf92f3577b34da6a3ce929d0e0e4736", 0),
    ("key sk-proj-abcdefghijklmnop1234!", f"key {API_KEY}!", 1),
    ("sk-ant-api03-abcdefghijklmnopqrst", API_KEY, 1),
    ("ghp_" + "a1" * 18, API_KEY, 1),
    ("AKIAIOSFODNN7EXAMPLE", API_KEY, 1),
    ("AKIAIOSFODNN7EXAMPLEX", "AKIAIOSFODNN7EXAMPLEX", 0),  # too long for an AWS key id
    ("Authorization: Bearer abc.def-ghi_123", f"Authorization: Bearer {API_KEY}", 1),
    ('{"api_key": "hunter2hunter"}', f'{{"api_key": "{API_KEY}"}}', 1),
    (f"token {JWT_TEXT} end", f"token {JWT} end", 1),
    ("task-sk-abc is a word", "task-sk-abc is a word", 0),
    ("", "", 0),
    ("plain text without anything personal", "plain text without anything personal", 0),
    ("two: a@example.com, b@example.org", f"two: {EMAIL}, {EMAIL}", 2),
]


@pytest.mark.parametrize("text,expected,count", CASES)
def test_builtins(text, expected, count):
    assert redact_text(text) == (expected, count)


@pytest.mark.parametrize("builtin,text", [
    ("email", "bob@example.com"), ("card", "4111111111111111"), ("iban", "GB82WEST12345698765432"),
    ("phone", "+1 415 555 2671"), ("api_key", "AKIAIOSFODNN7EXAMPLE"), ("jwt", JWT_TEXT),
])
def test_each_builtin_can_be_disabled(builtin, text):
    on = RedactionPolicy()
    off = RedactionPolicy(builtins=on.builtins - {builtin})
    assert redact_text(text, on)[1] == 1
    assert redact_text(text, off) == (text, 0)


def test_checksums():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("DE89 3704 0044 0532 0130 00") and not iban_ok("DE88 3704 0044 0532 0130 00")
    assert not iban_ok("DE89")


@pytest.mark.parametrize("pattern,text,expected", [
    (r"EMP-\d{6}", "badge EMP-123456 here", "badge [REDACTED:emp] here"),
    (r"(?i)project\s+falcon", "about Project  Falcon.", "about [REDACTED:emp]."),
    (r"(a+)+$", "aaaa!", "aaaa!"),  # catastrophic in backtracking engines, linear in RE2
])
def test_custom_patterns(pattern, text, expected):
    policy = RedactionPolicy(builtins=frozenset(), custom=(CustomPattern("emp", pattern),))
    assert redact_text(text, policy)[0] == expected


@pytest.mark.parametrize("pattern", ["(a", r"(?<=a)b", r"(\w)\1", "", "a*", "x" * 1001])
def test_custom_patterns_refused(pattern):
    with pytest.raises(InvalidPattern):
        compile_custom(pattern)


@pytest.mark.parametrize("name,ok", [("emp", True), ("a-b_1", True), ("", False), ("Emp", False),
                                      ("x" * 41, False), ("a]b", False), ("a\\1", False)])
def test_names(name, ok):
    if ok:
        assert check_name(name) == name
    else:
        with pytest.raises(InvalidPattern):
            check_name(name)


def test_nested_values():
    sub = lambda text: redact_text(text)  # noqa: E731
    value = {"to": ["a@example.com", {"cc": "b@example.com", "n": 3}], "ok": True, "t": ("c@example.com",)}
    redacted, count = redact_value(value, sub)
    assert count == 3
    assert redacted == {"to": [EMAIL, {"cc": EMAIL, "n": 3}], "ok": True, "t": (EMAIL,)}
    deep: object = "a@example.com"
    for _ in range(100):
        deep = [deep]
    out, _ = redact_value(deep, sub)
    assert "a@example.com" not in repr(out) and TOO_DEEP in repr(out)


def _span(**changes) -> Span:
    base = dict(
        trace_id=b"\x01" * 16, span_id=b"\x02" * 8, parent_span_id=None, name="chat", otel_kind=1, category="llm",
        operation="chat", start_ns=1, end_ns=2, status="error", status_message="denied for bob@example.com",
        error_type=None, error_class=None, service_name="svc", agent_name=None, tool_name=None, provider=None,
        request_model=None, response_model=None, tokens=Tokens(), session_id="s1", user_id="bob@example.com",
        input="my card is 4111 1111 1111 1111", output="ok", resource={"host": "a@example.com"},
        attributes={"gen_ai.prompt": "mail bob@example.com", "tags": ["x", "+44 20 7946 0958"], "n": 1},
        events=(Event("gen_ai.user.message", 5, {"content": "key AKIAIOSFODNN7EXAMPLE"}), Event("retry", 6, {})),
        links=(),
    )
    return Span(**{**base, **changes})


def test_span_redaction_counts_and_keeps_identifiers():
    out = redact_span(_span(), RedactionPolicy())
    assert out.input == f"my card is {CARD}"
    assert out.output == "ok"
    assert out.status_message == f"denied for {EMAIL}"
    assert out.attributes["gen_ai.prompt"] == f"mail {EMAIL}"
    assert out.attributes["tags"] == ["x", PHONE]
    assert out.events[0].attributes == {"content": f"key {API_KEY}"}
    assert out.events[1].name == "retry"
    assert out.attributes[REDACTIONS_ATTR] == 5
    # Identifiers stay (erasure finds the data subject by them); the resource is not content.
    assert out.user_id == "bob@example.com" and out.resource == {"host": "a@example.com"}


def test_span_untouched_without_matches_or_policy():
    clean = _span(status_message=None, input="hi", attributes={"a": "b"}, events=())
    assert redact_span(clean, RedactionPolicy()) is clean
    dirty = _span()
    assert redact_span(dirty, None) is dirty
    assert redact_span(dirty, RedactionPolicy(builtins=frozenset())) is dirty


# --- linear time -------------------------------------------------------------------------------

ADVERSARIAL = {
    # each unit repeated: long runs that make backtracking engines (or unbounded patterns) rescan
    "email local part": "a",
    "email dots": "a.",
    "email at-signs": "a@",
    "domain labels": "a@b.",
    "digits": "1",
    "digits and spaces": "1 ",
    "digits and dashes": "1-",
    "phone-ish": "+1 ",
    "iban-ish": "DE00 ",
    "token run": "x",
    "sk prefix": "sk-",
    "jwt parts": "eyJabcdefgh.",
    "bearer": "bearer ",
    "spaces": " ",
    "assignment": "api_key=",
}
POLICY = RedactionPolicy(custom=(CustomPattern("evil", r"(a+)+$"), CustomPattern("evil2", r"(x|x)*y")))


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _every_builtin(text: str) -> None:
    """The Python patterns themselves, without the RE2 hints that usually spare them the work."""
    from core.redaction import BUILTINS
    for sub in BUILTINS.values():
        sub(text)


@pytest.mark.parametrize("direct", [False, True], ids=["policy", "python-patterns"])
@pytest.mark.parametrize("unit", list(ADVERSARIAL.values()), ids=list(ADVERSARIAL))
def test_one_megabyte_costs_about_a_thousand_kilobytes(unit, direct):
    """Linear: redacting 1 MB takes about as long as redacting 1 KB a thousand times. A quadratic
    pattern would take ~1000x longer on the megabyte; the factor allowed is 25 (CPU noise)."""
    small = (unit * (1024 // len(unit) + 1))[:1024] + "!"
    large = (unit * (1024 * 1024 // len(unit) + 1))[: 1024 * 1024] + "!"
    redact = _every_builtin if direct else (lambda text: redact_text(text, POLICY))
    redact(small)  # compile once, outside the measure

    def thousand_small():
        for _ in range(1024):
            redact(small)

    baseline = _seconds(thousand_small)
    measured = _seconds(lambda: redact(large))
    assert measured < 25 * baseline, (unit, measured, baseline)


def test_lone_surrogates_do_not_stop_redaction():
    text, count = redact_text("bob@example.com \ud800", POLICY)
    assert count == 1 and text.startswith(EMAIL)


@pytest.mark.parametrize("text,expected,count", [c for c in CASES if c[2]])
def test_every_hint_covers_its_builtin(text, expected, count):
    """A hint that missed would let its built-in skip text it should redact."""
    import re2

    from core.redaction import BUILTINS, HINTS
    for name, builtin in BUILTINS.items():
        if builtin(text)[1]:
            assert re2.search(HINTS[name], text), name


@pytest.mark.parametrize("text", ["٤١١١١١١١١١١١١١١١", "４１１１１１１１１１１１１１１１", "DE٨٩ 3704 0044 0532 0130 00"])
def test_non_ascii_digits_neither_crash_nor_count(text):
    assert redact_text(text)[1] == 0


def test_a_count_sent_by_the_client_is_not_kept():
    spoofed = _span(status_message=None, input="hi", attributes={REDACTIONS_ATTR: 99}, events=())
    assert REDACTIONS_ATTR not in redact_span(spoofed, RedactionPolicy()).attributes
    spoofed = _span(status_message=None, input="bob@example.com", attributes={REDACTIONS_ATTR: 99}, events=())
    assert redact_span(spoofed, RedactionPolicy()).attributes[REDACTIONS_ATTR] == 1


_CLEAN = dict(status_message=None, input="hello", output="fine", events=(Event("retry", 6, {"n": 2}),),
              attributes={"gen_ai.request.model": "gpt-4o", "tags": ["a", {"k": "b"}], "n": 1})
_PLACES = {
    "input": lambda text: dict(input=text),
    "output": lambda text: dict(output=text),
    "status_message": lambda text: dict(status_message=text),
    "attribute": lambda text: dict(attributes={**_CLEAN["attributes"], "prompt": text}),
    "nested attribute": lambda text: dict(attributes={**_CLEAN["attributes"], "m": [{"x": ["ok", text]}]}),
    "event attribute": lambda text: dict(events=(Event("e", 5, {"content": text}),)),
}


@pytest.mark.parametrize("place", list(_PLACES))
@pytest.mark.parametrize("text,expected,count", [c for c in CASES if c[2]])
def test_the_screen_of_a_whole_span_misses_nothing(text, expected, count, place):
    """A span is first screened once, its strings joined: whatever a string alone holds is still
    found, wherever in the span it is."""
    span = _span(**{**_CLEAN, **_PLACES[place](text)})
    assert redact_span(span, RedactionPolicy()).attributes[REDACTIONS_ATTR] == count
    # Split over two strings, the parts are judged apart, as before the screen.
    head, tail = text[: len(text) // 2], text[len(text) // 2:]
    split = _span(**{**_CLEAN, "input": head, "output": tail})
    assert redact_span(split, RedactionPolicy()).attributes.get(REDACTIONS_ATTR, 0) == \
        redact_text(head)[1] + redact_text(tail)[1]


def test_the_screen_leaves_what_nests_too_deep_to_the_full_path():
    deep: object = "nothing to see"
    for _ in range(100):
        deep = [deep]
    span = _span(**{**_CLEAN, "attributes": {"deep": deep}})
    out = redact_span(span, RedactionPolicy())
    assert TOO_DEEP in repr(out.attributes["deep"]) and out.attributes[REDACTIONS_ATTR] == 1
    clean = _span(**_CLEAN)
    assert redact_span(clean, RedactionPolicy()) is clean
    # A custom pattern may be anchored: no screen, every string on its own.
    anchored = RedactionPolicy(custom=(CustomPattern("ticket", "^T-[0-9]+$"),))
    assert redact_span(_span(**{**_CLEAN, "output": "T-42"}), anchored).output == "[REDACTED:ticket]"
