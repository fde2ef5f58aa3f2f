"""Sealing a rendered report and checking it later.

The seal is a detached file beside the report (FILE.sig.json): the SHA-256 of the report's
bytes, the manifest's header (algorithm, count, Merkle root) and optionally an Ed25519
signature over both by the operator's key (setting CAUSELINE_REPORT_SIGNING_KEY). Detached,
because a digest of a file cannot live inside the bytes it digests. The entries themselves
travel in the report (every rendering embeds them); the root binds them, so the seal stays
small whatever the window and a signature over it covers every entry.
"""

from __future__ import annotations

import base64
import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from core.report_manifest import (
    ALGORITHMS, KEY_BYTES, TRACE_BYTES, Manifest, PackedEntries, SpanCheck, batches, check_entries, merge_packed,
    packed_chunks, root_matches,
)
from core.report_model import Report

# 3: leaves from the record's binary form, the PDF's entries packed (manifest.bin). Version 2
# reports (text-form leaves, JSON entries) still verify: the manifest names its algorithm.
SEAL_VERSION = 3
CHECK_BATCH = 2000  # entries checked against the database per query
SUFFIX = ".sig.json"


def seal_path(report_path: Path) -> Path:
    return report_path.with_name(report_path.name + SUFFIX)


def _signed_bytes(seal: dict) -> bytes:
    return json.dumps({k: v for k, v in seal.items() if k != "signature"}, sort_keys=True,
                      separators=(",", ":")).encode()


def load_private_key(path: str):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: the report signing key must be an Ed25519 private key (PEM)")
    return key


def _public_pem(public_key) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def make_seal(report: Report, file_sha256: str, fmt: str, private_key=None) -> dict:
    seal = {
        "version": SEAL_VERSION, "format": fmt, "file_sha256": file_sha256,
        "kind": report.kind, "project": report.project, "subject": report.subject,
        "generated_at": report.generated_at.isoformat(), "generator": report.generator,
        "audit_trail_head": {"seq": report.audit_head[0], "hash": report.audit_head[1]},
        "manifest": report.manifest.header(),
    }
    if private_key is not None:
        seal["signature"] = {"algorithm": "ed25519", "public_key": _public_pem(private_key.public_key()),
                             "value": base64.b64encode(private_key.sign(_signed_bytes(seal))).decode()}
    return seal


@dataclass
class Verdict:
    ok: bool = True
    lines: list[str] = field(default_factory=list)

    def good(self, line: str) -> None:
        self.lines.append(f"OK       {line}")

    def bad(self, line: str) -> None:
        self.ok = False
        self.lines.append(f"FAILED   {line}")


def check_signature(seal: dict, verdict: Verdict, public_key_pem: bytes | None) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    sig = seal.get("signature")
    if public_key_pem is None:
        if sig:
            verdict.lines.append("NOTE     signed, but no --public-key given: authenticity not checked")
        return
    if not sig:
        verdict.bad("signature: the seal is not signed, but a public key was given")
        return
    key = load_pem_public_key(public_key_pem)
    if not isinstance(key, Ed25519PublicKey):
        verdict.bad("signature: the public key is not an Ed25519 key")
        return
    try:
        key.verify(base64.b64decode(sig["value"]), _signed_bytes(seal))
    except (InvalidSignature, ValueError, KeyError):
        verdict.bad("signature: does not match the given public key (seal altered or signed by another key)")
        return
    verdict.good("signature: Ed25519, valid for the given public key")


# pypdf refuses streams inflating past 75 MB (a bomb guard); a version 2 PDF's manifest of a busy
# month is larger (about 120 bytes a span, compressed). Up to this many bytes are read, about nine
# million spans. Version 3 attaches its entries uncompressed and packed (56 bytes a span).
MAX_ATTACHMENT_BYTES = 1 << 30


def pdf_attachment_json(body: bytes) -> dict:
    """The PDF's manifest: the manifest.json attachment, parsed, with its entries (a JSON list
    in version 2; the packed manifest.bin it names in version 3). {} when there is none or it is
    unreadable."""
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import PyPdfError

    try:
        with apply_configuration(zlib_maximum_output_length=MAX_ATTACHMENT_BYTES,
                                 maximum_declared_stream_length=MAX_ATTACHMENT_BYTES):
            attachments = PdfReader(io.BytesIO(body)).attachments
            attached = attachments.get("manifest.json")
            data = json.loads(attached[0]) if attached else {}
            spans = data.get("spans") if isinstance(data, dict) else None
            if isinstance(spans, dict):
                packed = attachments.get(str(spans.get("packed")))
                data["spans"] = PackedEntries(packed[0]) if packed else None
    except (PyPdfError, OSError, ValueError, AttributeError):
        return {}
    return data if isinstance(data, dict) else {}


