"""The `causeline` command: migrate, serve, keys, prices, users.

Imports are deferred to the command that needs them, so `keys`, `prices` and `users`
load SQLAlchemy and the models but not FastAPI, uvicorn, Alembic or genai-prices
(about 2.2 s of imports before, see `python -X importtime -m server.cli keys list`);
a command module imports its database code inside its `run`, not at the top.
"""

from __future__ import annotations

from server.cli_common import chosen_project, cli_actor

import argparse
import sys

from server import cli_audit, cli_erase, cli_export, cli_prices, cli_redaction, cli_reports, cli_retention, cli_users


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="causeline", description="Flight recorder and forensics backend for AI agents.")
    commands = parser.add_subparsers(dest="command", required=True)

    migrate = commands.add_parser("migrate", help="apply database migrations (Alembic) up to head")
    migrate.add_argument("--citus", action="store_true",
                         help="then create the distributed layout on a Citus coordinator (docs/scaling.md)")

    serve = commands.add_parser("serve", help="run the collector, API and UI")
    serve.add_argument("--only", action="append", metavar="PART",
                       help="serve only this part (repeatable): collector, api or web; "
                            "e.g. --only collector for a scaled-out ingest tier")
    serve.add_argument("--no-migrate", action="store_true",
                       help="do not apply migrations first (default: applied in embedded mode only)")

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create a key; its secret is printed once")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", default="ingest", help="comma-separated: ingest, read, metrics (default: ingest)")
    create.add_argument("--project", help="project slug (default: CAUSELINE_INIT_PROJECT)")
    listing = keys.add_parser("list", help="list keys (prefixes only)")
    listing.add_argument("--project")
    revoke = keys.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key", help="numeric id or visible prefix (cl_xxxxxxxx)")

    cli_prices.add_parsers(commands)
    cli_users.add_parsers(commands)
    cli_audit.add_parsers(commands)
    cli_redaction.add_parsers(commands)
    cli_erase.add_parsers(commands)
    cli_reports.add_parsers(commands)
    cli_export.add_parsers(commands)
    cli_retention.add_parsers(commands)

    args = parser.parse_args(argv)
    from core.settings import Settings

    settings = Settings()
    try:
        if args.command == "migrate":
            return _migrate(settings, citus=args.citus)
        if args.command == "serve":
            return _serve(settings, args, parser)
        actions = {"keys": _key_action, "prices": cli_prices.run, "users": cli_users.run, "audit": cli_audit.run,
                   "redaction": cli_redaction.run, "erase": cli_erase.run, "reports": cli_reports.run,
                   "export": cli_export.run, "retention": cli_retention.run}
        return _in_transaction(settings, args, actions[args.command])
    except KeyboardInterrupt:
        return 130


def _migrate(settings, *, citus: bool = False) -> int:
    from db.migrate import distribute, upgrade
    from server.runtime import database

    if citus and not settings.database_url:
        print("--citus needs DATABASE_URL: the Citus coordinator", file=sys.stderr)
        return 2
    with database(settings) as (url, _):
        upgrade(url)
        print("Database migrated to head.")
        if citus:
            placed = distribute(url)
            print(f"Citus layout: {len(placed)} table(s) placed now" + (f" ({', '.join(placed)})" if placed else
                                                                         ", all already in place") + ".")
    return 0


def _serve(settings, args, parser: argparse.ArgumentParser) -> int:
    from server.serve import run

    return run(settings, only=args.only, no_migrate=args.no_migrate, usage_error=parser.error)


def _in_transaction(settings, args, action) -> int:
    from db.engine import make_engine, make_sessionmaker
    from server.runtime import database

    with database(settings) as (url, _):
        # Two (and two overflow): a report reads on two connections of its own beside the
        # action's session (reports/build.py).
        engine = make_engine(url, pool_size=2)
        try:
            with make_sessionmaker(engine).begin() as session:
                return action(session, settings, args)
        finally:
            engine.dispose()


def _key_action(session, settings, args) -> int:
    from core import security
    from db.queries.audit import append
    from db.queries.auth import create_api_key, list_keys, revoke_key

    if args.action == "revoke":
        key = revoke_key(session, args.key)
        if key is None:
            print(f"no single key matches {args.key!r}", file=sys.stderr)
            return 1
        append(session, project_id=key.project_id, actor=cli_actor(), action="key.revoke",
               target=f"{key.prefix} ({key.name})")
        print(f"revoked key {key.id} ({key.prefix}…, {key.name})")
        return 0
    project = chosen_project(session, settings, args)
    if project is None:
        return 1
    slug = project.slug
    if args.action == "create":
        try:
            scopes = security.parse_scopes(args.scopes)
        except ValueError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        key = create_api_key(session, project.id, name=args.name, scopes=scopes)
        append(session, project_id=project.id, actor=cli_actor(), action="key.create",
               target=f"{key.prefix} ({key.name})", details={"scopes": ",".join(key.scopes)})
        print(f"created key {key.id} for project {slug} with scopes {','.join(key.scopes)}")
        print(f"secret (shown once): {key.secret}")
        return 0
    for key in list_keys(session, project.id):
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        print(f"{key.id:>5}  {key.prefix}…  {','.join(key.scopes):<12}  {state:<18}  {key.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
