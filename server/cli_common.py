"""What every `causeline` subcommand that acts on a project needs: the project, and who acted."""

from __future__ import annotations

import sys


def cli_actor() -> str:
    """Who acted on the command line, for the audit trail: the operating-system user."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def chosen_project(session, settings, args):
    """The project of `--project` (default: CAUSELINE_INIT_PROJECT), or None after saying so."""
    from db.queries.auth import get_project_by_slug

    slug = getattr(args, "project", None) or settings.init_project
    project = get_project_by_slug(session, slug)
    if project is None:
        print(f"no project {slug!r}", file=sys.stderr)
    return project
