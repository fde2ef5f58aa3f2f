"""Creating a report (build, render, seal, record the audit event) and verifying a report
file against the database: what the CLI, the API and the pages all call."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import ijson
from sqlalchemy.orm import Session

from core.report_model import Report
from db.queries.audit import append
from db.queries.reports import span_digests_by_key, window_packed_entries
from reports import build
from reports.build import ReportError
from reports.json_manifest import Unpackable, read_json_manifest
from reports.render import MEDIA_TYPES, prepare, write
from reports.seal import SUFFIX, Verdict, check_report, embedded_data, load_private_key, make_seal, seal_path
from reports.spool import EntrySpool

__all__ = ["Created", "ReportError", "create", "verify_file"]


@dataclass(frozen=True)
class Created:
    """A report written to the caller's file. `report.manifest`'s entries are gone with the
    spool once create() returns: its header (count, root) stays."""

    report: Report
    seal: dict
    fmt: str
    media_type: str
    filename: str
    size: int

    @property
    def seal_bytes(self) -> bytes:
        return json.dumps(self.seal, indent=1).encode() + b"\n"


class _Digesting(io.BufferedIOBase):
    """Writes through to `out`, hashing and counting what passes: the seal's file digest
    without reading the report back."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        self._out.write(data)
        return len(data)


def create(session: Session, *, out: BinaryIO, project_id: int, project_slug: str, actor: str, sees_content: bool,
           kind: str, fmt: str, settings=None, trace_id: bytes | None = None, since: datetime | None = None,
           until: datetime | None = None, include_content: bool = False, client_addr: str | None = None) -> Created:
    """Builds the report, renders it into `out` and appends "report.create" in the caller's
    transaction (the caller commits). Raises ReportError (or ValueError for a bad format)."""
    if fmt not in MEDIA_TYPES:
        raise ValueError(f"format must be one of {', '.join(MEDIA_TYPES)}; got {fmt!r}")
    with EntrySpool() as spool:
        if kind == "incident":
            if trace_id is None:
                raise ReportError("an incident report needs a trace id")
            report = build.incident(session, project_id, project_slug, trace_id, generator=actor,
                                    sees_content=sees_content, include_content=include_content, settings=settings)
            target, stem = f"incident {trace_id.hex()}", f"incident-{trace_id.hex()[:16]}"
        elif kind == "period":
            if since is None or until is None:
                raise ReportError("a period report needs since and until")
            report = build.period(session, project_id, project_slug, since, until, generator=actor, spool=spool,
                                  settings=settings, meanwhile=lambda: prepare(fmt))
            target = f"period {report.since.isoformat()}..{report.until.isoformat()}"
            stem = f"period-{report.since:%Y%m%d}-{report.until:%Y%m%d}"
        else:
            raise ReportError(f"kind must be incident or period; got {kind!r}")
        sink = _Digesting(out)
        write(report, fmt, sink)
    key_path = getattr(settings, "report_signing_key", None) if settings is not None else None
    seal = make_seal(report, sink.sha256.hexdigest(), fmt, load_private_key(key_path) if key_path else None)
    append(session, project_id=project_id, actor=actor, action="report.create", target=target,
           client_addr=client_addr,
           details={"format": fmt, "spans": report.manifest.count, "merkle_root": report.manifest.root,
                    "file_sha256": seal["file_sha256"], "content": report.content, "signed": "signature" in seal})
    return Created(report, seal, fmt, MEDIA_TYPES[fmt], f"{project_slug}-{stem}.{fmt}", sink.size)


def _format_of(path: Path, head: bytes) -> str:
    if head.startswith(b"%PDF"):
        return "pdf"
    suffix = path.suffix.lstrip(".").lower()
    return suffix if suffix in MEDIA_TYPES else "json"


def _file_sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _embedded(path: Path, fmt: str, spool: EntrySpool) -> dict:
    """The report's own manifest. A JSON report's is streamed, its entries into `spool`
    (bounded memory whatever the window); the other formats are read whole (a PDF's entries
    are packed, 56 bytes a record)."""
    if fmt == "json":
        try:
            with path.open("rb") as file:
                return read_json_manifest(file, spool)
        except Unpackable:  # an edited manifest: parsed whole, it gets the verdict it always got
            pass
        except (ijson.JSONError, ValueError, KeyError):  # not JSON, or no manifest in it
            return {}
    return embedded_data(path.read_bytes(), fmt)


def verify_file(session: Session, path: Path, *, project_id_of, public_key_pem: bytes | None = None) -> Verdict:
    """Checks `path` (and `path`.sig.json when present) against the records stored now.
    `project_id_of(slug)` resolves the project the report names (None when unknown)."""
    verdict = Verdict()
    with path.open("rb") as file:
        fmt = _format_of(path, file.read(8))
    seal_file = seal_path(path)
    seal = json.loads(seal_file.read_bytes()) if seal_file.exists() else None
    with EntrySpool() as spool:
        embedded = _embedded(path, fmt, spool)
        slug = (seal or {}).get("project") or embedded.get("project")
        project_id = project_id_of(slug) if slug else None

        if project_id is None:
            verdict.bad(f"project {slug!r} not found: the records cannot be read")

        def current(entries, algorithm):
            if project_id is None:
                return {}
            try:
                keys = [(bytes.fromhex(e.trace_id), bytes.fromhex(e.span_id)) for e in entries]
            except ValueError:  # an edited manifest; its root check already failed
                return {}
            return span_digests_by_key(session, project_id, keys, algorithm)

        def stored_window(algorithm, since, until):
            if project_id is None:
                return ()
            return window_packed_entries(session, project_id, since, until, algorithm)

        check_report(_file_sha256(path), seal, embedded, current, verdict, public_key_pem, stored_window)
    return verdict


SEAL_SUFFIX = SUFFIX
