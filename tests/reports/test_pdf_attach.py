"""Files attached to a finished PDF by an incremental update, streamed from file objects."""

from __future__ import annotations

import io
import os
import shutil
import subprocess

import pytest
from pypdf import PdfReader, PdfWriter

from reports.pdf_attach import Attached, append_attachments


def _blank(named_dests: bool = False) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    if named_dests:
        writer.add_named_destination("top", 0)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _weasyprint() -> bytes:
    from weasyprint import HTML

    return HTML(string="<h1 id=top>Report</h1><a href='#top'>up</a>").write_pdf()  # compressed: xref streams


@pytest.mark.parametrize("make", [_blank, lambda: _blank(named_dests=True), _weasyprint])
def test_attachments_appended_after_the_document_read_back(make, tmp_path):
    pdf = make()
    packed = os.urandom(56 * 1000 + 3)
    out = io.BytesIO()
    append_attachments(pdf, out, [
        Attached("manifest.json", "header (é, <, ))", io.BytesIO(b'{"a": 1}'), 8),
        Attached("manifest.bin", "entries", io.BytesIO(packed), len(packed))])
    body = out.getvalue()
    assert body.startswith(pdf.rstrip(b"\n"))  # an update: the document's bytes stay as they were
    reader = PdfReader(io.BytesIO(body), strict=True)
    assert reader.attachments == {"manifest.bin": [packed], "manifest.json": [b'{"a": 1}']}
    assert len(reader.pages) == len(PdfReader(io.BytesIO(pdf)).pages)
    before = PdfReader(io.BytesIO(pdf)).root_object.get("/Names")
    if before is not None:  # what the document named (destinations) is still named
        assert set(before) <= set(reader.root_object["/Names"])
    assert reader.metadata == PdfReader(io.BytesIO(pdf)).metadata
    if shutil.which("pdfdetach"):
        path = tmp_path / "a.pdf"
        path.write_bytes(body)
        listed = subprocess.run(["pdfdetach", "-list", str(path)], capture_output=True, text=True, check=True)
        assert "manifest.bin" in listed.stdout and "manifest.json" in listed.stdout
        subprocess.run(["pdfdetach", "-save", "1", "-o", str(tmp_path / "m.bin"), str(path)], check=True)
        assert (tmp_path / "m.bin").read_bytes() == packed


def test_a_source_shorter_than_declared_is_refused():
    with pytest.raises(ValueError, match="declared"):
        append_attachments(_blank(), io.BytesIO(), [Attached("x.bin", "x", io.BytesIO(b"abc"), 4)])
