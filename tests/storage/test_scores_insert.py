"""insert_scores sends its rows as one JSON text: every value must come back exactly as given."""

from __future__ import annotations

from core.scores import ScoreInput
from db.queries.scores import insert_scores, trace_scores

TRACE = bytes(range(16))
SPAN = b"\x00\\\"'{}\xff\x01\x02"  # bytes an escaping mistake would mangle
HOSTILE = 'quote " backslash \\ brace {a,b} newline\n tab\t é ✓ 🙂 </script>'


def score(key: bytes, **fields) -> ScoreInput:
    values = dict(trace_id=TRACE, span_id=SPAN, name="relevance", data_type="numeric", value=0.1 + 0.2,
                  label=None, source="otel", comment=HOSTILE)
    values.update(fields)
    return ScoreInput(key, **values)


def test_values_round_trip_exactly(session, project):
    project_id = project[0]
    rows = [score(b"k1"), score(b"k2", span_id=None, value=None, label="good", data_type="categorical", comment=None),
            score(b"k3", value=-1e-300, name=HOSTILE[:40]), score(b"k4", value=3.0, data_type="boolean")]
    assert insert_scores(session, project_id, rows) == 4
    got = {s.score_key: (s.trace_id, s.span_id, s.name, s.data_type, s.value, s.label, s.source, s.comment)
           for s in trace_scores(session, project_id, TRACE)}
    assert got == {bytes(r.key): (r.trace_id, r.span_id, r.name, r.data_type, r.value, r.label, r.source, r.comment)
                   for r in rows}


def test_keep_replace_and_the_last_of_a_key_in_one_batch(session, project):
    project_id = project[0]
    assert insert_scores(session, project_id, [score(b"k", value=1.0), score(b"k", value=2.0)]) == 1
    assert insert_scores(session, project_id, [score(b"k", value=3.0)]) == 0  # kept
    assert [s.value for s in trace_scores(session, project_id, TRACE)] == [2.0]
    assert insert_scores(session, project_id, [score(b"k", value=4.0, comment="re-run")], replace=True) == 1
    assert [(s.value, s.comment) for s in trace_scores(session, project_id, TRACE)] == [(4.0, "re-run")]
