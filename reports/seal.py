"""Sealing a rendered report and checking it later.

The seal is a detached file beside the report (FILE.sig.json): the SHA-256 of the report's
bytes, the manifest of the span records it covers, and optionally an Ed25519 signature over
both by the operator's key (setting CAUSELINE_REPORT_SIGNING_KEY). Detached, because a
digest of a file cannot live inside the bytes it digests; the JSON and PDF renderings also
carry the manifest themselves, so the records can be checked even without the seal.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from core.report_manifest import Manifest, check_records, root_matches
from core.report_model import Report

SEAL_VERSION = 1
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


def make_seal(report: Report, body: bytes, fmt: str, private_key=None) -> dict:
    seal = {
        "version": SEAL_VERSION, "format": fmt, "file_sha256": hashlib.sha256(body).hexdigest(),
        "kind": report.kind, "project": report.project, "subject": report.subject,
        "generated_at": report.generated_at.isoformat(), "generator": report.generator,
        "audit_trail_head": {"seq": report.audit_head[0], "hash": report.audit_head[1]},
        "manifest": report.manifest.to_dict(),
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


def pdf_attachment_json(body: bytes) -> dict:
    """The PDF's manifest.json attachment, parsed; {} when there is none or it is unreadable."""
    import io

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        attached = PdfReader(io.BytesIO(body)).attachments.get("manifest.json")
        data = json.loads(attached[0]) if attached else {}
    except (PyPdfError, OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def embedded_manifest(body: bytes, fmt: str) -> Manifest | None:
    """The manifest the report carries itself: the JSON rendering's "manifest", the PDF's
    manifest.json attachment. None for HTML and CSV (they print it, for people)."""
    try:
        if fmt == "json":
            return Manifest.from_dict(json.loads(body)["manifest"])
        if fmt == "pdf":
            attached = pdf_attachment_json(body)
            return Manifest.from_dict(attached) if attached else None
    except (ValueError, KeyError, TypeError):
        return None
    return None


def check_report(body: bytes, seal: dict | None, fmt: str, current_records, verdict: Verdict,
                 public_key_pem: bytes | None = None) -> Manifest | None:
    """Everything but the database read: `current_records(manifest)` returns the stored records by hex key."""
    manifest = None
    if seal is not None:
        digest = hashlib.sha256(body).hexdigest()
        if digest == seal.get("file_sha256"):
            verdict.good(f"file bytes: SHA-256 {digest} matches the seal")
        else:
            verdict.bad(f"file bytes: SHA-256 {digest} differs from the seal's {seal.get('file_sha256')}: "
                        "the report was altered")
        manifest = Manifest.from_dict(seal["manifest"])
        check_signature(seal, verdict, public_key_pem)
    else:
        verdict.lines.append("NOTE     no seal file beside the report: its bytes cannot be checked")
        if public_key_pem is not None:
            verdict.bad("signature: no seal file, so nothing signed to check")
    inner = embedded_manifest(body, fmt)
    if inner is not None and manifest is not None and inner.root != manifest.root:
        verdict.bad("embedded manifest: its Merkle root differs from the seal's")
    manifest = manifest or inner
    if manifest is None:
        verdict.bad("no manifest found (neither a seal file nor an embedded JSON manifest)")
        return None
    if root_matches(manifest):
        verdict.good(f"manifest: Merkle root {manifest.root} over {len(manifest.entries)} records")
    else:
        verdict.bad("manifest: its Merkle root is not the root of its entries (manifest edited)")
    checks = check_records(manifest, current_records(manifest))
    changed = [c for c in checks if c.outcome == "changed"]
    missing = [c for c in checks if c.outcome == "missing"]
    if not changed and not missing:
        verdict.good(f"span records: all {len(checks)} still stored unchanged")
    else:
        verdict.bad(f"span records: {len(changed)} changed, {len(missing)} missing of {len(checks)}")
        for c in (changed + missing)[:20]:
            verdict.lines.append(f"         {c.outcome}: trace {c.trace_id} span {c.span_id}")
    return manifest
