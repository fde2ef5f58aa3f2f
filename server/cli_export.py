"""`causeline export finetune ...`: fine-tuning examples as JSON Lines (docs/evaluation.md), or
with --preview only their counts; the same filters, redaction and audit as the API."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

from server.cli_common import chosen_project


def add_parsers(commands) -> None:
    export = commands.add_parser("export", help="export data").add_subparsers(dest="action", required=True)
    finetune = export.add_parser("finetune", help="prompt/completion pairs of model calls as JSON Lines")
    finetune.add_argument("--format", choices=("openai", "generic"), default="openai")
    finetune.add_argument("--since", help="calls that started at or after (ISO 8601, UTC unless it says; "
                                          "default: 7 days before --until)")
    finetune.add_argument("--until", help="calls that started before (default: now)")
    finetune.add_argument("--outcome", choices=("ok", "recovered", "failed", "any"), default="ok",
                          help="the run's outcome (default: successful runs only)")
    finetune.add_argument("--agent")
    finetune.add_argument("--step", help="the call's span name or its parent's")
    finetune.add_argument("--model", help="requested or served model")
    finetune.add_argument("--score-name", help="only calls (or runs) with this score")
    finetune.add_argument("--min-score", type=float, help="only calls (or runs) with a score of at least this")
    finetune.add_argument("--preview", action="store_true", help="print counts and tokens, write nothing")
    finetune.add_argument("-o", "--output", default="-", help="file to write (default: standard output)")
    finetune.add_argument("--project", help="project slug (default: the first project)")


def _time(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--{name}: not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def run(session, settings, args) -> int:
    from core.finetune import export_lines
    from db.queries.audit import append
    from db.queries.finetune import ExportFilters, calls
    from pages.export import export_preview, redactor
    from server.cli_common import cli_actor

    project = chosen_project(session, settings, args)
    if project is None:
        return 1
    try:
        until = _time(args.until, "until") or datetime.now(timezone.utc)
        since = _time(args.since, "since") or until - timedelta(days=7)
        filters = ExportFilters(since=since, until=until, outcome=None if args.outcome == "any" else args.outcome,
                                agent=args.agent, step=args.step, model=args.model, score_name=args.score_name,
                                min_score=args.min_score)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.preview:
        p = export_preview(session, project.id, filters, settings.finetune_max_calls)
        print(f"{p.examples} examples to export ({p.input_tokens} input / {p.output_tokens} output tokens) from "
              f"{p.calls} model calls: {p.duplicates} duplicates, {p.unusable} without a captured prompt or answer"
              + ("; the maximum number of calls was reached, narrow the filters" if p.limited else ""))
        return 0
    append(session, project_id=project.id, actor=cli_actor(), action="export", target="finetune", details={
        "format": args.format, "since": since.isoformat(), "until": until.isoformat(), "outcome": args.outcome})
    out = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")
    written = 0
    try:
        for line in export_lines(calls(session, project.id, filters, limit=settings.finetune_max_calls),
                                 args.format, redactor(session, project.id)):
            out.write(line)
            written += 1
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    print(f"wrote {written} examples", file=sys.stderr)
    return 0
