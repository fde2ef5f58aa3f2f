"""Renderings of one report model: JSON (the manifest embedded), CSV (one block per table, the
manifest last), HTML (Jinja2, autoescaped; the manifest in a JSON script element) and PDF
(WeasyPrint, the manifest attached: its header as manifest.json, its entries packed as
manifest.bin). Each writes into a file object and streams the manifest's entries, which may be
millions (reports/spool.py)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from markupsafe import Markup
from jinja2 import Environment, FileSystemLoader, select_autoescape

from core.charts import Bar, bar_chart
from core.report_manifest import Entry, PACKED
from core.report_model import Report
from reports.pdf_attach import Attached, append_attachments

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


# A PDF is read by people and WeasyPrint lays out about a page a second on a busy machine: long
# tables are cut shorter there (the other renderings and the PDF's attachment keep everything).
PDF_ROWS = 25
PDF_MANIFEST_ROWS = 20
_MARK = "\x00causeline-manifest-entries\x00"  # where a rendering streams the manifest's entries
MANIFEST_ELEMENT = "causeline-manifest"


def _entries_json(entries: Iterable[Entry], write: Callable[[str], object], chunk: int = 10_000) -> None:
    """The entries as a JSON array, one per line, written in chunks (the entries may be a spool)."""
    write("[")
    first, lines = True, []
    for e in entries:
        lines.append('["%s","%s","%s"]' % e)
        if len(lines) >= chunk:
            write(("\n" if first else ",\n") + ",\n".join(lines))
            first, lines = False, []
    if lines:
        write(("\n" if first else ",\n") + ",\n".join(lines))
    write("\n]")


def _around_entries(text: str, out: BinaryIO, entries: Iterable[Entry]) -> None:
    head, mark, tail = text.rpartition(json.dumps(_MARK))
    if not mark:
        raise AssertionError("rendering lost its manifest mark")
    out.write(head.encode())
    _entries_json(entries, lambda t: out.write(t.encode()))
    out.write(tail.encode())


def write_json(report: Report, out: BinaryIO) -> None:
    data = report.to_dict()
    data["manifest"] = {**data["manifest"], "spans": _MARK}  # the manifest is the last key: rpartition finds it
    _around_entries(json.dumps(data, indent=1, ensure_ascii=False) + "\n", out, report.manifest.entries)


def _csv_safe(text: str) -> str:
    # A spreadsheet runs a cell that starts like a formula; captured content is attacker-controlled.
    return "'" + text if text.startswith(_FORMULA) and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def write_csv(report: Report, out: BinaryIO) -> None:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    w = csv.writer(text)
    w.writerow(["section", "field", "value"])
    for k, v in (("kind", report.kind), ("project", report.project), ("subject", report.subject),
                 ("since", _text(report.since)), ("until", _text(report.until)),
                 ("generated_at", _text(report.generated_at)), ("generator", report.generator),
                 ("content", report.content), ("retention", report.retention),
                 ("audit_trail_head", f"{report.audit_head[0]}:{report.audit_head[1]}"),
                 ("manifest_algorithm", report.manifest.algorithm),
                 ("manifest_merkle_root", report.manifest.root), ("manifest_spans", report.manifest.count)):
        w.writerow(["report", k, _csv_safe(str(v))])
    for k, v in report.facts:
        w.writerow(["facts", k, _csv_safe(v)])
    for table in report.tables:
        w.writerow([])
        w.writerow([table.key, *table.columns])
        for row in table.rows:
            w.writerow([table.key, *(_csv_safe(_text(c)) for c in row)])
    w.writerow([])
    w.writerow(["manifest", "trace id", "span id", "sha256"])
    w.writerows(("manifest", e.trace_id, e.span_id, e.digest) for e in report.manifest.entries)
    text.flush()
    text.detach()  # leave `out` open for the caller


def _fill(svg) -> Markup:
    # WeasyPrint does not apply CSS `fill` to inline SVG: the colour goes on the bars themselves.
    return Markup(str(svg).replace('<rect class="chart-bar', '<rect fill="#3a5a8c" class="chart-bar')
                  .replace('<text class="chart-', '<text font-size="10" fill="#334" class="chart-'))


def _charts(report: Report) -> list:
    return [(c.title, _fill(bar_chart([Bar(label, value) for label, value in c.bars], label=c.title,
                                fmt=(lambda v: f"{v:.4f}") if c.unit == "USD" else (lambda v: f"{v:g}"))))
            for c in report.charts if c.bars]


PACKED_NAME = "manifest.bin"


def _attached_header(report: Report, spans) -> dict:
    # The project, subject and window ride along, so `reports verify` knows where to read the
    # records back.
    window = {"window": {"since": report.since.isoformat(), "until": report.until.isoformat()}} \
        if report.kind == "period" else {}
    return {"project": report.project, "kind": report.kind, "subject": report.subject, **window,
            **report.manifest.header(), "spans": spans}


def _packed(entries: Iterable[Entry]) -> BinaryIO:
    """The entries packed (what the PDF attaches): the spool's own file, or packed here for
    an incident report's few."""
    if hasattr(entries, "open"):
        return entries.open()
    return io.BytesIO(b"".join(bytes.fromhex(e.trace_id + e.span_id + e.digest) for e in entries))


