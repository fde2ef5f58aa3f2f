"""Who may do what: the one table of permissions, for roles and for API key scopes.

Every HTTP edge (API, pages, collector, /metrics) checks a request against this table
through `access/` (docs/architecture.md, "Access"); nothing else decides rights.

A user's rights come from the role of their membership in the project they are reading.
A key's rights come from its scopes, and never exceed those of the member who created
it: the key's permissions are its scopes' permissions intersected with the creator's
role's permissions, evaluated on every request (so demoting a member demotes their keys).
Keys created by the operator on the command line have no creator and carry their scopes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Permission(StrEnum):
    INGEST = "ingest"  # send spans (OTLP)
    READ = "read"  # runs, spans, costs, health, failures — captured content masked
    READ_CONTENT = "read_content"  # captured prompt and completion text
    METRICS = "metrics"  # process-wide Prometheus counters (every project's ingest)
    MANAGE_KEYS = "manage_keys"
    MANAGE_PRICES = "manage_prices"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_SETTINGS = "manage_settings"  # retention and other project settings
    READ_AUDIT = "read_audit"
    CREATE_REPORTS = "create_reports"
    MANAGE_ALERTS = "manage_alerts"  # alert rules and channels, test notifications (reading them: READ)
    WRITE_SCORES = "write_scores"  # send evaluation scores (POST /api/scores), like spans


class Role(StrEnum):
    ADMIN = "admin"
    ENGINEER = "engineer"
    AUDITOR = "auditor"
    VIEWER = "viewer"


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.ENGINEER: frozenset({P.INGEST, P.READ, P.READ_CONTENT, P.MANAGE_KEYS, P.MANAGE_PRICES, P.MANAGE_ALERTS,
                              P.WRITE_SCORES}),
    Role.AUDITOR: frozenset({P.READ, P.READ_CONTENT, P.READ_AUDIT, P.CREATE_REPORTS}),
    Role.VIEWER: frozenset({P.READ}),
}

# What a key scope grants (the scope names are the ones keys have always had).
SCOPE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "ingest": frozenset({P.INGEST, P.WRITE_SCORES}),
    "read": frozenset({P.READ, P.READ_CONTENT}),
    "metrics": frozenset({P.METRICS}),
}
SCOPES = tuple(SCOPE_PERMISSIONS)

ROLE_DESCRIPTIONS = {
    Role.ADMIN: "everything: members, keys, prices, alerts, retention, audit trail, reports",
    Role.ENGINEER: "read everything including captured content; send scores; manage ingest keys, price overrides and alerts",
    Role.AUDITOR: "read everything including captured content, the audit trail; generate reports",
    Role.VIEWER: "read runs, costs and health; captured prompt and completion text is masked",
}

# Roles before roles existed (schema 0001), and what they became.
LEGACY_ROLES = {"owner": Role.ADMIN, "member": Role.ENGINEER, "viewer": Role.VIEWER}


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise ValueError(f"role must be one of {', '.join(Role)}; got {text!r}") from None


def key_permissions(scopes: frozenset[str] | set[str] | list[str], creator_role: Role | None,
                    *, has_creator: bool) -> frozenset[Permission]:
    """A key's rights: its scopes', capped by its creator's current role. A key whose creator
    is no longer a member of the project (`has_creator` and no role) carries nothing."""
    granted = frozenset().union(*(SCOPE_PERMISSIONS.get(s, frozenset()) for s in scopes))
    if not has_creator:
        return granted
    if creator_role is None:
        return frozenset()
    return granted & ROLE_PERMISSIONS[creator_role]


def grantable_scopes(role: Role) -> tuple[str, ...]:
    """The scopes a member with `role` may put on a key they create (never more than they hold)."""
    held = ROLE_PERMISSIONS[role]
    return tuple(s for s, perms in SCOPE_PERMISSIONS.items() if perms <= held)


@dataclass(frozen=True)
class Principal:
    """Who is asking, for which project, and what they may do there. Every query downstream
    is scoped by `project_id`; every check asks `permissions`."""

    project_id: int
    project_slug: str
    permissions: frozenset[Permission]
    actor: str  # "user:<email>", "key:<prefix>" or "open" (auth disabled): the audit trail's actor
    role: Role | None = None  # None for keys
    user_id: int | None = None
    key_id: int | None = None
    email: str | None = None
    projects: tuple[str, ...] = field(default=())  # slugs the user may switch to
    scopes: frozenset[str] = frozenset()  # a key's scopes, as stored

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def sees_content(self) -> bool:
        return Permission.READ_CONTENT in self.permissions


def denial(principal: Principal, permission: Permission) -> str | None:
    """Why `principal` may not do `permission` (a message for a 403), or None when it may."""
    if principal.can(permission):
        return None
    if principal.key_id is not None:
        key = f"API key {principal.actor.removeprefix('key:')}..."
        granting = [s for s, perms in SCOPE_PERMISSIONS.items() if permission in perms]
        if not granting:
            return f"{key}: '{permission}' is for logged-in members only, never for keys"
        if any(s in principal.scopes for s in granting):
            return (f"{key} has the '{granting[0]}' scope, but the member who created it no longer has a role "
                    f"that allows '{permission}'")
        return (f"{key} lacks the '{granting[0]}' scope "
                f"(it has: {', '.join(sorted(principal.scopes)) or 'none'})")
    who = principal.email or principal.actor
    role = f"role '{principal.role}'" if principal.role else "no role"
    return f"{who} has {role} in project {principal.project_slug!r}, which does not allow '{permission}'"
