"""Large traces on the trace page: they open, the tree is lazily expanded, the trace is read once."""

from __future__ import annotations

import logging
import os
import re

from sqlalchemy import event, insert

from db.models import SpanEdge, SpanRow
from db.queries.traces import span_names
from tests.api.seed import XSS, make_span, rollup
from tests.web.conftest import login
from web.tree import MAX_CHILDREN, MAX_INDENT, MoreRow, build_tree

HX = {"HX-Request": "true"}


def span_ids(html: str) -> list[str]:
    return re.findall(r'<tr class="span-row[^"]*" data-span="([0-9a-f]{16})"', html)


def _columns(row) -> dict:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns if getattr(row, c.key) is not None}


def store_many(session, spans: list[SpanRow]):
    """Bulk insert (the ORM unit of work is too slow for 20,000 rows), with parent edges."""
    trace = rollup(spans)
    session.execute(insert(SpanRow), [_columns(s) for s in spans])
    edges = [dict(project_id=s.project_id, trace_id=s.trace_id, span_id=s.span_id, relation="parent",
                  linked_trace_id=s.trace_id, linked_span_id=s.parent_span_id)
             for s in spans if s.parent_span_id is not None]
    if edges:
        session.execute(insert(SpanEdge), edges)
    session.add(trace)
    session.commit()
    return trace


def wide(project_id: int, n: int, trace_id: bytes | None = None) -> list[SpanRow]:
    trace_id = trace_id or os.urandom(16)
    root = make_span(project_id, trace_id, name="root", start_ms=0, duration_ms=n + 1, category="agent")
    kids = [make_span(project_id, trace_id, name=f"child {i}", start_ms=i + 0.5, duration_ms=0.5, parent=root.span_id)
            for i in range(n)]
    return [root, *kids]


def chain(project_id: int, n: int) -> list[SpanRow]:
    trace_id = os.urandom(16)
    spans, parent = [], None
    for i in range(n):
        span = make_span(project_id, trace_id, name=f"level {i}", start_ms=i * 0.001, duration_ms=n - i * 0.001,
                         parent=parent)
        spans.append(span)
        parent = span.span_id
    return spans


def test_span_names_takes_tens_of_thousands_of_keys(session, seeded):
    spans = wide(seeded.project.id, 20_000)
    store_many(session, spans)
    keys = [(s.trace_id, s.span_id) for s in spans] + [(os.urandom(16), os.urandom(8))]
    names = span_names(session, seeded.project.id, keys)
    assert len(names) == 20_001 and names[keys[5]] == "child 4"
    assert span_names(session, seeded.project.id + 1000, keys[:10]) == {}  # scoped by project


