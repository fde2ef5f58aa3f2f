"""Renderings of one report model: JSON (the manifest embedded), CSV (one block per table),
HTML (Jinja2, autoescaped) and PDF (WeasyPrint, the manifest attached as manifest.json)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from markupsafe import Markup
from jinja2 import Environment, FileSystemLoader, select_autoescape

from core.charts import Bar, bar_chart
from core.report_model import Report

FORMATS = ("pdf", "html", "json", "csv")
MEDIA_TYPES = {"pdf": "application/pdf", "html": "text/html; charset=utf-8", "json": "application/json",
               "csv": "text/csv; charset=utf-8"}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")

_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True))


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value.utcoffset().total_seconds() == 0 else value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


_env.filters["cell"] = _text


def to_json(report: Report) -> bytes:
    return json.dumps(report.to_dict(), indent=1, ensure_ascii=False).encode() + b"\n"


def _csv_safe(text: str) -> str:
    # A spreadsheet runs a cell that starts like a formula; captured content is attacker-controlled.
    return "'" + text if text.startswith(_FORMULA) and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def to_csv(report: Report) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["section", "field", "value"])
    for k, v in (("kind", report.kind), ("project", report.project), ("subject", report.subject),
                 ("since", _text(report.since)), ("until", _text(report.until)),
                 ("generated_at", _text(report.generated_at)), ("generator", report.generator),
                 ("content", report.content), ("retention", report.retention),
                 ("audit_trail_head", f"{report.audit_head[0]}:{report.audit_head[1]}"),
                 ("manifest_merkle_root", report.manifest.root), ("manifest_spans", len(report.manifest.entries))):
        w.writerow(["report", k, _csv_safe(str(v))])
    for k, v in report.facts:
        w.writerow(["facts", k, _csv_safe(v)])
    for table in report.tables:
        w.writerow([])
        w.writerow([table.key, *table.columns])
        for row in table.rows:
            w.writerow([table.key, *(_csv_safe(_text(c)) for c in row)])
    return out.getvalue().encode()


def _fill(svg) -> Markup:
    # WeasyPrint does not apply CSS `fill` to inline SVG: the colour goes on the bars themselves.
    return Markup(str(svg).replace('<rect class="chart-bar', '<rect fill="#3a5a8c" class="chart-bar')
                  .replace('<text class="chart-', '<text font-size="10" fill="#334" class="chart-'))


def _charts(report: Report) -> list:
    return [(c.title, _fill(bar_chart([Bar(label, value) for label, value in c.bars], label=c.title,
                                fmt=(lambda v: f"{v:.4f}") if c.unit == "USD" else (lambda v: f"{v:g}"))))
            for c in report.charts if c.bars]


def to_html(report: Report, *, for_pdf: bool = False) -> bytes:
    return _env.get_template("report.html").render(r=report, charts=_charts(report), for_pdf=for_pdf).encode()


def to_pdf(report: Report) -> bytes:
    from weasyprint import HTML, Attachment  # imported late: it loads pango, only reports need it

    # The project and subject ride along, so `reports verify` knows where to read the records back.
    manifest = json.dumps({"project": report.project, "kind": report.kind, "subject": report.subject,
                           **report.manifest.to_dict()}, separators=(",", ":")).encode()
    return HTML(string=to_html(report, for_pdf=True).decode(), base_url=str(Path(__file__).parent)).write_pdf(
        attachments=[Attachment(string=manifest, name="manifest.json",
                                description="SHA-256 digests of the span records this report covers")])


def render(report: Report, fmt: str) -> bytes:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    return {"pdf": to_pdf, "html": to_html, "json": to_json, "csv": to_csv}[fmt](report)
