"""The Settings page's data (and GET /api/settings): keys, price overrides, members, retention.

What each section holds depends on the reader's permissions (core/permissions.py): keys
only for those who manage keys; everyone in the project sees prices and members.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.permissions import ROLE_DESCRIPTIONS, Permission, Principal, Role, grantable_scopes
from db.models import User
from db.queries.auth import list_keys
from db.queries.members import list_members
from db.queries.prices import list_price_overrides
from pages.retention import RetentionOut, retention_data


class KeyOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="The visible start of the key; the secret is never stored.")
    scopes: list[str]
    created_at: datetime
    created_by: str | None = Field(description="E-mail of the member who created it; null: the operator (CLI); "
                                   "\"(deleted user)\": a member whose user was deleted (the key carries nothing).")
    last_used_at: datetime | None = Field(description="Last ingest or read seen (refreshed about every 10 s of use).")
    revoked_at: datetime | None


class PriceOut(BaseModel):
    id: int
    model_pattern: str
    provider: str | None
    input_per_mtok: str
    output_per_mtok: str
    cache_read_per_mtok: str | None
    cache_write_per_mtok: str | None
    effective_from: datetime
    effective_to: datetime | None


class MemberOut(BaseModel):
    email: str
    role: str
    since: datetime


class RoleOut(BaseModel):
    role: str
    description: str


class SettingsOut(BaseModel):
    project: str
    your_role: str | None
    permissions: list[str] = Field(description="What you may do in this project.")
    grantable_scopes: list[str] = Field(description="Scopes you may put on a key you create (never more than you hold).")
    keys: list[KeyOut] | None = Field(description="Null unless your role manages keys.")
    prices: list[PriceOut]
    members: list[MemberOut]
    roles: list[RoleOut]
    retention: RetentionOut


def _dec(value) -> str | None:
    return None if value is None else format(value.normalize(), "f")


DELETED_USER = "(deleted user)"


def settings_data(session: Session, principal: Principal, app_settings=None) -> SettingsOut:
    """`app_settings` (core.settings.Settings) gives the server's retention defaults."""
    keys = None
    if principal.can(Permission.MANAGE_KEYS):
        rows = list_keys(session, principal.project_id)
        creators = dict(session.execute(select(User.id, User.email).where(
            User.id.in_({k.created_by for k in rows if k.created_by is not None}))).all())
        keys = [KeyOut(id=k.id, name=k.name, prefix=k.prefix, scopes=list(k.scopes), created_at=k.created_at,
                       created_by=creators.get(k.created_by) or (DELETED_USER if k.created_by_member else None),
                       last_used_at=k.last_used_at, revoked_at=k.revoked_at)
                for k in rows]
    prices = [PriceOut(id=p.id, model_pattern=p.model_pattern, provider=p.provider,
                       input_per_mtok=_dec(p.input_per_mtok), output_per_mtok=_dec(p.output_per_mtok),
                       cache_read_per_mtok=_dec(p.cache_read_per_mtok), cache_write_per_mtok=_dec(p.cache_write_per_mtok),
                       effective_from=p.effective_from, effective_to=p.effective_to)
              for p in list_price_overrides(session, principal.project_id)]
    members = [MemberOut(email=m.email, role=m.role, since=m.created_at)
               for m in list_members(session, principal.project_id)]
    role = principal.role
    return SettingsOut(
        project=principal.project_slug, your_role=role.value if role else None,
        permissions=sorted(p.value for p in principal.permissions),
        grantable_scopes=list(grantable_scopes(role)) if role else [],
        keys=keys, prices=prices, members=members,
        roles=[RoleOut(role=r.value, description=ROLE_DESCRIPTIONS[r]) for r in Role],
        retention=retention_data(
            session, principal.project_id,
            see_reason=principal.can(Permission.MANAGE_SETTINGS) or principal.can(Permission.READ_AUDIT),
            **({"default_days": app_settings.retention_days, "default_rollup_days": app_settings.rollup_retention_days}
               if app_settings is not None else {})),
    )
