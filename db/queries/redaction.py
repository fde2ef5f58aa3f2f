"""Per-project redaction rules (table redaction_rules): read as a core.redaction.RedactionPolicy,
changed by `causeline redaction ...`. Functions take a session and never commit."""

from __future__ import annotations

import logging

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.redaction import BUILTIN_NAMES, CustomPattern, InvalidPattern, RedactionPolicy, check_name, compile_custom
from db.models import RedactionRule

log = logging.getLogger("causeline.redaction")


def redaction_policy(session: Session, project_id: int) -> RedactionPolicy:
    """The project's policy; no row is the default (every built-in on). A stored pattern RE2
    refuses is skipped and logged: one bad row must not stop ingest for the project."""
    rules = list(session.scalars(select(RedactionRule).where(RedactionRule.project_id == project_id)
                                 .order_by(RedactionRule.created_at, RedactionRule.name)))
    disabled = {r.name for r in rules if r.pattern is None and not r.enabled}
    custom = []
    for rule in rules:
        if rule.pattern is None or not rule.enabled:
            continue
        try:
            compile_custom(rule.pattern)
        except InvalidPattern as exc:
            log.warning("redaction pattern %r of project %s ignored: %s", rule.name, project_id, exc)
            continue
        custom.append(CustomPattern(rule.name, rule.pattern))
    return RedactionPolicy(builtins=frozenset(BUILTIN_NAMES) - disabled, custom=tuple(custom))


def list_rules(session: Session, project_id: int) -> list[tuple[str, str | None, bool]]:
    """(name, pattern or None for a built-in, enabled) for every built-in and custom pattern."""
    rules = {r.name: r for r in session.scalars(select(RedactionRule).where(RedactionRule.project_id == project_id))}
    out = [(name, None, rules[name].enabled if name in rules else True) for name in BUILTIN_NAMES]
    out += [(r.name, r.pattern, r.enabled) for r in sorted(rules.values(), key=lambda r: r.name) if r.pattern is not None]
    return out


def add_pattern(session: Session, project_id: int, name: str, pattern: str) -> None:
    """Raises InvalidPattern for a bad name or pattern, or a name already taken."""
    check_name(name)
    if name in BUILTIN_NAMES:
        raise InvalidPattern(f"{name!r} is a built-in detector")
    compile_custom(pattern)
    if session.get(RedactionRule, (project_id, name)) is not None:
        raise InvalidPattern(f"a pattern named {name!r} exists; remove it first")
    session.add(RedactionRule(project_id=project_id, name=name, pattern=pattern, enabled=True))
    session.flush()


def remove_pattern(session: Session, project_id: int, name: str) -> bool:
    result = session.execute(delete(RedactionRule).where(
        RedactionRule.project_id == project_id, RedactionRule.name == name, RedactionRule.pattern.is_not(None)))
    return result.rowcount > 0


def set_enabled(session: Session, project_id: int, name: str, enabled: bool) -> bool:
    """Switch a built-in or a custom pattern on or off; False when there is no such name."""
    rule = session.get(RedactionRule, (project_id, name))
    if rule is None:
        if name not in BUILTIN_NAMES:
            return False
        if not enabled:
            session.add(RedactionRule(project_id=project_id, name=name, pattern=None, enabled=False))
    elif rule.pattern is None and enabled:
        session.delete(rule)  # a built-in back on is the default again: no row
    else:
        rule.enabled = enabled
    session.flush()
    return True
