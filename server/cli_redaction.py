"""`causeline redaction ...`: what ingest redacts in a project (core/redaction.py).

Built-in detectors are all on unless switched off; custom patterns are RE2 (linear time).
Every change is appended to the project's audit trail; changes apply to new spans within
30 seconds (the collector caches a project's rules like its price overrides)."""

from __future__ import annotations

from server.cli_common import chosen_project

import sys


def add_parsers(commands) -> None:
    redaction = commands.add_parser("redaction", help="personal data redaction at ingest").add_subparsers(
        dest="action", required=True)
    listing = redaction.add_parser("list", help="built-in detectors and custom patterns, on or off")
    listing.add_argument("--project")
    add = redaction.add_parser("add-pattern", help="redact matches of an RE2 pattern as [REDACTED:NAME]")
    add.add_argument("name", help="a-z, 0-9, '_' and '-', up to 40 characters")
    add.add_argument("pattern", help="RE2 syntax, e.g. 'EMP-\\d{6}' (no look-arounds, no back-references)")
    add.add_argument("--project")
    remove = redaction.add_parser("remove-pattern", help="remove a custom pattern")
    remove.add_argument("name")
    remove.add_argument("--project")
    for action, verb in (("enable", "switch on"), ("disable", "switch off")):
        toggle = redaction.add_parser(action, help=f"{verb} a built-in detector or a custom pattern")
        toggle.add_argument("name", help="email, phone, card, iban, api_key, jwt or a custom pattern's name")
        toggle.add_argument("--project")


def run(session, settings, args) -> int:
    # Deferred so that building the parser (every `causeline` call) imports no database code.
    from core.redaction import InvalidPattern
    from db.queries.audit import append
    from db.queries.redaction import add_pattern, list_rules, remove_pattern, set_enabled
    from server.cli_common import cli_actor

    project = chosen_project(session, settings, args)
    if project is None:
        return 1
    slug = project.slug
    if args.action == "list":
        for name, pattern, enabled in list_rules(session, project.id):
            kind = "built-in" if pattern is None else f"pattern {pattern}"
            print(f"{'on ' if enabled else 'off'}  {name:<20} {kind}")
        return 0
    if args.action == "add-pattern":
        try:
            add_pattern(session, project.id, args.name, args.pattern)
        except InvalidPattern as exc:
            print(f"invalid pattern: {exc}", file=sys.stderr)
            return 2
        # The pattern is configuration, not personal data: recorded so that auditors see what is redacted.
        append(session, project_id=project.id, actor=cli_actor(), action="redaction.add_pattern", target=args.name,
               details={"pattern": args.pattern})
        print(f"added pattern {args.name} (applies to new spans within 30 seconds)")
        return 0
    if args.action == "remove-pattern":
        if not remove_pattern(session, project.id, args.name):
            print(f"no custom pattern {args.name!r} in project {slug}", file=sys.stderr)
            return 1
        append(session, project_id=project.id, actor=cli_actor(), action="redaction.remove_pattern", target=args.name)
        print(f"removed pattern {args.name}")
        return 0
    enabled = args.action == "enable"
    if not set_enabled(session, project.id, args.name, enabled):
        print(f"no built-in detector or custom pattern {args.name!r} in project {slug}", file=sys.stderr)
        return 1
    append(session, project_id=project.id, actor=cli_actor(), action=f"redaction.{args.action}", target=args.name)
    print(f"{args.name} {'enabled' if enabled else 'disabled'} (applies to new spans within 30 seconds)")
    return 0
