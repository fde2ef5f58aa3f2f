"""`causeline users ...`: users and their roles per project (the same rules as Settings)."""

from __future__ import annotations

from server.cli_common import chosen_project, cli_actor

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
    from db.queries.audit import append
    from db.queries.members import MemberError, add_member, list_members, remove_member, reset_password, set_role

    def audit(project_id, action, target, **details):
        append(session, project_id=project_id, actor=cli_actor(), action=action, target=target, details=details)

    try:
        if args.action == "reset-password":
            password = reset_password(session, args.email)
            audit(None, "user.reset_password", args.email.strip().lower())
            print(f"new password for {args.email.strip().lower()} (shown once): {password}")
            return 0
        project = chosen_project(session, settings, args)
        if project is None:
            return 1
        slug = project.slug
        if args.action == "list":
            for member in list_members(session, project.id):
                print(f"{member.email:<40} {member.role:<9} since {member.created_at:%Y-%m-%d}")
            return 0
        if args.action == "add":
            member, password = add_member(session, project.id, args.email, parse_role(args.role))
            audit(project.id, "member.add", member.email, role=member.role)
            print(f"added {member.email} to {slug} as {member.role}")
            if password:
                print(f"password (shown once): {password}")
            return 0
        if args.action == "role":
            old, new = set_role(session, project.id, args.email, parse_role(args.role))
            audit(project.id, "member.role", args.email.strip().lower(), old=old, new=new)
            print(f"{args.email.strip().lower()} in {slug}: {old} -> {new}")
            return 0
        revoked = remove_member(session, project.id, args.email)
        audit(project.id, "member.remove", args.email.strip().lower(), keys_revoked=revoked)
        print(f"removed {args.email.strip().lower()} from {slug}; revoked {revoked} key(s) they created")
        return 0
    except (MemberError, ValueError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
