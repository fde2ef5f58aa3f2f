"""`causeline erase --user-id ID | --session-id ID [--project SLUG]`: a data subject's captured
content removed (db/queries/erasure.py), the runs' timings, costs and errors kept; recorded in
each affected project's audit trail with counts only (never the id or the content).

A project on legal hold is not erased unless `--despite-legal-hold` is given: the hold exists
because its records may be needed for legal claims, the one ground on which GDPR Article 17(3)(e)
lets a controller keep data despite an erasure request; deciding that is the operator's legal
team's call, so the command stops, names the project and records the refusal."""

from __future__ import annotations

import sys


def add_parsers(commands) -> None:
    erase = commands.add_parser("erase", help="erase a data subject's captured content (right to erasure)")
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument("--user-id", help="the user id the spans carry (user.id, enduser.id, ...)")
    who.add_argument("--session-id", help="the session/conversation id the spans carry")
    erase.add_argument("--project", help="only this project (default: every project)")
    erase.add_argument("--despite-legal-hold", action="store_true",
                       help="erase in projects on legal hold too (recorded as such in their audit trail)")


def run(session, settings, args) -> int:
    # Deferred so that building the parser (every `causeline` call) imports no database code.
    from db.queries.audit import append
    from db.queries.auth import get_project_by_slug
    from db.queries.erasure import erase_subject, subject_traces
    from db.queries.retention import held_projects, lock_holds
    from server.cli_common import cli_actor

    project_id = None
    if args.project:
        project = get_project_by_slug(session, args.project)
        if project is None:
            print(f"no project {args.project!r}", file=sys.stderr)
            return 1
        project_id = project.id
    selector = "user_id" if args.user_id is not None else "session_id"
    lock_holds(session)  # a hold set meanwhile waits for this transaction, or is seen by it
    held = held_projects(session)
    affected = {pid for pid, _ in subject_traces(session, user_id=args.user_id, session_id=args.session_id,
                                                   project_id=project_id)}
    blocked = set() if args.despite_legal_hold else affected & held
    counts = erase_subject(session, user_id=args.user_id, session_id=args.session_id, project_id=project_id,
                           skip_projects=blocked)
    for pid in sorted(blocked):
        append(session, project_id=pid, actor=cli_actor(), action="data.erase", target=selector, outcome="refused",
               details={"by": selector, "reason": "legal hold"})
        print(f"project {_slug(session, pid)!r} is on legal hold: nothing erased there "
              "(rerun with --despite-legal-hold once your legal team has decided)", file=sys.stderr)
    # Recorded even when nothing matched: the request itself was handled. The id is personal data: not recorded.
    for pid, c in (counts.items() if counts or blocked else [(project_id, None)]):
        details = {"by": selector, "traces": c.traces if c else 0, "spans": c.spans if c else 0,
                   "log_records": c.log_records if c else 0}
        if pid in held and args.despite_legal_hold:
            details["despite_legal_hold"] = True
        append(session, project_id=pid, actor=cli_actor(), action="data.erase", target=selector, details=details)
    total = [sum(getattr(c, f) for c in counts.values()) for f in ("traces", "spans", "log_records")]
    print(f"erased the content of {total[1]} spans in {total[0]} traces and {total[2]} GenAI log records "
          f"({len(counts)} project(s)); timings, costs and errors kept")
    return 3 if blocked else 0


def _slug(session, project_id: int) -> str:
    from db.models import Project

    project = session.get(Project, project_id)
    return project.slug if project else str(project_id)
