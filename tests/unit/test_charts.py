"""core/charts.py: escaped labels, hover titles, printed values, bounded geometry."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.charts import Bar, Point, bar_chart, sparkline, time_series

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("hostile", ['<script>alert(1)</script>', '" onmouseover="x', "javascript:alert(1)"])
def test_labels_titles_and_links_are_escaped(hostile):
    svg = bar_chart([Bar(hostile, 3, href=hostile)], label=hostile).text
    assert "<script>" not in svg and '" onmouseover="x' not in svg
    assert svg.count("<title>") == 2  # the chart's and the bar's


def test_bars_print_their_values_and_scale_to_the_largest():
    svg = bar_chart([Bar("gpt-4o", 10), Bar("mini", 5)], label="Cost", fmt=lambda v: f"${v:.2f}").text
    assert "$10.00" in svg and "$5.00" in svg
    widths = [float(w) for w in __import__("re").findall(r'class="chart-bar [^"]*" x="\d+" y="[\d.]+" width="([\d.]+)"', svg)]
    assert widths[0] == pytest.approx(2 * widths[1])


@pytest.mark.parametrize("values", [[], [0], [0, 0, 0], [1, 5, 2]])
def test_sparkline_never_divides_by_zero(values):
    assert "<polyline" in sparkline(values, label="runs").text


def test_series_places_points_in_their_bucket_and_labels_the_axis():
    points = [Point(T0 + timedelta(hours=h), float(h)) for h in range(24)]
    svg = time_series(points, label="Runs", since=T0, until=T0 + timedelta(hours=24)).text
    assert svg.count("<rect") == 24 and "23" in svg and "Runs" in svg
    assert "2026-11-01 05:00 UTC: 5" in svg  # hover title


# Markers: served-model changes and anomalies on a model's timeline.
from core.charts import Line, Marker, line_chart  # noqa: E402

DAY = (T0, T0 + timedelta(hours=24))


@pytest.mark.parametrize("at, drawn", [
    (T0 + timedelta(hours=6), True),
    (T0, True),  # the edges are inside
    (T0 + timedelta(hours=24), True),
    (T0 - timedelta(minutes=1), False),  # outside the window: left out, not clamped to an edge
    (T0 + timedelta(hours=25), False),
])
def test_markers_are_drawn_only_inside_the_window(at, drawn):
    svg = time_series([], label="Calls", since=DAY[0], until=DAY[1], markers=[Marker(at, "change", "M")]).text
    assert ('class="chart-marker ' in svg) is drawn


def test_marker_sits_at_its_time_with_its_title_flag_class_and_link():
    width = 560
    svg = time_series([], label="Calls", since=DAY[0], until=DAY[1], width=width, markers=[
        Marker(T0 + timedelta(hours=12), "served model changed to gpt-4o-2", "M", css="chart-change",
               href="/providers?model=gpt-4o")]).text
    left, plot_w = 44, width - 44 - 6
    assert f'x1="{left + plot_w / 2:.1f}"' in svg
    assert '<g class="chart-marker chart-change"><title>served model changed to gpt-4o-2</title>' in svg
    assert '<a href="/providers?model=gpt-4o">' in svg and ">M</text>" in svg


@pytest.mark.parametrize("hostile", ['<script>alert(1)</script>', '" onmouseover="x'])
def test_marker_and_line_text_is_escaped(hostile):
    at = T0 + timedelta(hours=1)
    svg = line_chart([Line(hostile, [(at, 1.0)], css=hostile)], label=hostile, since=DAY[0], until=DAY[1],
                     markers=[Marker(at, hostile, hostile, css=hostile, href=hostile)]).text
    assert "<script>" not in svg and '" onmouseover="x' not in svg


def test_line_chart_draws_one_line_per_series_with_gaps_and_titles():
    pts = [(T0 + timedelta(hours=h), v) for h, v in ((0, 10.0), (1, None), (2, 30.0), (3, 20.0))]
    svg = line_chart([Line("p50", pts, css="chart-p50"), Line("p95", [(T0, 5.0)], css="chart-p95")],
                     label="Latency", since=DAY[0], until=DAY[1], fmt=lambda v: f"{v:.0f} ms").text
    # p50 has a gap at hour 1: two polylines (one point, then two); p95 one; plus two legend lines.
    assert svg.count("<polyline") == 3
    assert svg.count("<circle") == 4
    assert "p50 2026-11-01 02:00 UTC: 30 ms" in svg and ">30 ms</text>" in svg  # hover title, y max printed
    assert line_chart([], label="empty", since=DAY[0], until=DAY[1]).text.count("<polyline") == 0


@pytest.mark.parametrize("bucket, width", [(None, 560 - 44 - 6 - 1), (timedelta(hours=1), (560 - 44 - 6) / 24 - 1)])
def test_a_sparse_series_keeps_the_bucket_width(bucket, width):
    # One point in a 24-hour window: without `bucket` it is taken as the only bucket.
    svg = time_series([Point(T0 + timedelta(hours=3), 5)], label="Calls", since=DAY[0], until=DAY[1],
                      bucket=bucket).text
    assert f'width="{width:.1f}"' in svg


@pytest.mark.parametrize("href, role", [(None, "img"), ("/traces", "group")])
def test_a_chart_with_links_is_a_group_not_an_image(href, role):
    # ARIA: an img has no interactive children (axe: nested-interactive).
    assert f'role="{role}"' in bar_chart([Bar("a", 1, href=href)], label="x").text
    assert f'role="{role}"' in time_series([Point(T0, 1, href=href)], label="x", since=DAY[0], until=DAY[1]).text
    marked = line_chart([], label="x", since=DAY[0], until=DAY[1], markers=[Marker(T0, "m", href=href)]).text
    assert f'role="{role}"' in marked

def test_a_chart_with_links_is_a_group_not_an_image():
    # role="img" hides its children from assistive technology, links included (axe: nested-interactive).
    linked = bar_chart([Bar("a", 1, href="/traces?model=a")], label="Cost").text
    plain = bar_chart([Bar("a", 1)], label="Cost").text
    assert 'role="group"' in linked and 'role="img"' in plain
    series = time_series([Point(T0, 1, href="/traces")], label="Cost", since=T0, until=T0 + timedelta(hours=1)).text
    assert 'role="group"' in series
