"""`causeline retention ...`: how long a project's data is kept, and its legal hold.

The server's maintenance job enforces it (server/maintenance.py, docs/scaling.md). Every
change is appended to the project's audit trail in the same transaction."""

from __future__ import annotations

import argparse
import sys

from server.cli_common import chosen_project


def _days(value: str) -> int | None:
    if value == "default":
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("a number of days, or `default`") from None


def add_parsers(commands) -> None:
    retention = commands.add_parser("retention", help="how long a project's spans and rollups are kept; legal hold")
    actions = retention.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="the project's retention and legal hold")
    show.add_argument("--project")
    change = actions.add_parser("set", help="the project's own retention (`default`: the server's)")
    change.add_argument("--days", type=_days, default=argparse.SUPPRESS, help="days spans are kept, or `default`")
    change.add_argument("--rollup-days", type=_days, default=argparse.SUPPRESS,
                        help="days cost and health rollups are kept, or `default`")
    change.add_argument("--project")
    hold = actions.add_parser("hold", help="legal hold: delete nothing of the project until released")
    hold.add_argument("--reason", required=True, help="e.g. the matter or request it is held for")
    hold.add_argument("--project")
    release = actions.add_parser("release", help="end the legal hold")
    release.add_argument("--project")


def run(session, settings, args) -> int:
    # Deferred so that building the parser (every `causeline` call) imports no database code.
    from core.retention import Policy, below_floor, effective, validate
    from db.queries.audit import append
    from db.queries.retention import policy, set_days, set_hold
    from server.cli_common import cli_actor

    project = chosen_project(session, settings, args)
    if project is None:
        return 1
    current = policy(session, project.id)
    if args.action == "show":
        _show(project.slug, current, settings)
        return 0
    if args.action == "set":
        # An option not given keeps the project's current value.
        days = getattr(args, "days", current.days)
        rollup_days = getattr(args, "rollup_days", current.rollup_days)
        try:
            validate(days, rollup_days)
        except ValueError as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return 2
        set_days(session, project.id, days, rollup_days)
        append(session, project_id=project.id, actor=cli_actor(), action="retention.set", target=project.slug,
               details={"days": days, "rollup_days": rollup_days,
                        "previous_days": current.days, "previous_rollup_days": current.rollup_days})
        shown = effective(Policy(project.id, days, rollup_days), _now(), default_days=settings.retention_days,
                          default_rollup_days=settings.rollup_retention_days)
        print(f"{project.slug}: spans kept {shown.days} days, rollups {shown.rollup_days} days "
              f"(enforced by the server's next maintenance round)")
        if below_floor(shown.days):
            print("note: below the six months EU AI Act Articles 19 and 26(6) require of deployers of "
                  "high-risk systems", file=sys.stderr)
        return 0
    hold = args.action == "hold"
    if hold == current.legal_hold:
        print(f"{project.slug} is {'already' if hold else 'not'} on legal hold", file=sys.stderr)
        return 1
    reason = args.reason if hold else None
    set_hold(session, project.id, hold, reason)
    append(session, project_id=project.id, actor=cli_actor(), action=f"retention.{args.action}",
           target=project.slug, details={"reason": reason or current.hold_reason})
    print(f"{project.slug}: legal hold {'placed: nothing is deleted until released' if hold else 'released'}")
    return 0


def _now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def _show(slug: str, current, settings) -> None:
    from core.retention import effective

    shown = effective(current, _now(), default_days=settings.retention_days,
                      default_rollup_days=settings.rollup_retention_days)
    print(f"project      {slug}")
    print(f"spans        {shown.days} days ({'own' if current.days else 'default'})"
          + (f", deleted before {shown.span_cutoff:%Y-%m-%d}" if shown.span_cutoff else ""))
    print(f"rollups      {shown.rollup_days} days ({'own' if current.rollup_days else 'default'})"
          + (f", deleted before {shown.rollup_cutoff:%Y-%m-%d}" if shown.rollup_cutoff else ""))
    print(f"legal hold   {'ON: ' + (current.hold_reason or '') if current.legal_hold else 'off'}")
