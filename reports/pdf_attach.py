"""Files attached to a finished PDF by an incremental update (ISO 32000-1, 7.5.6), each
streamed from a file object.

WeasyPrint reads an attachment whole and then copies it into the document it writes: a period
report's packed manifest (56 bytes a span record, tens of MB for a busy month) was held in memory
several times over. Here the document WeasyPrint made (a few hundred kB) is copied as it is,
then the update appends, after it, each file's embedded-file stream (copied from its file object
in blocks), its file specification, a new version of the catalog naming them (/Names
/EmbeddedFiles) and a cross-reference stream for these objects that points back to the
document's own (/Prev). pypdf reads the document's catalog and trailer and writes the PDF
objects of the update; the framing around them is written here.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from typing import BinaryIO, Sequence

COPY_BLOCK = 1 << 20


@dataclass(frozen=True)
class Attached:
    name: str
    description: str
    source: BinaryIO  # read from its current position to its end
    size: int  # its bytes (the stream's /Length)


class _Counting:
    """Writes through, counting bytes: the offsets the cross-reference stream records."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.at = 0

    def write(self, data: bytes) -> int:
        self._out.write(data)
        self.at += len(data)
        return len(data)


def _startxref(pdf: bytes) -> int:
    """Where the document's last cross-reference section starts (the number after its final
    `startxref` keyword)."""
    at = pdf.rfind(b"startxref")
    if at < 0:
        raise ValueError("not a PDF: no startxref")
    return int(pdf[at + len(b"startxref"):].split()[0])


def append_attachments(pdf: bytes, out: BinaryIO, files: Sequence[Attached]) -> None:
    """Writes `pdf` and then an update attaching `files` (names sorted, as a name tree wants)
    to `out`. The document must not have attached files of its own (their names would be
    replaced)."""
    from pypdf import PdfReader
    from pypdf.generic import (
        ArrayObject, DictionaryObject, IndirectObject, NameObject, NumberObject, create_string_object,
    )

    reader = PdfReader(io.BytesIO(pdf))
    trailer = reader.trailer
    root = trailer.raw_get("/Root")
    catalog = DictionaryObject(root.get_object())  # a new version of the same object
    prev, number = _startxref(pdf), int(trailer["/Size"])
    sink = _Counting(out)
    sink.write(pdf if pdf.endswith(b"\n") else pdf + b"\n")
    offsets: dict[int, int] = {}

    def obj(value) -> int:
        nonlocal number
        offsets[number] = sink.at
        sink.write(f"{number} 0 obj\n".encode())
        value.write_to_stream(sink)
        sink.write(b"\nendobj\n")
        number += 1
        return number - 1

    names = ArrayObject()
    for f in sorted(files, key=lambda f: f.name):
        offsets[number] = sink.at
        sink.write(f"{number} 0 obj\n<< /Type /EmbeddedFile /Length {f.size} /Params << /Size {f.size} >> >>\n"
                   "stream\n".encode())
        before = sink.at
        shutil.copyfileobj(f.source, sink, COPY_BLOCK)
        if sink.at - before != f.size:
            raise ValueError(f"attachment {f.name}: {sink.at - before} bytes read, {f.size} declared")
        sink.write(b"\nendstream\nendobj\n")
        number += 1
        stream = IndirectObject(number - 1, 0, reader)
        spec = obj(DictionaryObject({
            NameObject("/Type"): NameObject("/Filespec"), NameObject("/F"): create_string_object(f.name),
            NameObject("/UF"): create_string_object(f.name), NameObject("/Desc"): create_string_object(f.description),
            NameObject("/EF"): DictionaryObject({NameObject("/F"): stream, NameObject("/UF"): stream})}))
        names.extend([create_string_object(f.name), IndirectObject(spec, 0, reader)])

    tree = DictionaryObject(catalog["/Names"]) if "/Names" in catalog else DictionaryObject()
    tree[NameObject("/EmbeddedFiles")] = DictionaryObject({NameObject("/Names"): names})
    catalog[NameObject("/Names")] = tree
    offsets[root.idnum] = sink.at
    sink.write(f"{root.idnum} {root.generation} obj\n".encode())
    catalog.write_to_stream(sink)
    sink.write(b"\nendobj\n")

    # The cross-reference stream (7.5.8): a row per object of the update, type 1 (in use at an
    # offset), in runs of consecutive numbers (/Index).
    xref = number
    offsets[xref] = sink.at
    rows, index, run = [], [], None
    for n in sorted(offsets):
        generation = root.generation if n == root.idnum else 0
        rows.append(b"\x01" + offsets[n].to_bytes(8, "big") + generation.to_bytes(2, "big"))
        if run is not None and n == run[0] + run[1]:
            run[1] += 1
        else:
            run = [n, 1]
            index.append(run)
    data = b"".join(rows)
    head = DictionaryObject({
        NameObject("/Type"): NameObject("/XRef"), NameObject("/Size"): NumberObject(xref + 1),
        NameObject("/Root"): root, NameObject("/Prev"): NumberObject(prev),
        NameObject("/W"): ArrayObject([NumberObject(1), NumberObject(8), NumberObject(2)]),
        NameObject("/Index"): ArrayObject([NumberObject(v) for r in index for v in r]),
        NameObject("/Length"): NumberObject(len(data))})
    for key in ("/Info", "/ID"):
        if key in trailer:
            head[NameObject(key)] = trailer.raw_get(key)
    sink.write(f"{xref} 0 obj\n".encode())
    head.write_to_stream(sink)
    sink.write(b"\nstream\n" + data + b"\nendstream\nendobj\n")
    sink.write(f"startxref\n{offsets[xref]}\n%%EOF\n".encode())
