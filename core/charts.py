"""Server-rendered SVG charts for the workbench pages and the PDF reports.

Pure: data in, SVG text out. Every label and title is escaped here (names of models,
agents and tools are attacker-controlled), and the result carries `__html__` so Jinja
inserts it as markup without a `|safe` anywhere. Colours come from CSS classes
(`chart-bar`, `chart-line`, `chart-error`...) so the page's light and dark themes apply;
every bar and point has a hover `<title>` and values are printed, so nothing depends on
colour alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Callable, Sequence


@dataclass(frozen=True)
class Svg:
    text: str

    def __html__(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    title: str = ""  # hover text; defaults to "label: value"
    href: str | None = None
    css: str = ""  # an extra class, e.g. "chart-error"


@dataclass(frozen=True)
class Point:
    time: datetime
    value: float
    title: str = ""
    href: str | None = None


@dataclass(frozen=True)
class Marker:
    """An event on a time axis (a served-model change, an anomaly): a vertical rule with a
    one-letter flag on top; `label` is its hover text, `flag` the letter printed."""
    time: datetime
    label: str
    flag: str = "!"
    css: str = ""  # e.g. "chart-change", "chart-anomaly"
    href: str | None = None


@dataclass(frozen=True)
class Line:
    """One series of a line chart; points with value None leave a gap."""
    name: str
    points: Sequence[tuple[datetime, float | None]]
    css: str = ""  # e.g. "chart-p50", "chart-p95", "chart-p99"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _role(*linked: object) -> str:
    """An image has no interactive children (ARIA): a chart with links is a labelled group."""
    return "group" if any(getattr(x, "href", None) for xs in linked for x in xs) else "img"


def _linked(inner: str, href: str | None) -> str:
    return f'<a href="{_e(href)}">{inner}</a>' if href else inner


def bar_chart(bars: Sequence[Bar], *, label: str, fmt: Callable[[float], str] = _num, width: int = 560,
              row: int = 22, label_width: int = 180) -> Svg:
    """Horizontal bars, one row each, value printed at the end of each bar."""
    height = max(1, len(bars)) * row + 4
    top = max((b.value for b in bars), default=0) or 1
    plot = width - label_width - 90
    parts = [f'<svg class="chart chart-bars" viewBox="0 0 {width} {height}" width="100%" role="{_role(bars)}" '
             f'aria-label="{_e(label)}" preserveAspectRatio="xMinYMin meet"><title>{_e(label)}</title>']
    for i, b in enumerate(bars):
        y = i * row + 2
        w = max(0.0, b.value) / top * plot
        name = b.label if len(b.label) <= 28 else b.label[:27] + "…"
        title = b.title or f"{b.label}: {fmt(b.value)}"
        bar = (f'<g class="chart-row"><title>{_e(title)}</title>'
               f'<text class="chart-label" x="{label_width - 6}" y="{y + row * 0.68:.1f}" text-anchor="end">{_e(name)}</text>'
               f'<rect class="chart-bar {_e(b.css)}" x="{label_width}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" rx="2"/>'
               f'<text class="chart-value" x="{label_width + w + 6:.1f}" y="{y + row * 0.68:.1f}">{_e(fmt(b.value))}</text></g>')
        parts.append(_linked(bar, b.href))
    parts.append("</svg>")
    return Svg("".join(parts))


def _markers(markers: Sequence[Marker], since: datetime, until: datetime, left: float, plot_w: float,
             top: float, bottom: float) -> list[str]:
    """Markers inside [since, until], as linked groups with a hover title; others are left out."""
    span = (until - since).total_seconds() or 1
    out = []
    for m in markers:
        if not since <= m.time <= until:
            continue
        x = left + (m.time - since).total_seconds() / span * plot_w
        flag = (m.flag or "!")[:2]
        mark = (f'<g class="chart-marker {_e(m.css)}"><title>{_e(m.label)}</title>'
                f'<line class="chart-marker-rule" x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}"/>'
                f'<rect class="chart-marker-flag" x="{x - 6:.1f}" y="{top - 12:.1f}" width="12" height="12" rx="2"/>'
                f'<text class="chart-marker-text" x="{x:.1f}" y="{top - 2.5:.1f}" text-anchor="middle">{_e(flag)}</text></g>')
        out.append(_linked(mark, m.href))
    return out


def _time_ticks(since: datetime, until: datetime, left: float, plot_w: float, y: float, ticks: int) -> list[str]:
    span = (until - since).total_seconds() or 1
    out = []
    for i in range(ticks + 1):
        t = since + (until - since) * (i / ticks)
        x = left + plot_w * i / ticks
        anchor = "start" if i == 0 else "end" if i == ticks else "middle"
        stamp = t.strftime("%m-%d %H:%M") if span > 86400 else t.strftime("%H:%M")
        out.append(f'<text class="chart-tick" x="{x:.1f}" y="{y}" text-anchor="{anchor}">{_e(stamp)}</text>')
    return out


def time_series(points: Sequence[Point], *, label: str, since: datetime, until: datetime,
                fmt: Callable[[float], str] = _num, width: int = 560, height: int = 160, css: str = "",
                ticks: int = 4, markers: Sequence[Marker] = (), bucket: timedelta | None = None,
                left: int = 44) -> Svg:
    """Vertical bars over time (one per bucket), with a y axis (0 and max), time ticks and
    optional event markers. Without `bucket`, the points are taken to cover every bucket of
    the window; pass it when empty buckets are left out (bars keep the bucket's width). `left` is
    the room kept for the y labels (wider for money)."""
    bottom = 20
    top_pad = 20 if markers else 8
    plot_w, plot_h = width - left - 6, height - bottom - top_pad
    span = (until - since).total_seconds() or 1
    top = max((p.value for p in points), default=0) or 1
    n = span / bucket.total_seconds() if bucket else max(1, len(points))
    bw = max(1.0, plot_w / max(1.0, n) - 1)
    parts = [f'<svg class="chart chart-series {_e(css)}" viewBox="0 0 {width} {height}" width="100%" role="{_role(points, markers)}" '
             f'aria-label="{_e(label)}" preserveAspectRatio="xMinYMin meet"><title>{_e(label)}</title>',
             f'<line class="chart-axis" x1="{left}" y1="{top_pad + plot_h}" x2="{width - 6}" y2="{top_pad + plot_h}"/>',
             f'<text class="chart-tick" x="{left - 4}" y="{top_pad + 8}" text-anchor="end">{_e(fmt(top))}</text>',
             f'<text class="chart-tick" x="{left - 4}" y="{top_pad + plot_h}" text-anchor="end">0</text>']
    for p in points:
        x = left + ((p.time - since).total_seconds() / span) * plot_w
        h = max(0.0, p.value) / top * plot_h
        title = p.title or f"{p.time:%Y-%m-%d %H:%M} UTC: {fmt(p.value)}"
        bar = (f'<rect class="chart-bar" x="{x:.1f}" y="{top_pad + plot_h - h:.1f}" width="{bw:.1f}" '
               f'height="{max(h, 0.5 if p.value else 0):.1f}"><title>{_e(title)}</title></rect>')
        parts.append(_linked(bar, p.href))
    parts.extend(_time_ticks(since, until, left, plot_w, height - 4, ticks))
    parts.extend(_markers(markers, since, until, left, plot_w, top_pad, top_pad + plot_h))
    parts.append("</svg>")
    return Svg("".join(parts))


def line_chart(lines: Sequence[Line], *, label: str, since: datetime, until: datetime,
               fmt: Callable[[float], str] = _num, width: int = 560, height: int = 160, ticks: int = 4,
               markers: Sequence[Marker] = ()) -> Svg:
    """Several series over time as lines with a point per value (each with a hover title), a
    legend naming each line, time ticks and optional event markers."""
    left, bottom, legend = 44, 20, 16
    top_pad = legend + (16 if markers else 6)
    plot_w, plot_h = width - left - 6, height - bottom - top_pad
    span = (until - since).total_seconds() or 1
    top = max((v for ln in lines for _, v in ln.points if v is not None), default=0) or 1
    parts = [f'<svg class="chart chart-lines" viewBox="0 0 {width} {height}" width="100%" role="{_role(markers)}" '
             f'aria-label="{_e(label)}" preserveAspectRatio="xMinYMin meet"><title>{_e(label)}</title>',
             f'<line class="chart-axis" x1="{left}" y1="{top_pad + plot_h}" x2="{width - 6}" y2="{top_pad + plot_h}"/>',
             f'<text class="chart-tick" x="{left - 4}" y="{top_pad + 8}" text-anchor="end">{_e(fmt(top))}</text>',
             f'<text class="chart-tick" x="{left - 4}" y="{top_pad + plot_h}" text-anchor="end">0</text>']

    def xy(t: datetime, v: float) -> tuple[float, float]:
        return (left + (t - since).total_seconds() / span * plot_w, top_pad + plot_h - max(0.0, v) / top * plot_h)

    for i, ln in enumerate(lines):
        lx = left + i * 90
        parts.append(f'<g class="chart-legend {_e(ln.css)}"><line class="chart-line" x1="{lx}" y1="8" x2="{lx + 14}" y2="8"/>'
                     f'<text class="chart-label" x="{lx + 18}" y="12">{_e(ln.name)}</text></g>')
        runs: list[list[tuple[float, float]]] = [[]]
        dots = []
        for t, v in sorted(ln.points, key=lambda p: p[0]):
            if v is None:
                runs.append([])
                continue
            x, y = xy(t, v)
            runs[-1].append((x, y))
            dots.append(f'<circle class="chart-dot" cx="{x:.1f}" cy="{y:.1f}" r="2.5">'
                        f'<title>{_e(f"{ln.name} {t:%Y-%m-%d %H:%M} UTC: {fmt(v)}")}</title></circle>')
        paths = "".join(f'<polyline class="chart-line" fill="none" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in run)}"/>'
                        for run in runs if run)
        parts.append(f'<g class="chart-series-line {_e(ln.css)}">{paths}{"".join(dots)}</g>')
    parts.extend(_time_ticks(since, until, left, plot_w, height - 4, ticks))
    parts.extend(_markers(markers, since, until, left, plot_w, top_pad, top_pad + plot_h))
    parts.append("</svg>")
    return Svg("".join(parts))


def sparkline(values: Sequence[float], *, label: str, width: int = 120, height: int = 28, css: str = "") -> Svg:
    """A small trend line for a table cell or a stat tile; the label is its accessible name."""
    top = max(values, default=0) or 1
    n = len(values)
    if n == 0:
        coords = ""
    elif n == 1:
        coords = f"0,{height - values[0] / top * (height - 2) - 1:.1f} {width},{height - values[0] / top * (height - 2) - 1:.1f}"
    else:
        coords = " ".join(f"{i * width / (n - 1):.1f},{height - v / top * (height - 2) - 1:.1f}"
                          for i, v in enumerate(values))
    return Svg(f'<svg class="chart sparkline {_e(css)}" viewBox="0 0 {width} {height}" width="{width}" '
               f'height="{height}" role="img" aria-label="{_e(label)}"><title>{_e(label)}</title>'
               f'<polyline class="chart-line" fill="none" points="{coords}"/></svg>')
