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


def test_a_chart_with_links_is_a_group_not_an_image():
    # role="img" hides its children from assistive technology, links included (axe: nested-interactive).
    linked = bar_chart([Bar("a", 1, href="/traces?model=a")], label="Cost").text
    plain = bar_chart([Bar("a", 1)], label="Cost").text
    assert 'role="group"' in linked and 'role="img"' in plain
    series = time_series([Point(T0, 1, href="/traces")], label="Cost", since=T0, until=T0 + timedelta(hours=1)).text
    assert 'role="group"' in series
