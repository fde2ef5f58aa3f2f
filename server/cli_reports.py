"""`causeline reports create|verify`: audit reports from the command line (docs/compliance.md)."""

from __future__ import annotations

from server.cli_common import chosen_project

import sys
from datetime import datetime, timezone
from pathlib import Path


def add_parsers(commands) -> None:
    reports = commands.add_parser("reports", help="verifiable audit reports").add_subparsers(
        dest="action", required=True)
    create = reports.add_parser("create", help="generate an incident or period report, sealed in FILE.sig.json")
    create.add_argument("--kind", choices=("incident", "period"), required=True)
    create.add_argument("--trace", help="the run's trace id (hex), for --kind incident")
    create.add_argument("--since", help="start of the window (ISO 8601, UTC unless it says), for --kind period")
    create.add_argument("--until", help="end of the window (ISO 8601), for --kind period")
    create.add_argument("--format", choices=("pdf", "html", "json", "csv"), default="pdf")
    create.add_argument("-o", "--output", required=True, help="file to write (its seal goes to FILE.sig.json)")
    create.add_argument("--project", help="project slug (default: the first project)")
    create.add_argument("--include-content", action="store_true", help="include captured prompt and completion text")
    verify = reports.add_parser("verify", help="check a report's bytes, its covered span records and its signature")
    verify.add_argument("file")
    verify.add_argument("--public-key", help="PEM Ed25519 public key the seal must be signed with")


def _time(text: str | None, name: str) -> datetime:
    if not text:
        raise ValueError(f"--{name} is required for a period report")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--{name}: not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def run(session, settings, args) -> int:
    from db.queries.auth import get_project_by_slug
    from server.cli_common import cli_actor

    if args.action == "verify":
        return _verify(session, args, get_project_by_slug)
    from reports.service import ReportError, create

    project = chosen_project(session, settings, args)
    if project is None:
        return 1
    out = Path(args.output)
    opened = False
    try:
        trace_id = None
        since = until = None
        if args.kind == "incident":
            if not args.trace:
                raise ValueError("--trace is required for an incident report")
            try:
                trace_id = bytes.fromhex(args.trace)
            except ValueError:
                raise ValueError(f"--trace: not a hex trace id: {args.trace!r}") from None
        else:
            since, until = _time(args.since, "since"), _time(args.until, "until")
        # The operator on the command line reads the database directly: they may see content.
        with out.open("wb") as file:
            opened = True
            created = create(session, out=file, project_id=project.id, project_slug=project.slug, actor=cli_actor(),
                             sees_content=True, kind=args.kind, fmt=args.format, settings=settings,
                             trace_id=trace_id, since=since, until=until, include_content=args.include_content)
    except BaseException as exc:
        if opened:
            out.unlink(missing_ok=True)  # no half-written report left behind
        if not isinstance(exc, (ReportError, ValueError)):
            raise
        print(str(exc), file=sys.stderr)
        return 2
    sig = out.with_name(out.name + ".sig.json")
    sig.write_bytes(created.seal_bytes)
    signed = " (signed)" if "signature" in created.seal else ""
    print(f"wrote {out} ({created.size} bytes) and its seal {sig}{signed}: "
          f"{created.report.manifest.count} span records, Merkle root {created.report.manifest.root}")
    return 0


def _verify(session, args, get_project_by_slug) -> int:
    from reports.service import verify_file

    path = Path(args.file)
    if not path.is_file():
        print(f"no file {path}", file=sys.stderr)
        return 1
    public_key = Path(args.public_key).read_bytes() if args.public_key else None

    def project_id_of(slug):
        project = get_project_by_slug(session, slug)
        return project.id if project else None

    try:
        verdict = verify_file(session, path, project_id_of=project_id_of, public_key_pem=public_key)
    except ValueError as exc:  # an unreadable seal or key
        print(f"cannot verify {path}: {exc}", file=sys.stderr)
        return 2
    for line in verdict.lines:
        print(line)
    print(f"report {path}: {'VERIFIED' if verdict.ok else 'NOT VERIFIED'}")
    return 0 if verdict.ok else 3
