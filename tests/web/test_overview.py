"""The Overview and Providers pages over a seeded provider outage (real write path, real
attribution): exact numbers, links, the JSON twin, bad windows and filters."""

from __future__ import annotations

import re
from html import unescape

import pytest

from tests.web.conftest import login
from tests.web.outage import NEW_SERVED, seed_outage


@pytest.fixture
def outage(database_url, sessionmaker, seeded):
    return seed_outage(database_url, sessionmaker, seeded.project.id)


def tile(html: str, key: str) -> str:
    m = re.search(rf'tile-{key}">.*?class="tile-value" href="([^"]*)"[^>]*>([^<]*)<', html, re.S)
    assert m, key
    return unescape(m.group(1)), m.group(2)


def test_overview_counts_runs_by_outcome_and_links_each_number(client, seeded, outage):
    login(client, seeded)
    r = client.get("/overview?range=24h")
    assert r.status_code == 200
    assert r.headers["link"] == '</api/overview?range=24h>; rel="alternate"; type="application/json"'
    html = r.text
    assert 'href="/api/overview?range=24h"' in html  # the visible JSON link
    # seeded.trace (the conftest's agent run) is from 2026: outside the window.
    assert tile(html, "runs")[1] == "7"
    assert tile(html, "failed")[1] == "1"
    assert tile(html, "recovered")[1] == "2"
    assert tile(html, "failure-rate")[1] == "14.3%"
    href, _ = tile(html, "runs")
    assert href.startswith("/traces?since=") and "until=" in href
    assert tile(html, "failed")[0].endswith("status=error")
    assert tile(html, "recovered")[0] == "/failures?range=24h"
    assert "/costs?group_by=hour&amp;range=24h" in html or "/costs?group_by=hour&range=24h" in unescape(html)
    # Root causes: the 504s are timeouts; the failed run is linked.
    assert ">timeout<" in html
    assert f'href="/traces/{outage.failed[0].hex()}"' in html or any(
        f'href="/traces/{t.hex()}"' in html for t in outage.failed + outage.recovered)
    # Models in trouble: gpt-4o 3 errors in 7 calls; links to its Providers view.
    assert "42.9%" in html and "/providers?range=24h&amp;provider=openai&amp;model=gpt-4o" in html
    assert NEW_SERVED in html  # the served-model change
    assert ">support<" in html  # the most expensive agent


def test_overview_json_twin_is_what_the_page_shows(client, seeded, outage):
    login(client, seeded)
    data = client.get("/api/overview?range=24h").json()
    t = data["totals"]
    assert (t["runs"], t["failed_runs"], t["recovered_runs"], t["ok_runs"]) == (7, 1, 2, 4)
    assert t["failure_rate"] == round(1 / 7, 6)
    assert data["window"]["range"] == "24h" and data["window"]["step_seconds"] == 3600
    assert len(data["series"]) == 24 and sum(p["runs"] for p in data["series"]) == 7
    assert sum(p["recovered_runs"] for p in data["series"]) == 2
    assert [g["key"] for g in data["root_causes"]["error_class"]] == ["timeout"]
    assert data["root_causes"]["error_class"][0]["failures"] == 3
    [trouble] = data["models_in_trouble"]
    assert (trouble["provider"], trouble["model"], trouble["calls"], trouble["errors"]) == ("openai", "gpt-4o", 7, 3)
    assert trouble["top_error_class"] == "timeout" and trouble["fallback_rate"] == 0
    assert [c["new_model"] for c in data["served_model_changes"]] == [NEW_SERVED]
    assert [g["key"] for g in data["expensive_agents"]] == ["support"]
    html = client.get("/overview?range=24h").text
    assert tile(html, "runs")[1] == str(t["runs"]) and tile(html, "failed")[1] == str(t["failed_runs"])


@pytest.mark.parametrize("query, message", [
    ("range=2y", "Range must be one of"),
    ("since=yesterday", "is not a date/time"),
    ("since=2026-11-20T12:00&until=2026-11-20T11:00", "must be later"),
    ("since=2020-01-01&until=2026-01-01", "limited to 90 days"),
])
def test_a_bad_window_is_explained_and_the_page_says_what_it_shows(client, seeded, outage, query, message):
    login(client, seeded)
    r = client.get(f"/overview?{query}")
    assert r.status_code == 200
    assert re.search(rf'role="alert">[^<]*{re.escape(message)}[^<]*Showing the last 24 hours instead', r.text)
    assert tile(r.text, "runs")[1] == "7"  # the 24 hours it says it shows
    assert client.get(f"/api/overview?{query}").status_code == 422


def test_a_custom_window_narrows_the_counts(client, seeded, outage):
    login(client, seeded)
    start = outage.hour.isoformat()
    end = (outage.hour.replace(minute=59)).isoformat()
    data = client.get("/api/overview", params={"since": start, "until": end}).json()
    assert data["totals"]["runs"] == 6 and data["window"]["range"] == "custom"
    html = client.get("/overview", params={"since": start, "until": end}).text
    assert tile(html, "runs")[1] == "6"


