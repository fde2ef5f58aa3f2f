"""core/scores.py: OpenInference EVALUATOR spans read as scores (table of cases)."""

from __future__ import annotations

import pytest

from core.scores import from_openinference_evaluator


@pytest.mark.parametrize(("attributes", "expected"), [
    ({"openinference.span.kind": "EVALUATOR", "metadata": '{"score": 0.8}'}, ("span eval", 0.8, None, None)),
    ({"openinference.span.kind": "EVALUATOR", "metadata.evaluator_name": "tox", "metadata.label": "safe",
      "metadata.explanation": "no insult"}, ("tox", None, "safe", "no insult")),
    ({"openinference.span.kind": "EVALUATOR", "output.value": '{"score": "1", "explanation": "ok"}'},
     ("span eval", 1.0, None, "ok")),
    ({"openinference.span.kind": "EVALUATOR", "output.value": "just prose"}, None),   # no result
    ({"openinference.span.kind": "EVALUATOR", "metadata": "{not json", "metadata.score": "NaN"}, None),
    ({"openinference.span.kind": "LLM", "metadata": '{"score": 0.8}'}, None),         # not an evaluator
])
def test_openinference_evaluator_spans(attributes, expected):
    score = from_openinference_evaluator(attributes, "span eval", b"t" * 16, b"s" * 8, b"p" * 8)
    if expected is None:
        assert score is None
    else:
        assert (score.name, score.value, score.label, score.comment) == expected
        assert score.span_id == b"p" * 8 and score.source == "openinference"
