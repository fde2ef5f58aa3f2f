import pytest

from core.content_display import Display, Message, display, preview


@pytest.mark.parametrize("text, expected", [
    (None, None),
    ("hello", Display("text", "hello")),
    ("[not json", Display("text", "[not json")),
    ('{"b": 1, "a": [1]}', Display("json", '{\n  "a": [\n    1\n  ],\n  "b": 1\n}')),
    ('[{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "text", "text": "yo"}]}]',
     Display("messages", messages=(Message("user", "hi"), Message("assistant", "yo")))),
    ('{"messages": [{"role": "system", "content": "be brief"}]}',
     Display("messages", messages=(Message("system", "be brief"),))),
    ('[{"role": "assistant", "tool_calls": [{"id": "1"}]}]',
     Display("messages", messages=(Message("assistant", '{\n  "tool_calls": [\n    {\n      "id": "1"\n    }\n  ]\n}'),))),
    ('[]', Display("json", "[]")),
])
def test_display(text, expected):
    assert display(text) == expected


@pytest.mark.parametrize("text, expected", [
    (None, ""),
    ("", ""),
    ("  plain\n  question  ", "plain question"),
    ('[{"role": "system", "content": "be terse"}, {"role": "user", "content": "refund order 42"}]', "refund order 42"),
    ('[{"role": "system", "content": "be terse"}]', "be terse"),
    ('{"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}', "hi"),
    ('{"query": "x"}', '{ "query": "x" }'),
    ("x" * 200, "x" * 139 + "…"),
    ('[{"role": "user", "content": "<script>alert(1)</script>"}]', "<script>alert(1)</script>"),
])
def test_preview(text, expected):
    assert preview(text) == expected