def _html(report: Report, for_pdf: bool) -> str:
    header = json.dumps(_attached_header(report, _MARK)).replace("<", "\\u003c")  # nothing can close the element
    block = "" if for_pdf else Markup(f'<script type="application/json" id="{MANIFEST_ELEMENT}">{header}</script>')
    return _env.get_template("report.html").render(r=report, charts=_charts(report), for_pdf=for_pdf,
                                                   manifest_block=block, pdf_rows=PDF_ROWS,
                                                   manifest_rows=PDF_MANIFEST_ROWS if for_pdf else 200)


def write_html(report: Report, out: BinaryIO) -> None:
    # Entries are hex ids and digests: nothing in them can close the script element.
    _around_entries(_html(report, False), out, report.manifest.entries)


def write_pdf(report: Report, out: BinaryIO) -> None:
    from weasyprint import HTML  # imported late: it loads pango, only reports need it

    # WeasyPrint lays out the pages; the manifest is attached after them by an incremental
    # update that streams the entries from the spool (reports/pdf_attach.py): packed, 56 bytes a
    # span record, uncompressed (SHA-256 digests and random ids do not compress).
    header = json.dumps(_attached_header(report, {"packed": PACKED_NAME, "record_bytes": PACKED,
                                                  "record": "trace id (16 bytes), span id (8), SHA-256 digest (32)"}),
                        separators=(",", ":")).encode()
    pages = HTML(string=_html(report, True), base_url=str(Path(__file__).parent)).write_pdf()
    with _packed(report.manifest.entries) as packed:
        append_attachments(pages, out, [
            Attached("manifest.json", "The manifest's header: algorithm, count, Merkle root, project, subject",
                     io.BytesIO(header), len(header)),
            Attached(PACKED_NAME, "SHA-256 digests of the span records this report covers, packed", packed,
                     report.manifest.count * PACKED)])


def prepare(fmt: str) -> None:
    """Loads what rendering `fmt` takes (WeasyPrint and pango for a PDF, about a second, and
    pypdf), so a caller can do it while it waits for something else."""
    if fmt == "pdf":
        import pypdf  # noqa: F401
        import weasyprint  # noqa: F401


WRITERS = {"pdf": write_pdf, "html": write_html, "json": write_json, "csv": write_csv}


def write(report: Report, fmt: str, out: BinaryIO) -> None:
    """Renders the report into `out` (a binary file object), streaming the manifest's entries."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    WRITERS[fmt](report, out)
