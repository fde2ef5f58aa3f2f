"""core/judge_evaluators.py: sampling, what is judged, the judges' messages and the verdicts read
back, with tables of cases."""

from __future__ import annotations

import json

import pytest

from core.evaluators import RuleError, parse_rule
from core.judge_evaluators import (
    MAX_ANSWER, Prompt, RunSpan, VerdictError, as_score, context, enabled_judges, fill, final_call, parse_prompt,
    parse_verdict, question, sampled, tasks,
)
from judge.prompts import latest

PROMPTS = latest()


def chat(*pairs) -> str:
    return json.dumps([{"role": role, "content": content} for role, content in pairs])


def span(n: int, category: str, *, input=None, output=None, status="unset", attributes=None, **kw) -> RunSpan:
    return RunSpan(bytes([n]) * 8, category, n * 1000, status, input, output, attributes or {}, **kw)


RAG = [
    span(1, "agent", input="What is the refund window?"),
    span(2, "retrieval", output="ignored: documents win", attributes={
        "retrieval.documents.1.document.content": "Refunds are accepted within 30 days.",
        "retrieval.documents.0.document.content": "Policy v3.", "retrieval.documents.0.document.id": "d0"}),
    span(3, "llm", input=chat(("system", "Be brief."), ("user", "What is the refund window?")),
         output=chat(("assistant", "Let me look that up."))),
    span(4, "tool", output='{"order": 42, "age_days": 12}'),
    span(5, "llm", input=chat(("user", "Summarize for the customer")), output=chat(("assistant", "30 days."))),
    span(6, "tool", output="after the answer: not context"),
    span(7, "llm", status="error", output=chat(("assistant", "partial"))),
    span(8, "llm", output=chat(("assistant", "   "))),
]


def test_the_final_answer_question_and_context_of_a_run():
    call = final_call(RAG)
    assert call.span_id == bytes([5]) * 8  # failed and blank calls are not answers
    assert question(RAG, call) == "What is the refund window?"  # the run's first user message
    assert context(RAG, call) == ["Policy v3.", "Refunds are accepted within 30 days.", '{"order": 42, "age_days": 12}']


@pytest.mark.parametrize("spans, expected", [
    ([], None),
    ([span(1, "llm", output=None)], None),
    ([span(1, "tool", output="x")], None),
    ([span(1, "llm", output="plain text answer"), span(2, "embedding", output="[0.1]")], bytes([1]) * 8),
])
def test_final_call_cases(spans, expected):
    call = final_call(spans)
    assert (call.span_id if call else None) == expected


@pytest.mark.parametrize("spans, expected", [
    ([span(1, "llm", input="plain prompt", output="a")], "plain prompt"),  # plain text: one user message
    ([span(1, "llm", input=chat(("system", "s")), output="a")], None),  # no user message anywhere
    ([span(1, "llm", input=chat(("system", "s")), output="a"), span(2, "llm", input=chat(("user", "q2")), output="b")],
     "q2"),
    ([span(1, "llm", input='{"messages": [{"role": "human", "content": [{"text": "parts"}]}]}', output="a")], "parts"),
])
def test_question_cases(spans, expected):
    assert question(spans, final_call(spans)) == expected


def test_judges_chosen_for_a_run():
    rubric = parse_rule("polite", "llm_rubric", {"rubric": "Is it polite?", "model": "gpt-4o*"})
    other_model = parse_rule("terse", "llm_rubric", {"rubric": "Is it terse?", "model": "claude*"})
    regex = parse_rule("mentions", "regex", {"pattern": "days"})
    spans = [*RAG[:4], RunSpan(bytes([5]) * 8, "llm", 5000, "ok", None, "30 days.", {}, "chat", "gpt-4o-mini")]
    made = tasks(spans, ("faithfulness", "relevance", "consistency"), [rubric, other_model, regex], PROMPTS)
    assert [(t.name, t.source) for t in made] == [
        ("faithfulness", "judge:faithfulness@1"), ("relevance", "judge:relevance@1"),
        ("consistency", "judge:consistency@1"), ("polite", "judge:rubric@1")]
    faithfulness = made[0].messages[1]["content"]
    assert "Refunds are accepted within 30 days." in faithfulness and "30 days." in faithfulness
    assert "What is the refund window?" in faithfulness
    assert "Is it polite?" in made[3].messages[0]["content"]
    assert "Refunds are accepted" not in made[1].messages[1]["content"]  # relevance gets no context


@pytest.mark.parametrize("spans, judges, expected", [
    ([span(1, "llm", input="q", output="a")], ("faithfulness", "relevance"), ["relevance"]),  # no context
    ([span(1, "llm", input=chat(("system", "s")), output="a")], ("relevance", "consistency"), ["consistency"]),
    ([span(1, "llm", input="q", output=None)], ("relevance",), []),  # nothing answered
    ([span(1, "tool", output="ctx"), span(2, "llm", input="q", output="a")], ("faithfulness",), ["faithfulness"]),
    ([span(1, "llm", input="q", output="a")], (), []),
])
def test_which_judges_run(spans, judges, expected):
    assert [t.name for t in tasks(spans, judges, [], PROMPTS)] == expected