def _html_manifest(body: bytes) -> dict:
    from reports.render import MANIFEST_ELEMENT

    opening = f'<script type="application/json" id="{MANIFEST_ELEMENT}">'.encode()
    start = body.rfind(opening)
    end = body.find(b"</script>", start)
    return json.loads(body[start + len(opening):end]) if start >= 0 and end > start else {}


def _csv_manifest(body: bytes) -> dict:
    import csv

    header, spans = {}, []
    for row in csv.reader(io.StringIO(body.decode("utf-8"), newline="")):
        if len(row) == 3 and row[0] == "report":
            header[row[1]] = row[2]
        elif len(row) == 4 and row[0] == "manifest" and row[1] != "trace id":
            spans.append(row[1:])
    return {"algorithm": header["manifest_algorithm"], "merkle_root": header["manifest_merkle_root"],
            "count": int(header["manifest_spans"]), "project": header.get("project"), "kind": header.get("kind"),
            "window": {"since": header.get("since"), "until": header.get("until")}, "spans": spans} if header else {}


def _json_manifest(body: bytes) -> dict:
    data = json.loads(body)
    return {"project": data.get("project"), "kind": data.get("kind"), "window": data.get("window"), **data["manifest"]}


def embedded_data(body: bytes, fmt: str) -> dict:
    """The manifest the report carries itself, with the project it names: the JSON rendering's
    "manifest", the PDF's manifest.json attachment, the HTML's script element, the CSV's
    manifest rows. {} when there is none or it is unreadable."""
    try:
        data = {"json": _json_manifest, "pdf": pdf_attachment_json, "html": _html_manifest,
                "csv": _csv_manifest}[fmt](body)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def report_window(data: dict) -> tuple[datetime, datetime] | None:
    """The window a period report states it covers (None for an incident report, or when
    unreadable). Only where `reports verify` reads the stored records from: every entry it does
    not find there is looked up by its key, so a wrong window costs time, never a verdict."""
    window = data.get("window")
    if data.get("kind") != "period" or not isinstance(window, dict):
        return None
    try:
        since, until = (datetime.fromisoformat(str(window[k]).replace(" UTC", "+00:00")) for k in ("since", "until"))
    except (KeyError, ValueError):
        return None
    return (since, until) if since.tzinfo and until.tzinfo and since < until else None


def manifest_of(data: dict) -> Manifest | None:
    try:
        spans = data.get("spans")
        if hasattr(spans, "chunks"):  # packed entries: a PDF's attachment, a JSON report's spool
            # A truncated last record makes the count differ from the stated one: root_matches fails.
            return Manifest(str(data["algorithm"]), spans, str(data["merkle_root"]), int(data["count"]))
        manifest = Manifest.from_dict(data)
        # The stated count must be the entries' (from_dict counts them): root_matches checks it.
        return Manifest(manifest.algorithm, manifest.entries, manifest.root, int(data["count"]))
    except (ValueError, KeyError, TypeError):
        return None


