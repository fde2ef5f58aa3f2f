"""`causeline audit verify`: walk every hash chain and name the first event that does not match."""

from __future__ import annotations

import sys




def add_parsers(commands) -> None:
    audit = commands.add_parser("audit", help="the tamper-evident audit trail").add_subparsers(
        dest="action", required=True)
    verify = audit.add_parser("verify", help="check every event's hash and its link to the one before")
    verify.add_argument("--project", help="only this project's chain (default: every chain)")


def run(session, settings, args) -> int:
    from core.audit_chain import verify
    from db.queries.audit import head, walk
    from db.queries.auth import get_project_by_slug

    chain = None
    if args.project:
        project = get_project_by_slug(session, args.project)
        if project is None:
            print(f"no project {args.project!r}", file=sys.stderr)
            return 1
        chain = project.id
    checked, broken = verify(walk(session, chain))
    if broken is not None:
        print(f"AUDIT TRAIL BROKEN at event {broken.event_id} (chain {broken.chain}, seq {broken.seq}): "
              f"{broken.reason}; {checked} events before it verified", file=sys.stderr)
        return 3
    where = f"project {args.project}" if args.project else "all chains"
    tip = f"; head {head(session, chain).hash.hex()}" if chain is not None else ""
    print(f"audit trail intact: {checked} events verified ({where}){tip}")
    return 0
