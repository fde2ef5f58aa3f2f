"""core/erasure.py: what a span keeps after `causeline erase`."""

from __future__ import annotations

import pytest

from core.erasure import ERASED_ATTR, erase_attributes, erase_events, pseudonym

KEY = b"k" * 16


@pytest.mark.parametrize("attributes,expected", [
    ({}, {ERASED_ATTR: True}),
    ({"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10},
     {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10, ERASED_ATTR: True}),
    ({"input.value": "hi", "gen_ai.input.messages": "[]", "gen_ai.prompt.0.content": "x", "llm.prompts": ["p"]},
     {ERASED_ATTR: True}),
    ({"user.id": "bob", "session.id": "s1", "enduser.id": 7},
     {"user.id": pseudonym("bob", KEY), "session.id": pseudonym("s1", KEY), "enduser.id": pseudonym("7", KEY),
      ERASED_ATTR: True}),
    (None, {ERASED_ATTR: True}),
])
def test_erase_attributes(attributes, expected):
    assert erase_attributes(attributes, KEY) == expected


def test_events_keep_name_and_time_only_what_is_not_content():
    events = [
        {"name": "gen_ai.user.message", "time_ns": 5, "attributes": {"content": "my secret"}},
        {"name": "exception", "time_ns": 6, "attributes": {"exception.type": "Timeout", "input.value": "x"}},
        "garbage",
    ]
    assert erase_events(events, KEY) == [
        {"name": "gen_ai.user.message", "time_ns": 5, "attributes": {}},
        {"name": "exception", "time_ns": 6, "attributes": {"exception.type": "Timeout"}},
    ]


def test_pseudonyms_group_one_subject_and_hide_it():
    assert pseudonym("bob", KEY) == pseudonym("bob", KEY) != pseudonym("ann", KEY)
    assert pseudonym("bob", KEY) != pseudonym("bob", b"other key")
    assert "bob" not in pseudonym("bob", KEY) and pseudonym("bob", KEY).startswith("erased:")
    assert pseudonym(pseudonym("bob", KEY), KEY) == pseudonym("bob", KEY)  # erasing twice changes nothing
    assert pseudonym(None, KEY) is None