def check_report(file_sha256: str, seal: dict | None, embedded: dict, current_digests, verdict: Verdict,
                 public_key_pem: bytes | None = None, stored_window=None) -> Manifest | None:
    """Everything but the database read and the file's: `file_sha256` is the SHA-256 (hex) of
    the report's bytes, `embedded` its manifest (embedded_data, read_json_manifest).
    `current_digests(entries, algorithm)` returns the
    digests (in the manifest's algorithm) of the records stored now under those entries' keys,
    by hex key; it is called per batch. `stored_window(algorithm, since, until)`, when given,
    yields the packed entries (core/report_manifest.py) of the records stored now in a period
    report's window, in manifest order."""
    header = None
    if seal is not None:
        digest = file_sha256
        if digest == seal.get("file_sha256"):
            verdict.good(f"file bytes: SHA-256 {digest} matches the seal")
        else:
            verdict.bad(f"file bytes: SHA-256 {digest} differs from the seal's {seal.get('file_sha256')}: "
                        "the report was altered")
        header = seal.get("manifest") or {}
        check_signature(seal, verdict, public_key_pem)
    else:
        verdict.lines.append("NOTE     no seal file beside the report: its bytes cannot be checked")
        if public_key_pem is not None:
            verdict.bad("signature: no seal file, so nothing signed to check")
    manifest = manifest_of(embedded)
    if manifest is None:
        verdict.bad("no manifest found in the report")
        return None
    if manifest.algorithm not in ALGORITHMS:
        verdict.bad(f"manifest: algorithm {manifest.algorithm!r} is not one this version checks "
                    f"({', '.join(ALGORITHMS)})")
        return manifest
    if header is not None and (header.get("merkle_root"), header.get("count")) != (manifest.root, manifest.count):
        verdict.bad("embedded manifest: its Merkle root or count differs from the seal's")
    with ThreadPoolExecutor(1) as pool:
        # The root is recomputed while the database reads the records back.
        intact = pool.submit(_root_matches, manifest)
        checked = _check_records(manifest, report_window(embedded), current_digests, stored_window)
        if intact.result():
            verdict.good(f"manifest: Merkle root {manifest.root} over {manifest.count} records")
        else:
            verdict.bad("manifest: its Merkle root is not the root of its entries (manifest edited)")
    if not checked.bad:
        verdict.good(f"span records: all {checked.total} still stored unchanged")
    else:
        verdict.bad(f"span records: {checked.counts['changed']} changed, {checked.counts['missing']} missing "
                    f"of {checked.total}")
        for c in sorted(checked.bad, key=lambda c: c.outcome):
            verdict.lines.append(f"         {c.outcome}: trace {c.trace_id} span {c.span_id}")
    if checked.extra:
        verdict.lines.append(f"NOTE     {checked.extra} span records stored in the report's window now are not in "
                             "its manifest (stored after it was made)")
    return manifest


def _root_matches(manifest: Manifest) -> bool:
    try:
        return root_matches(manifest)
    except ValueError:  # a digest that is not hex
        return False


@dataclass
class _Checked:
    total: int = 0
    counts: dict = field(default_factory=lambda: {"changed": 0, "missing": 0})
    bad: list = field(default_factory=list)  # the first SHOWN
    extra: int = 0

    def add(self, check: SpanCheck) -> None:
        self.total += 1
        if check.outcome != "ok":
            self.counts[check.outcome] += 1
            if len(self.bad) < SHOWN:
                self.bad.append(check)


SHOWN = 20  # records named in the verdict


def _check_records(manifest: Manifest, window, current_digests, stored_window) -> _Checked:
    """Each entry against the record stored now: for a period report, beside the records of its
    window read back in manifest order (merge_packed), what is not found there by key."""
    if window is None or stored_window is None:
        return _check_by_key(manifest.entries, manifest.algorithm, current_digests)
    checked, unmatched = _Checked(), bytearray()
    try:
        merged = merge_packed(packed_chunks(manifest.entries), stored_window(manifest.algorithm, *window))
        for kind, value in merged:
            if kind == "ok":
                checked.total += value
            elif kind == "changed":
                checked.add(SpanCheck(value[:TRACE_BYTES].hex(), value[TRACE_BYTES:KEY_BYTES].hex(), "changed"))
            elif kind == "unmatched":
                unmatched += value
            else:
                checked.extra += 1
    except ValueError:  # an entry that is not hex of its size: the manifest was edited
        return _check_by_key(manifest.entries, manifest.algorithm, current_digests)
    # Looked up once the window's read is done (the session holds one statement at a time).
    found = _check_by_key(PackedEntries(bytes(unmatched)), manifest.algorithm, current_digests)
    checked.total += found.total
    for outcome in ("changed", "missing"):
        checked.counts[outcome] += found.counts[outcome]
    checked.bad = (checked.bad + found.bad)[:SHOWN]
    return checked


def _check_by_key(entries, algorithm: str, current_digests) -> _Checked:
    checked = _Checked()
    for batch in batches(entries, CHECK_BATCH):
        for c in check_entries(batch, current_digests(batch, algorithm)):
            checked.add(c)
    return checked
