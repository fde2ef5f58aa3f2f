"""The trace page's Attribution panel: root causes, path, recovered flag, link to the JSON twin."""

from __future__ import annotations

import re

from tests.web.conftest import login


def test_trace_page_shows_attribution(client, seeded):
    login(client, seeded)
    t = seeded.trace
    html = client.get(f"/traces/{t.hex}").text
    assert '<h2 class="section">Attribution' in html
    assert f'href="/api/traces/{t.hex}/attribution"' in html
    rows = re.findall(r'<tr class="failure( recovered)?">', html)
    api = client.get(f"/api/traces/{t.hex}/attribution").json()
    assert len(rows) == len(api["failures"]) > 0
    for failure in api["failures"]:
        root = failure["root_cause"]
        assert f'href="/traces/{root["trace_id"]}?span={root["span_id"]}">{root["name"]}</a>' in html
    assert sum(1 for r in rows if r) == sum(1 for f in api["failures"] if f["recovered"])
