"""The trace page's Attribution panel: root causes, path, recovered flag, link to the JSON twin."""

from __future__ import annotations

import re
from markupsafe import escape

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


def test_panel_shows_what_each_failure_burned_its_blast_radius_and_evidence(client, seeded):
    login(client, seeded)
    t = seeded.trace
    html = client.get(f"/traces/{t.hex}").text
    api = client.get(f"/api/traces/{t.hex}/attribution").json()
    burned = re.findall(r'<td class="num burned">([\d,]+) tokens<br>', html)
    assert len(burned) == len(api["failures"])
    assert re.findall(r'<td class="blast">', html)
    for failure in api["failures"]:
        for line in failure["evidence"]:  # in the page, not in a tooltip
            assert f"<li>{escape(line)}</li>" in html
    assert "title=" not in html.split('class="grid attribution"')[1].split("</table>")[0]