@pytest.mark.parametrize("text, score, reasoning", [
    ('{"score": 4, "reasoning": "mostly"}', 4.0, "mostly"),
    ('{"score": "5", "reasoning": "all supported"}', 5.0, "all supported"),
    ('```json\n{"score": 1, "reasoning": "invented"}\n```', 1.0, "invented"),
    ('Here is my verdict: {"score": 3.5, "reasoning": "mixed"} Thanks.', 3.5, "mixed"),
    ('{"score": 2}', 2.0, ""),
    ('{"score": 2, "explanation": "other key"}', 2.0, "other key"),
])
def test_verdicts_read(text, score, reasoning):
    verdict = parse_verdict(text)
    assert (verdict.score, verdict.reasoning) == (score, reasoning)


@pytest.mark.parametrize("text, says", [
    ("", "no JSON object"),
    ("The answer is good. 5/5", "no JSON object"),
    ("{not json}", "no JSON object"),
    ("[4]", "not an object"),
    ('{"reasoning": "forgot the score"}', "missing"),
    ('{"score": "high"}', "not a number"),
    ('{"score": true}', "missing or not a number"),
    ('{"score": 0}', "outside 1-5"),
    ('{"score": 7}', "outside 1-5"),
    ('{"score": NaN}', "not a number"),
    ('{"score": null}', "missing"),
])
def test_garbage_is_an_error_never_a_score(text, says):
    with pytest.raises(VerdictError, match=says):
        parse_verdict(text)


def test_a_verdict_as_a_score_replaces_the_same_judges_earlier_one():
    made = tasks([span(1, "llm", input="q", output="a")], ("relevance",), [], PROMPTS)[0]
    first = as_score(made, parse_verdict('{"score": 4, "reasoning": "fine"}'), b"t" * 16)
    again = as_score(made, parse_verdict('{"score": 2, "reasoning": "worse"}'), b"t" * 16)
    assert first.key == again.key
    assert (first.name, first.value, first.label, first.source, first.comment, first.data_type) == (
        "relevance", 0.75, "4/5", "judge:relevance@1", "fine", "numeric")
    assert (again.value, again.label) == (0.25, "2/5")


def test_sampling_is_deterministic_and_near_the_rate():
    traces = [i.to_bytes(16, "big") for i in range(4000)]
    share = sum(sampled(t, 0.1) for t in traces) / len(traces)
    assert 0.085 < share < 0.115
    assert [sampled(t, 0.1) for t in traces[:50]] == [sampled(t, 0.1) for t in traces[:50]]
    assert not any(sampled(t, 0.0) for t in traces[:50]) and all(sampled(t, 1.0) for t in traces[:50])
    assert {t for t in traces if sampled(t, 0.05)} <= {t for t in traces if sampled(t, 0.1)}  # a higher rate adds


def test_content_cannot_inject_placeholders_and_is_bounded():
    prompt = Prompt("x", 1, "rubric: {{rubric}}", "q={{question}} a={{answer}}")
    assert fill(prompt.user, {"question": "{{answer}}", "answer": "A"}) == "q={{answer}} a=A"
    made = tasks([span(1, "llm", input="q", output="y" * (MAX_ANSWER + 500))], ("consistency",), [], PROMPTS)[0]
    assert "[... 500 characters cut]" in made.messages[1]["content"]


@pytest.mark.parametrize("text, expected", [
    ("faithfulness,relevance", ("faithfulness", "relevance")),
    (" Consistency , relevance,relevance ", ("consistency", "relevance")),
    ("", ()),
])
def test_enabled_judges(text, expected):
    assert enabled_judges(text) == expected


def test_unknown_judge_refused():
    with pytest.raises(ValueError, match="unknown judge"):
        enabled_judges("faithfulness,vibes")


@pytest.mark.parametrize("name, config, says", [
    ("polite", {}, "needs a rubric"),
    ("polite", {"rubric": "  "}, "needs a rubric"),
    ("polite", {"rubric": "x" * 5000}, "limited to"),
    ("polite", {"rubric": "ok", "pattern": "x"}, "unknown config"),
    ("relevance", {"rubric": "ok"}, "built-in"),
])
def test_rubric_rules_checked(name, config, says):
    with pytest.raises(RuleError, match=says):
        parse_rule(name, "llm_rubric", config)


def test_prompt_files_are_well_formed():
    assert {p.ref for p in PROMPTS.values()} >= {"faithfulness@1", "relevance@1", "consistency@1", "rubric@1"}
    for prompt in (p for p in PROMPTS.values() if p.name != "attribution_all_at_once"):  # judge/attribution.py's
        assert '"score"' in prompt.system and '"reasoning"' in prompt.system
        assert "{{answer}}" in prompt.user
    with pytest.raises(ValueError):
        parse_prompt("bad", 1, "no sections")
