"""The Failures and Costs pages over runs written through the real write path: real numbers,
the JSON twin (Link header) equal to what the page shows, shareable URLs, errors in the page."""

from __future__ import annotations

import re
from decimal import Decimal
from html import unescape

import pytest

from tests.web.conftest import login
from tests.web.workbench_seed import XSS_AGENT, XSS_MODEL, XSS_TOOL, seed_hostile, seed_workbench, window
from web.render import fmt_money


@pytest.fixture
def workbench(client, seeded, database_url, sessionmaker):
    runs = seed_workbench(database_url, sessionmaker, seeded.project.id)
    login(client, seeded)
    return runs


def twin_of(response) -> str:
    match = re.fullmatch(r'<([^>]+)>; rel="alternate"; type="application/json"', response.headers["link"])
    assert match, response.headers["link"]
    return match.group(1)


def table_rows(html: str, table_class: str) -> list[list[str]]:
    """Cell texts of each body row of <table class="grid {table_class}">."""
    table = re.search(rf'<table class="grid {table_class}">(.*?)</table>', html, re.S).group(1)
    body = table.split("<tbody>", 1)[1]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        rows.append([" ".join(unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in cells])
    return rows


def hrefs(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="([^"]+)"', html)]


# --- Costs ---------------------------------------------------------------------------------

