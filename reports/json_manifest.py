"""A JSON report's manifest read back in one streamed pass (ijson), for `reports verify`: the
header into a dict, the entries packed into a spool on disk (reports/spool.py), so a month's
report (a million entries, ~120 MB of JSON) is checked in the memory of one read buffer, not
parsed whole into millions of Python objects.

The parse is a real JSON parse (ijson's C backend), not a reading of the lines the renderer
writes: a report re-indented by hand reads the same. An entry that is not three hex strings of
OTLP's sizes cannot be packed; the caller then falls back to parsing the file whole, so an
edited manifest gets the verdict it always got.
"""

from __future__ import annotations

from typing import BinaryIO

import ijson

from core.report_manifest import DIGEST_BYTES, SPAN_BYTES, TRACE_BYTES
from reports.spool import EntrySpool

READ_BYTES = 1 << 20
PACK_ENTRIES = 8192  # entries turned from hex into bytes at a time
_SIZES = (2 * TRACE_BYTES, 2 * SPAN_BYTES, 2 * DIGEST_BYTES)
# Where the header's values sit (the JSON rendering's keys, core/report_model.py to_dict).
_HEADER = {"project": ("project",), "kind": ("kind",), "window.since": ("window", "since"),
           "window.until": ("window", "until"), "manifest.algorithm": ("algorithm",),
           "manifest.count": ("count",), "manifest.merkle_root": ("merkle_root",)}
_ENTRY, _FIELD = "manifest.spans.item", "manifest.spans.item.item"


class Unpackable(ValueError):
    """An entry the packed form cannot hold (not three hex strings of their sizes)."""


def read_json_manifest(file: BinaryIO, spool: EntrySpool) -> dict:
    """The header the JSON rendering carries (project, kind, window, algorithm, count, root)
    and "spans": `spool`, holding the entries packed in file order. Raises ijson.JSONError
    (or a ValueError: bytes that are not UTF-8) for a file that is not JSON, Unpackable for an entry the packed form
    cannot hold, KeyError when there is no manifest."""
    data: dict = {}
    fields: list[str] = []
    hex_chunk: list[str] = []
    seen_spans = False

    def flush() -> None:
        try:
            spool.write(bytes.fromhex("".join(hex_chunk)))
        except ValueError:
            raise Unpackable("a manifest entry is not hex") from None
        hex_chunk.clear()

    for prefix, event, value in ijson.parse(file, buf_size=READ_BYTES, use_float=True):
        if prefix == _FIELD:
            if event != "string":
                raise Unpackable("a manifest entry holds something other than strings")
            fields.append(value)
        elif prefix == _ENTRY:
            if event == "start_array":
                fields = []
            elif event == "end_array":
                if len(fields) != 3 or tuple(map(len, fields)) != _SIZES:
                    raise Unpackable("a manifest entry is not a trace id, span id and digest of their sizes")
                hex_chunk.append("".join(fields))
                if len(hex_chunk) >= PACK_ENTRIES:
                    flush()
            else:
                raise Unpackable("a manifest entry is not a list")
        elif prefix == "manifest.spans":
            seen_spans = True
        elif prefix in _HEADER and event in ("string", "number", "boolean", "null"):
            *outer, key = _HEADER[prefix]
            target = data
            for name in outer:
                target = target.setdefault(name, {})
            target[key] = value
    if hex_chunk:
        flush()
    if not seen_spans or "algorithm" not in data:
        raise KeyError("manifest")
    if isinstance(data.get("count"), float):
        data["count"] = int(data["count"])
    return {**data, "spans": spool}

