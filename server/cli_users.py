"""`causeline users ...`: users and their roles per project (the same rules as Settings)."""

from __future__ import annotations

import sys

from core.permissions import ROLE_DESCRIPTIONS, Role, parse_role

ROLES_HELP = "; ".join(f"{r.value}: {d}" for r, d in ROLE_DESCRIPTIONS.items())


def add_parsers(commands) -> None:
    users = commands.add_parser("users", help="users and their role per project").add_subparsers(
        dest="action", required=True)
    add = users.add_parser("add", help="add a user to a project (created if new; a password is printed once)")
    add.add_argument("email")
    add.add_argument("--role", default=Role.VIEWER.value, help=f"one of {', '.join(Role)} (default: viewer). {ROLES_HELP}")
    add.add_argument("--project")
    listing = users.add_parser("list", help="list a project's members and roles")
    listing.add_argument("--project")
    role = users.add_parser("role", help="change a member's role")
    role.add_argument("email")
    role.add_argument("role", help=f"one of {', '.join(Role)}")
    role.add_argument("--project")
    remove = users.add_parser("remove", help="remove a member from a project (revokes the keys they created there)")
    remove.add_argument("email")
    remove.add_argument("--project")
    reset = users.add_parser("reset-password", help="set a new generated password (printed once); ends their sessions")
    reset.add_argument("email")


def run(session, settings, args) -> int:
    # Deferred so that building the parser (every `causeline` call) imports no database code.
    from db.queries.auth import get_project_by_slug
    from db.queries.members import MemberError, add_member, list_members, remove_member, reset_password, set_role

    try:
        if args.action == "reset-password":
            password = reset_password(session, args.email)
            print(f"new password for {args.email.strip().lower()} (shown once): {password}")
            return 0
        slug = args.project or settings.init_project
        project = get_project_by_slug(session, slug)
        if project is None:
            print(f"no project {slug!r}", file=sys.stderr)
            return 1
        if args.action == "list":
            for member in list_members(session, project.id):
                print(f"{member.email:<40} {member.role:<9} since {member.created_at:%Y-%m-%d}")
            return 0
        if args.action == "add":
            member, password = add_member(session, project.id, args.email, parse_role(args.role))
            print(f"added {member.email} to {slug} as {member.role}")
            if password:
                print(f"password (shown once): {password}")
            return 0
        if args.action == "role":
            old, new = set_role(session, project.id, args.email, parse_role(args.role))
            print(f"{args.email.strip().lower()} in {slug}: {old} -> {new}")
            return 0
        revoked = remove_member(session, project.id, args.email)
        print(f"removed {args.email.strip().lower()} from {slug}; revoked {revoked} key(s) they created")
        return 0
    except (MemberError, ValueError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
