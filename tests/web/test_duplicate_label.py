"""The trace page and the trace API say which span of a model call recorded twice does not count, and why."""

from __future__ import annotations

from tests import otlp_payloads as P
from tests.collector.test_model_call_dedup import stacked
from tests.web.conftest import login
from tests.web.workbench_seed import ingest

NOTE = "same model call recorded by two instrumentations (one span inside the other)"


def test_trace_page_and_api_label_the_span_that_does_not_count(client, seeded, database_url):
    tid = P.trace_id()
    root, outer, inner = stacked(tid)
    ingest(database_url, seeded.project.id, [root, outer, inner], "svc")
    login(client, seeded)
    winner, loser = inner.span_id.hex(), outer.span_id.hex()

    page = client.get(f"/traces/{tid.hex()}")
    assert page.status_code == 200
    assert page.text.count('class="flag dup"') == 1
    assert f"counted in {winner[:8]}" in page.text and NOTE in page.text

    detail = client.get(f"/traces/{tid.hex()}/spans/{loser}", headers={"HX-Request": "true"})
    assert f'href="/traces/{tid.hex()}?span={winner}"' in detail.text and NOTE in detail.text
    assert "Not counted" not in client.get(f"/traces/{tid.hex()}/spans/{winner}", headers={"HX-Request": "true"}).text

    json_href = page.headers["link"].split(">")[0].lstrip("<")
    data = client.get(json_href).json()
    spans = {s["span_id"]: s for s in data["spans"]}
    assert (spans[loser]["duplicate_of"], spans[loser]["duplicate_reason"], spans[loser]["not_counted"]) == (
        winner, "nested", NOTE)
    assert spans[winner]["duplicate_of"] is None and spans[winner]["not_counted"] is None
    assert data["trace"]["llm_calls"] == 1