def test_costs_page_shows_the_twins_numbers_one_row_per_requested_model(client, workbench):
    page = client.get("/costs", params=window(group_by="model"))
    assert page.status_code == 200
    href = twin_of(page)
    assert href == ("/api/costs?since=2026-11-22T10%3A00%3A00Z&until=2026-11-22T16%3A00%3A00Z"
                    "&group_by=model&limit=50")
    assert f'<a class="json" href="{href.replace("&", "&amp;")}"' in page.text
    body = client.get(href).json()  # the same login reads the API
    rows = table_rows(page.text, "costs")
    # One row for gpt-4o: the call that timed out before any model answered and the one served
    # by gpt-4o-2024-08-06; the unpriced model apart, never $0.
    assert [r[0] for r in rows] == ["gpt-4o served by gpt-4o-2024-08-06 · 1", "my-private-model"]
    assert rows[0][1:8] == ["2", "1", "0", "1,300", "200", fmt_money(Decimal(body["groups"][0]["cost_usd"])),
                            "100.0%"]
    assert rows[1][1:8] == ["1", "0", "1", "50", "5", "unpriced", "—"]
    assert [(g["key"], g["calls"], g["errors"], g["unpriced_calls"]) for g in body["groups"]] == [
        ("gpt-4o", 2, 1, 0), ("my-private-model", 1, 0, 1)]
    assert Decimal(body["groups"][0]["cost_usd"]) > 0 and "$0<" not in page.text
    stats = dict(re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", page.text))
    assert stats["Model calls"] == "3" and stats["Unpriced calls"].startswith("1 ")
    assert stats["Cost (priced calls)"] == fmt_money(Decimal(body["total"]["cost_usd"]))
    assert "Not in the chart (no price)" in page.text and "my-private-model · 1 call<" in page.text
    # Each bar and row leads to its runs, in the same window.
    links = hrefs(page.text)
    assert "/traces?since=2026-11-22T10%3A00%3A00Z&until=2026-11-22T16%3A00%3A00Z&model=gpt-4o" in links
    # The series: one slot per hour of the window, linked where there were calls.
    assert body["series_bucket"] == "hour" and [g["key"][11:16] for g in body["series"]] == ["11:00", "12:00", "15:00"]
    assert page.text.count('class="chart-bar"') == 6
    assert "/traces?since=2026-11-22T12%3A00%3A00Z&until=2026-11-22T13%3A00%3A00Z" in links


@pytest.mark.parametrize("group_by,expected", [
    ("agent", [("support", "2"), ("billing", "1")]),
    ("service", [("svc-a", "2"), ("svc-b", "1")]),
    ("tool", [("get_invoice", "1")]),
    ("provider", [("openai", "2"), ("acme", "1")]),
    ("hour", [("2026-11-22 11:00", "1"), ("2026-11-22 12:00", "1"), ("2026-11-22 15:00", "1")]),
])
def test_costs_groupings(client, workbench, group_by, expected):
    page = client.get("/costs", params=window(group_by=group_by))
    rows = table_rows(page.text, "costs")
    assert [(r[0], r[1]) for r in rows] == expected
    body = client.get(twin_of(page)).json()
    assert [g["calls"] for g in body["groups"]] == [int(c) for _, c in expected]


def test_costs_window_is_exact_and_the_url_is_the_state(client, workbench):
    # 11:30 .. 14:00 holds only the 12:00 call; rounded to the hour it would also take the 11:00 timeout.
    params = {"since": "2026-11-22T11:30", "until": "2026-11-22T14:00", "group_by": "model", "agent": "support"}
    page = client.get("/costs", params=params)
    assert [r[:3] for r in table_rows(page.text, "costs")] == [["gpt-4o served by gpt-4o-2024-08-06 · 1", "1", "0"]]
    assert twin_of(page) == ("/api/costs?since=2026-11-22T11%3A30%3A00Z&until=2026-11-22T14%3A00%3A00Z"
                             "&group_by=model&limit=50&agent=support")
    assert 'value="2026-11-22T11:30"' in page.text and 'name="agent" value="support"' in page.text
    # Tabs keep the window and the filters.
    assert "/costs?since=2026-11-22T11%3A30&until=2026-11-22T14%3A00&agent=support&group_by=tool" in hrefs(page.text)


@pytest.mark.parametrize("params,message", [
    ({"model": "gpt\x00"}, "“Model” must not contain NUL characters."),
    ({"group_by": "planet"}, "Group by must be one of"),
    ({"group_by": "tool", "model": "gpt-4o"}, "The model and provider filters do not apply to tool calls."),
])
def test_costs_invalid_filter_shows_the_error_not_the_unfiltered_data(client, workbench, params, message):
    page = client.get("/costs", params=window(**params))
    assert page.status_code == 200
    assert re.search(r'<div class="alert error" role="alert">([^<]*)</div>', page.text).group(1).startswith(
        message.replace("“", "&#8220;").replace("”", "&#8221;")) or message in unescape(page.text)
    assert "<table" not in page.text and "link" not in page.headers


def test_costs_bad_window_says_which_window_it_shows(client, workbench):
    page = client.get("/costs", params={"since": "yesterday-ish"})
    assert 'role="alert"' in page.text and "is not a date/time" in unescape(page.text)
    assert "Showing the default window instead:" in page.text
    assert "since=yesterday" not in page.text  # links do not carry the broken window


def test_costs_empty_state(client, workbench):
    page = client.get("/costs", params={"since": "2026-10-01T00:00", "until": "2026-10-02T00:00"})
    assert "No model calls in this window." in page.text and "<table" not in page.text
    assert client.get(twin_of(page)).json()["groups"] == []


# --- Failures ------------------------------------------------------------------------------

def test_failures_page_groups_with_trend_cost_and_drill_down(client, workbench):
    page = client.get("/failures", params=window())
    assert page.status_code == 200
    href = twin_of(page)
    assert href == ("/api/failures?since=2026-11-22T10%3A00%3A00Z&until=2026-11-22T16%3A00%3A00Z"
                    "&group_by=error_class&limit=50")
    body = client.get(href).json()
    t = body["totals"]
    assert (t["runs"], t["failed_runs"], t["failures"]) == (3, 2, 2)
    rows = table_rows(page.text, "failures")
    groups = body["groups"]["error_class"]
    assert [r[0].removesuffix(" runs →") for r in rows] == [g["key"] for g in groups] == ["timeout", "tool_error"]
    for row, g in zip(rows, groups):  # the page shows the twin's numbers
        assert row[1:5] == [str(g["failures"]), str(g["recovered"]), f"{g['failed_runs']} of {g['runs']}",
                            f"{g['share_of_failed_runs'] * 100:.1f}%"]
        assert row[8].startswith(fmt_money(Decimal(g["cost_burned_usd"])))
        assert row[9] == fmt_money(Decimal(g["failed_runs_cost_usd"]))
    # Trend: 24 slices of 15 minutes; the timeout at 11:00 is slice 4, the tool error at 15:00 slice 20.
    trends = re.findall(r'data-trend="([^"]+)"', page.text)
    assert [list(map(int, t.split())) for t in trends] == [g["trend"] for g in groups]
    assert groups[0]["trend"] == [0] * 4 + [1] + [0] * 19 and groups[1]["trend"] == [0] * 20 + [1] + [0] * 3
    assert "(per 15 min)" in page.text
    assert rows[0][6] == "2026-11-22 11:00:00 2026-11-22 11:00:00"
    assert Decimal(groups[0]["cost_burned_usd"]) > 0 and rows[0][7] == "300"
    links = hrefs(page.text)
    assert f"/traces/{workbench.failed_run}" in links and f"/traces/{workbench.billing_run}" in links
    assert "/traces?since=2026-11-22T10%3A00%3A00Z&until=2026-11-22T16%3A00%3A00Z&status=error" in links


def test_failures_tabs_filters_and_runs_links(client, workbench):
    page = client.get("/failures", params=window(group_by="model"))
    assert [r[0] for r in table_rows(page.text, "failures")] == ["(not recorded)", "gpt-4o runs →"]
    assert "/traces?since=2026-11-22T10%3A00%3A00Z&until=2026-11-22T16%3A00%3A00Z&model=gpt-4o" in hrefs(page.text)
    tools = client.get("/failures", params=window(group_by="tool"))
    assert [r[0] for r in table_rows(tools.text, "failures")] == ["(not recorded)", "get_invoice"]
    steps = client.get("/failures", params=window(group_by="step", service="svc-b"))
    assert twin_of(steps).endswith("&group_by=step&limit=50&service=svc-b")
    assert [r[0] for r in table_rows(steps.text, "failures")] == ["execute_tool get_invoice"]
    assert 'aria-current="page">Workflow step</a>' in steps.text


def test_failures_invalid_filter_and_empty_state(client, workbench):
    bad = client.get("/failures", params=window(agent="a\x00"))
    assert 'role="alert"' in bad.text and "<table" not in bad.text and "link" not in bad.headers
    unknown = client.get("/failures", params=window(group_by="weather"))
    assert "Group by must be one of" in unknown.text and "<table" not in unknown.text
    long = client.get("/failures", params={"since": "2026-01-01", "until": "2026-11-01"})
    assert "The window is limited to 90 days." in long.text and "Showing the default window instead" in long.text
    empty = client.get("/failures", params={"since": "2026-10-01T00:00", "until": "2026-10-02T00:00"})
    assert "No failures in this window." in empty.text and "<table" not in empty.text


def test_pages_need_a_login(client, seeded):
    for path in ("/costs", "/failures"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")


def test_hostile_names_are_escaped(client, seeded, database_url, sessionmaker):
    seed_hostile(database_url, sessionmaker, seeded.project.id)
    login(client, seeded)
    pages = [client.get("/costs", params=window(group_by=g)).text for g in ("model", "agent", "tool", "service")]
    pages += [client.get("/failures", params=window(group_by=g)).text for g in ("model", "agent", "tool", "step")]
    joined = "\n".join(pages)
    for payload in (XSS_MODEL, XSS_AGENT, "<svg onload=alert('svc')>"):
        assert payload not in joined
    assert "&lt;script&gt;alert(&#39;model&#39;)&lt;/script&gt;" in joined
    assert "&lt;img src=x onerror=alert(&#39;agent&#39;)&gt;" in joined
    assert XSS_TOOL in unescape(joined)  # shown as text ...
    assert not re.search(r'href="\s*javascript:', joined, re.I)  # ... never as a link target


def test_runs_links_carry_the_provider_filter_the_trace_list_now_honours(client, workbench):
    page = client.get("/costs", params=window(group_by="model", provider="openai"))
    assert [r[:2] for r in table_rows(page.text, "costs")] == [["gpt-4o served by gpt-4o-2024-08-06 · 1", "2"]]
    links = [h for h in hrefs(page.text) if h.startswith("/traces?")]
    assert links and all("provider=openai" in h for h in links)
    # Every link carries the page's filters, the series' bars too.
    agent = client.get("/costs", params=window(group_by="model", agent="support"))
    links = [h for h in hrefs(agent.text) if h.startswith("/traces?")]
    assert links and all("agent=support" in h for h in links)
    assert "/traces?since=2026-11-22T12%3A00%3A00Z&until=2026-11-22T13%3A00%3A00Z&agent=support" in links
    failures = client.get("/failures", params=window(group_by="model", provider="openai"))
    assert [r[0] for r in table_rows(failures.text, "failures")] == ["gpt-4o runs →"]
    links = [h for h in hrefs(failures.text) if h.startswith("/traces?")]
    assert links and all("provider=openai" in h for h in links)
    # A group by error class leads to the runs that failed with it, and they are listed.
    by_class = client.get("/failures", params=window(group_by="error_class"))
    runs = [h for h in hrefs(by_class.text) if h.startswith("/traces?") and "error_class=" in h]
    assert runs
    listed = client.get(runs[0].replace("&amp;", "&"))
    assert listed.status_code == 200 and 'class="status-error"' in listed.text