def test_a_root_of_20000_children_opens_and_expands_page_by_page(client, session, seeded):
    spans = wide(seeded.project.id, 20_000)
    trace = store_many(session, spans)
    login(client, seeded)
    page = client.get(f"/traces/{trace.trace_id.hex()}")
    assert page.status_code == 200, page.text[:500]
    ids = span_ids(page.text)
    assert len(ids) == 1 + MAX_CHILDREN and ids[0] == spans[0].span_id.hex()
    assert "more spans…" in page.text  # 19,900 more: ("4,900" of the 5,000 loaded) or the rest
    more = re.search(r'hx-get="(/traces/[0-9a-f]{32}/children/[0-9a-f]{16}\?offset=100[^"]*)"', page.text)
    assert more, "a 'more' row loads the next children"
    fragment = client.get(more.group(1).replace("&amp;", "&"), headers=HX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert span_ids(fragment.text) == [s.span_id.hex() for s in spans[1 + MAX_CHILDREN:1 + 2 * MAX_CHILDREN]]
    last = client.get(f"/traces/{trace.trace_id.hex()}/children/{spans[0].span_id.hex()}?offset=19950&depth=1",
                      headers=HX)
    assert len(span_ids(last.text)) == 50 and "more spans" not in last.text


def test_a_20000_deep_chain_opens_and_expands_one_level_at_a_time(client, session, seeded):
    spans = chain(seeded.project.id, 20_000)
    trace = store_many(session, spans)
    login(client, seeded)
    page = client.get(f"/traces/{trace.trace_id.hex()}")
    assert page.status_code == 200
    ids = span_ids(page.text)
    assert 1 < len(ids) < 50 and ids == [s.span_id.hex() for s in spans[:len(ids)]]
    deepest = spans[len(ids) - 1]
    expand = re.search(rf'hx-get="(/traces/[0-9a-f]{{32}}/children/{deepest.span_id.hex()}\?[^"]*)"', page.text)
    assert expand, "the last rendered level is collapsed with an expand control"
    fragment = client.get(expand.group(1).replace("&amp;", "&"), headers=HX)
    # The span's own row, now open, then its child, collapsed again.
    assert span_ids(fragment.text) == [deepest.span_id.hex(), spans[len(ids)].span_id.hex()]
    assert fragment.text.count('class="expand"') == 1
    # A permalink deep down the chain opens the path to it; rows stay indented at most MAX_INDENT.
    target = spans[3000]
    deep = client.get(f"/traces/{trace.trace_id.hex()}", params={"span": target.span_id.hex()})
    assert target.span_id.hex() in span_ids(deep.text) and "depth 3,000" in deep.text
    assert max(int(p) for p in re.findall(r'padding-left: (\d+)px', deep.text)) == 8 + MAX_INDENT * 18


def test_the_trace_page_reads_the_spans_once(client, session, seeded, engine):
    login(client, seeded)
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert client.get(f"/traces/{seeded.trace.hex}").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    span_reads = [s for s in statements if re.search(r"FROM spans\b", s) and "spans.trace_id = " in s
                  and "spans.parent_span_id" in s.split("FROM")[0]]
    assert len(span_reads) == 1, span_reads


def test_children_fragment_is_escaped_and_scoped(client, session, seeded):
    spans = wide(seeded.project.id, 3)
    spans[1].name = XSS
    trace = store_many(session, spans)
    login(client, seeded)
    url = f"/traces/{trace.trace_id.hex()}/children/{spans[0].span_id.hex()}"
    fragment = client.get(url, headers=HX).text
    assert XSS not in fragment and "&lt;script&gt;" in fragment
    assert client.get(url, follow_redirects=False).status_code == 303  # plain visit: the full page
    assert client.get(f"/traces/{trace.trace_id.hex()}/children/{'0' * 16}", headers=HX).status_code == 404
    assert client.get(f"/traces/{'ab' * 16}/children/{spans[0].span_id.hex()}", headers=HX).status_code == 404


def test_permalink_to_a_missing_span_says_so(client, seeded):
    login(client, seeded)
    html = client.get(f"/traces/{seeded.trace.hex}", params={"span": "0" * 16}).text
    assert "This trace has no span" in html and "0" * 16 in html


def test_tree_limits_collapse_the_rest():
    trace = os.urandom(16)
    spans = wide(1, 250, trace)
    rows = build_tree(spans, open_depth=6, max_rows=300, max_children=100)
    assert len([r for r in rows if not r.is_more]) == 101
    more = [r for r in rows if r.is_more]
    assert more == [MoreRow(spans[0].span_id, 1, 100, 150)]
    # Revealing a child beyond the first page still shows it.
    rows = build_tree(spans, open_depth=6, max_rows=300, max_children=100, reveal=spans[200].span_id)
    assert spans[200] in [r.span for r in rows if not r.is_more]
    # Unlimited: every span, as before.
    assert len(build_tree(spans)) == 251


def test_a_large_trace_loads_its_attribution_panel_afterwards(client, session, seeded):
    spans = wide(seeded.project.id, 3000)
    spans[5].status, spans[5].error_class, spans[5].name = "error", "timeout", XSS
    trace = store_many(session, spans)
    login(client, seeded)
    page = client.get(f"/traces/{trace.trace_id.hex()}").text
    assert f'hx-get="/traces/{trace.trace_id.hex()}/attribution" hx-trigger="load"' in page
    assert XSS not in page
    panel = client.get(f"/traces/{trace.trace_id.hex()}/attribution", headers=HX)
    assert panel.status_code == 200 and "<html" not in panel.text
    assert "timeout" in panel.text and XSS not in panel.text and "&lt;script&gt;" in panel.text
    plain = client.get(f"/traces/{trace.trace_id.hex()}/attribution", follow_redirects=False)
    assert plain.headers["location"] == f"/api/traces/{trace.trace_id.hex()}/attribution"
    assert client.get(f"/traces/{'ab' * 16}/attribution", headers=HX).status_code == 404


def test_chat_messages_and_json_in_the_span_detail(client, session, seeded):
    spans = wide(seeded.project.id, 1)
    spans[1].input = '[{"role": "system", "content": "be brief"}, {"role": "user", "content": "' + XSS + '"}]'
    spans[1].output = '{"answer": 42, "why": "because"}'
    trace = store_many(session, spans)
    login(client, seeded)
    html = client.get(f"/traces/{trace.trace_id.hex()}/spans/{spans[1].span_id.hex()}", headers=HX).text
    assert '<li class="message role-system"><span class="role">system</span><pre class="content">be brief</pre>' in html
    assert '<span class="role">user</span>' in html and XSS not in html and "&lt;script&gt;" in html
    assert '<pre class="content json">{\n  &#34;answer&#34;: 42,' in html


def test_a_large_trace_is_read_as_a_skeleton_and_only_the_rendered_rows_in_full(client, session, seeded, engine,
                                                                               caplog):
    spans = wide(seeded.project.id, 3000)  # above INLINE_ATTRIBUTION_SPANS: the skeleton path
    spans[7].status, spans[7].error_class = "error", "timeout"
    trace = store_many(session, spans)
    login(client, seeded)
    statements: list[tuple[str, dict]] = []

    def seen(conn, cursor, statement, parameters, *args):
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with caplog.at_level(logging.DEBUG, logger="db.engine"):  # the reads through the driver's cursor
            page = client.get(f"/traces/{trace.trace_id.hex()}")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    statements += [(r.statement, r.parameters) for r in caplog.records if hasattr(r, "statement")]
    assert page.status_code == 200
    assert span_ids(page.text) == [s.span_id.hex() for s in spans[:1 + MAX_CHILDREN]]
    assert "✕ timeout" in page.text and "child 6" in page.text  # the rendered rows' own columns
    reads = [(s, p) for s, p in statements if re.search(r"FROM spans\b", s) and "spans.trace_id = " in s]
    whole = [s for s, _ in reads if "spans.parent_span_id" in s.split("FROM")[0]]
    assert len(whole) == 1 and "spans.name" not in whole[0].split("FROM")[0], whole  # every span: ids and times
    named = [p for s, p in reads if "spans.name" in s.split("FROM")[0]]
    assert len(named) == 1
    values = named[0].values() if isinstance(named[0], dict) else named[0]
    assert [len(v) for v in values if isinstance(v, list)] == [1 + MAX_CHILDREN]  # the rendered rows only



def test_every_text_of_a_tree_row_is_escaped(client, session, seeded):
    """The row strings made once in web/span_rows.py are still escaped where printed: name (also
    in a collapsed row's aria-label), category, model and error class."""
    hostile = '"><img src=x onerror=alert(1)>'
    spans = wide(seeded.project.id, 2500)  # above INLINE_ATTRIBUTION_SPANS: the skeleton read
    spans[1].name, spans[1].request_model = XSS, hostile
    spans[2].status, spans[2].error_class = "error", XSS
    spans[3].category = hostile
    spans.append(make_span(seeded.project.id, spans[0].trace_id, name="grandchild", start_ms=1.6,
                           duration_ms=0.1, parent=spans[1].span_id))
    trace = store_many(session, spans)
    login(client, seeded)
    page = client.get(f"/traces/{trace.trace_id.hex()}").text
    assert XSS not in page and hostile not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 2  # the name and the error class
    assert page.count("&#34;&gt;&lt;img src=x onerror=alert(1)&gt;") >= 3  # the model, the category twice
    # Loaded on "expand", spans[1] has children not shown: its expand control names it.
    fragment = client.get(f"/traces/{trace.trace_id.hex()}/children/{spans[0].span_id.hex()}", headers=HX).text
    assert XSS not in fragment and hostile not in fragment
    assert 'aria-label="Expand &lt;script&gt;alert(1)&lt;/script&gt;"' in fragment
