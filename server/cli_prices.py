"""`causeline prices ...`: per-project price overrides, which take precedence over genai-prices."""

from __future__ import annotations

from server.cli_common import chosen_project

import sys
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation


def add_parsers(commands) -> None:
    prices = commands.add_parser("prices", help="per-project model price overrides").add_subparsers(
        dest="action", required=True)
    add = prices.add_parser("add", help="price matching models at these rates (USD per million tokens)")
    add.add_argument("--model", required=True, help="glob matched against the served or requested model, e.g. 'gpt-4o*'")
    add.add_argument("--provider", help="only for this provider (default: any)")
    add.add_argument("--input", required=True, help="USD per million uncached input tokens")
    add.add_argument("--output", required=True, help="USD per million output tokens (reasoning included)")
    add.add_argument("--cache-read", help="USD per million cache-read tokens (default: the input rate)")
    add.add_argument("--cache-write", help="USD per million cache-write tokens (default: the input rate)")
    add.add_argument("--from", dest="effective_from", help="ISO date/time it applies from (default: now, UTC)")
    add.add_argument("--to", dest="effective_to", help="ISO date/time it stops applying (default: open-ended)")
    add.add_argument("--project")
    listing = prices.add_parser("list", help="list overrides")
    listing.add_argument("--project")
    remove = prices.add_parser("remove", help="remove an override by id")
    remove.add_argument("id", type=int)
    remove.add_argument("--project")


def run(session, settings, args) -> int:
    # Deferred so that building the parser (every `causeline` call) imports no database code.
    from db.queries.audit import append
    from db.queries.prices import add_price_override, list_price_overrides, remove_price_override
    from server.cli_common import cli_actor

    project = chosen_project(session, settings, args)
    if project is None:
        return 1
    slug = project.slug
    if args.action == "list":
        for row in list_price_overrides(session, project.id):
            until = row.effective_to.isoformat() if row.effective_to else "open"
            print(f"{row.id:>5}  {row.model_pattern:<24} {row.provider or '*':<12} in {row.input_per_mtok.normalize():f} "
                  f"out {row.output_per_mtok.normalize():f}  from {row.effective_from.isoformat()} to {until}")
        return 0
    if args.action == "remove":
        if not remove_price_override(session, project.id, args.id):
            print(f"no override {args.id} in project {slug}", file=sys.stderr)
            return 1
        append(session, project_id=project.id, actor=cli_actor(), action="price.remove", target=str(args.id))
        print(f"removed override {args.id}")
        return 0
    try:
        row = add_price_override(
            session, project.id, model_pattern=args.model, provider=args.provider,
            input_per_mtok=_money(args.input), output_per_mtok=_money(args.output),
            cache_read_per_mtok=_money(args.cache_read), cache_write_per_mtok=_money(args.cache_write),
            effective_from=_when(args.effective_from) or datetime.now(timezone.utc),
            effective_to=_when(args.effective_to),
        )
    except ValueError as exc:
        print(f"invalid override: {exc}", file=sys.stderr)
        return 2
    append(session, project_id=project.id, actor=cli_actor(), action="price.add", target=row.model_pattern,
           details={"id": row.id, "provider": row.provider or "*", "input": f"{row.input_per_mtok:f}",
                    "output": f"{row.output_per_mtok:f}"})
    print(f"added override {row.id}: {row.model_pattern} (applies to new spans within 30 seconds)")
    return 0


def _money(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
