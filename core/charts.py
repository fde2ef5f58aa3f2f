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
from datetime import datetime
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


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _linked(inner: str, href: str | None) -> str:
    return f'<a href="{_e(href)}">{inner}</a>' if href else inner


def _role(items: Sequence[Bar] | Sequence[Point]) -> str:
    # An "img" is one picture to assistive technology: links inside it would be unreachable
    # (axe: nested-interactive). A chart whose bars link is a group of links instead.
    return "group" if any(i.href for i in items) else "img"


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


def time_series(points: Sequence[Point], *, label: str, since: datetime, until: datetime,
                fmt: Callable[[float], str] = _num, width: int = 560, height: int = 160, css: str = "",
                ticks: int = 4, left: int = 44) -> Svg:
    """Vertical bars over time (one per bucket), with a y axis (0 and max) and time ticks;
    `left` is the room kept for the y labels (wider for money)."""
    bottom, top_pad = 20, 8
    plot_w, plot_h = width - left - 6, height - bottom - top_pad
    span = (until - since).total_seconds() or 1
    top = max((p.value for p in points), default=0) or 1
    n = max(1, len(points))
    bw = max(1.0, plot_w / n - 1)
    parts = [f'<svg class="chart chart-series {_e(css)}" viewBox="0 0 {width} {height}" width="100%" '
             f'role="{_role(points)}" '
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
    for i in range(ticks + 1):
        t = since + (until - since) * (i / ticks)
        x = left + plot_w * i / ticks
        anchor = "start" if i == 0 else "end" if i == ticks else "middle"
        stamp = t.strftime("%m-%d %H:%M") if span > 86400 else t.strftime("%H:%M")
        parts.append(f'<text class="chart-tick" x="{x:.1f}" y="{height - 4}" text-anchor="{anchor}">{_e(stamp)}</text>')
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