def test_empty_overview_says_what_to_do(client, seeded):
    login(client, seeded)
    html = client.get("/overview?range=15m").text
    assert tile(html, "runs")[1] == "0" and "No runs in this window" in html


def test_providers_page_shows_each_model_over_time_with_markers(client, seeded, outage):
    login(client, seeded)
    r = client.get("/providers?range=24h")
    assert r.status_code == 200
    assert r.headers["link"] == '</api/providers?range=24h>; rel="alternate"; type="application/json"'
    html = r.text
    assert html.count('class="panel model-card"') == 2  # openai gpt-4o, anthropic claude-sonnet-4-5
    card = html[html.index('id="openai/gpt-4o"'):html.index('id="anthropic/claude-sonnet-4-5"')] \
        if html.index('id="openai/gpt-4o"') < html.index('id="anthropic/claude-sonnet-4-5"') else \
        html[html.index('id="openai/gpt-4o"'):]
    assert "42.9%" in card and "timeout 3" in card
    assert 'class="chart-marker chart-change"' in card and NEW_SERVED in card
    assert "p99" in card and "chart-lines" in card
    api = client.get("/api/providers?range=24h").json()
    gpt = next(m for m in api["health"]["models"] if m["model"] == "gpt-4o")
    assert (gpt["calls"], gpt["errors"]) == (7, 3)
    assert all("p99_ms" in p for p in gpt["series"])
    claude = next(m for m in api["health"]["models"] if m["model"] == "claude-sonnet-4-5")
    assert claude["calls"] == 2 and claude["errors"] == 0


def test_providers_filters_narrow_and_bad_ones_are_refused(client, seeded, outage):
    login(client, seeded)
    html = client.get("/providers?range=24h&provider=anthropic").text
    assert html.count('class="panel model-card"') == 1 and 'id="anthropic/claude-sonnet-4-5"' in html
    assert client.get("/providers?range=24h&agent=nobody").text.count('class="panel model-card"') == 0
    bad = client.get("/providers?range=24h&provider=open%00ai")
    assert 'role="alert"' in bad.text and "NUL" in bad.text
    bad = client.get("/providers?range=never")
    assert re.search(r'role="alert">[^<]*Range must be one of', bad.text)
    assert client.get("/api/providers?range=never").status_code == 422


def test_recent_failed_runs_name_the_failed_run_and_its_root_cause(client, seeded, outage):
    login(client, seeded)
    data = client.get("/api/overview?range=24h").json()
    [run] = data["recent_failed_runs"]
    assert run["trace_id"] == outage.failed[0].hex()  # not the recovered ones
    assert (run["error_class"], run["provider"], run["model"]) == ("timeout", "openai", "gpt-4o")
    html = client.get("/overview?range=24h").text
    assert f'class="run-link" href="/traces/{outage.failed[0].hex()}"' in html


def test_hostile_names_are_escaped_in_both_pages_and_charts(client, seeded, database_url, sessionmaker):
    from datetime import datetime, timedelta, timezone

    from tests.web.outage import attribute_all, ingest, ns_at, run_spans

    hostile = "<script>alert(1)</script>"
    start = ns_at(datetime.now(timezone.utc) - timedelta(hours=1))
    spans = []
    for i, outcome in enumerate(["failed", "recovered"]):
        spans += run_spans(start + i * 60_000_000_000, agent=hostile, outcome=outcome, model=hostile,
                           served=hostile + "2", provider='" onmouseover="x', name=hostile)[1]
    ingest(database_url, seeded.project.id, spans, service=hostile)
    attribute_all(sessionmaker)
    login(client, seeded)
    for path in ("/overview?range=24h", "/providers?range=24h"):
        html = client.get(path).text
        assert hostile not in html and '" onmouseover="x' not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("path", ["/overview?range=7d", "/providers?range=1h&provider=openai"])
def test_pages_need_a_login_and_the_apis_a_credential(client, seeded, path):
    from urllib.parse import quote

    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == f"/login?next={quote(path, safe='')}"
    api = path.replace("/overview", "/api/overview").replace("/providers", "/api/providers")
    assert client.get(api).status_code == 401


def test_another_projects_runs_are_not_counted(client, seeded, database_url, sessionmaker, session):
    from tests.api.seed import seed_project

    other = seed_project(session, "other")
    session.commit()
    seed_outage(database_url, sessionmaker, other.id)
    login(client, seeded)
    data = client.get("/api/overview?range=24h").json()
    assert data["totals"]["runs"] == 0 and data["models_in_trouble"] == [] and data["recent_failed_runs"] == []
    assert client.get("/api/providers?range=24h").json()["health"]["models"] == []
