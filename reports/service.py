"""Creating a report (build, render, seal, record the audit event) and verifying a report
file against the database: what the CLI, the API and the pages all call."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from core.report_model import Report
from db.queries.audit import append
from db.queries.reports import span_records_by_key
from reports import build
from reports.build import ReportError
from reports.render import MEDIA_TYPES, render
from reports.seal import SUFFIX, Verdict, check_report, load_private_key, make_seal, pdf_attachment_json, seal_path

__all__ = ["Created", "ReportError", "create", "verify_file"]


@dataclass(frozen=True)
class Created:
    report: Report
    body: bytes
    seal: dict
    fmt: str
    media_type: str
    filename: str

    @property
    def seal_bytes(self) -> bytes:
        return json.dumps(self.seal, indent=1).encode() + b"\n"


def create(session: Session, *, project_id: int, project_slug: str, actor: str, sees_content: bool, kind: str,
           fmt: str, settings=None, trace_id: bytes | None = None, since: datetime | None = None,
           until: datetime | None = None, include_content: bool = False, client_addr: str | None = None) -> Created:
    """Builds and renders the report and appends "report.create" in the caller's transaction
    (the caller commits). Raises ReportError (or ValueError for a bad format)."""
    if kind == "incident":
        if trace_id is None:
            raise ReportError("an incident report needs a trace id")
        report = build.incident(session, project_id, project_slug, trace_id, generator=actor,
                                sees_content=sees_content, include_content=include_content, settings=settings)
        target, stem = f"incident {trace_id.hex()}", f"incident-{trace_id.hex()[:16]}"
    elif kind == "period":
        if since is None or until is None:
            raise ReportError("a period report needs since and until")
        report = build.period(session, project_id, project_slug, since, until, generator=actor, settings=settings)
        target = f"period {report.since.isoformat()}..{report.until.isoformat()}"
        stem = f"period-{report.since:%Y%m%d}-{report.until:%Y%m%d}"
    else:
        raise ReportError(f"kind must be incident or period; got {kind!r}")
    body = render(report, fmt)
    key_path = getattr(settings, "report_signing_key", None) if settings is not None else None
    seal = make_seal(report, body, fmt, load_private_key(key_path) if key_path else None)
    append(session, project_id=project_id, actor=actor, action="report.create", target=target,
           client_addr=client_addr,
           details={"format": fmt, "spans": len(report.manifest.entries), "merkle_root": report.manifest.root,
                    "file_sha256": seal["file_sha256"], "content": report.content, "signed": "signature" in seal})
    return Created(report, body, seal, fmt, MEDIA_TYPES[fmt], f"{project_slug}-{stem}.{fmt}")


def _format_of(path: Path, body: bytes) -> str:
    if body.startswith(b"%PDF"):
        return "pdf"
    suffix = path.suffix.lstrip(".").lower()
    return suffix if suffix in MEDIA_TYPES else "json"


def _embedded_project(body: bytes, fmt: str) -> str | None:
    """The project a report names itself (JSON: top level; PDF: its manifest.json attachment)."""
    try:
        if fmt == "json":
            return json.loads(body).get("project")
        if fmt == "pdf":
            return pdf_attachment_json(body).get("project")
    except (ValueError, AttributeError):
        return None
    return None


def verify_file(session: Session, path: Path, *, project_id_of, public_key_pem: bytes | None = None) -> Verdict:
    """Checks `path` (and `path`.sig.json when present) against the records stored now.
    `project_id_of(slug)` resolves the project the report names (None when unknown)."""
    verdict = Verdict()
    body = path.read_bytes()
    seal_file = seal_path(path)
    seal = json.loads(seal_file.read_bytes()) if seal_file.exists() else None
    fmt = _format_of(path, body)
    slug = (seal or {}).get("project") or _embedded_project(body, fmt)
    project_id = project_id_of(slug) if slug else None

    def current(manifest):
        if project_id is None:
            verdict.bad(f"project {slug!r} not found: the records cannot be read")
            return {}
        keys = [(bytes.fromhex(e.trace_id), bytes.fromhex(e.span_id)) for e in manifest.entries]
        return span_records_by_key(session, project_id, keys)

    check_report(body, seal, fmt, current, verdict, public_key_pem)
    return verdict


SEAL_SUFFIX = SUFFIX
