"""Projects, API keys, users and UI sessions."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm import Session

from core import security
from db.models import ApiKey, Membership, Project, User, UserSession


@dataclass(frozen=True)
class KeyRecord:
    key_id: int
    project_id: int
    project_slug: str
    scopes: frozenset[str]
    prefix: str
    created_by: int | None
    creator_role: str | None  # the creator's current role in the key's project; None if not a member
    by_member: bool = False  # a member made it (even if their user row is gone since); False: the operator


@dataclass(frozen=True)
class MembershipRecord:
    project_id: int
    slug: str
    role: str


@dataclass(frozen=True)
class UserRecord:
    user_id: int
    email: str
    memberships: tuple[MembershipRecord, ...]  # ordered by project id
    is_admin: bool

    def membership(self, slug: str) -> MembershipRecord | None:
        return next((m for m in self.memberships if m.slug == slug), None)


@dataclass(frozen=True)
class CreatedKey:
    id: int
    project_id: int
    name: str
    prefix: str
    scopes: list[str]
    secret: str  # shown once, never stored


def get_project_by_slug(session: Session, slug: str) -> Project | None:
    return session.scalars(select(Project).where(Project.slug == slug)).one_or_none()


def create_project(session: Session, slug: str, name: str | None = None) -> Project:
    project = Project(slug=slug, name=name or slug)
    session.add(project)
    session.flush()
    return project


def create_api_key(
    session: Session, project_id: int, *, name: str, scopes: list[str], secret: str | None = None,
    created_by: int | None = None,
) -> CreatedKey:
    secret = secret or security.generate_api_key()
    row = ApiKey(
        project_id=project_id, name=name, prefix=security.key_prefix(secret),
        key_hash=security.hash_key(secret), scopes=sorted(scopes), created_by=created_by,
        created_by_member=created_by is not None,
    )
    session.add(row)
    session.flush()
    return CreatedKey(row.id, project_id, name, row.prefix, row.scopes, secret)


def find_key(session: Session, secret: str) -> KeyRecord | None:
    """The unrevoked key with this secret (with its creator's current role), or None."""
    row = session.execute(
        select(ApiKey.id, ApiKey.project_id, Project.slug, ApiKey.scopes, ApiKey.prefix, ApiKey.created_by,
               Membership.role, ApiKey.created_by_member)
        .join(Project, Project.id == ApiKey.project_id)
        .outerjoin(Membership, (Membership.user_id == ApiKey.created_by) & (Membership.project_id == ApiKey.project_id))
        .where(ApiKey.key_hash == security.hash_key(secret), ApiKey.revoked_at.is_(None))
    ).one_or_none()
    if row is None:
        return None
    return KeyRecord(row.id, row.project_id, row.slug, frozenset(row.scopes), row.prefix, row.created_by, row.role,
                     row.created_by_member)


def touch_key(session: Session, key_id: int) -> None:
    """Records that the key was used; at most one write per key and minute."""
    session.execute(
        update(ApiKey).where(ApiKey.id == key_id, or_(ApiKey.last_used_at.is_(None),
                                                       ApiKey.last_used_at < func.now() - text("interval '1 minute'")))
        .values(last_used_at=func.now())
    )


def revoke_project_key(session: Session, project_id: int, key_id: int) -> ApiKey | None:
    """Revoke one key of this project (None: no such key here)."""
    row = session.get(ApiKey, key_id)
    if row is None or row.project_id != project_id:
        return None
    row.revoked_at = row.revoked_at or datetime.now(timezone.utc)
    session.flush()
    return row


def list_keys(session: Session, project_id: int | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.id)
    if project_id is not None:
        query = query.where(ApiKey.project_id == project_id)
    return list(session.scalars(query))


def revoke_key(session: Session, key_id_or_prefix: str) -> ApiKey | None:
    """Revoke by numeric id or by visible prefix; returns the key, or None when nothing matched."""
    clause = ApiKey.id == int(key_id_or_prefix) if key_id_or_prefix.isdigit() else ApiKey.prefix == key_id_or_prefix
    rows = list(session.scalars(select(ApiKey).where(clause)))
    if len(rows) != 1:
        return None
    rows[0].revoked_at = rows[0].revoked_at or datetime.now(timezone.utc)
    session.flush()
    return rows[0]


def create_user(session: Session, email: str, password: str, *, is_admin: bool = False) -> User:
    user = User(email=email.strip().lower(), password_hash=security.hash_password(password), is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def add_membership(session: Session, user_id: int, project_id: int, role: str = "admin") -> None:
    session.add(Membership(user_id=user_id, project_id=project_id, role=role))
    session.flush()


def authenticate_user(session: Session, email: str, password: str) -> User | None:
    if "\x00" in email:  # PostgreSQL text cannot hold NUL, so no such user; do not send it
        security.verify_password(_dummy_hash(), password)
        return None
    user = session.scalars(select(User).where(User.email == email.strip().lower())).one_or_none()
    if user is None:
        # Spend the same time as a real check so response time does not reveal which emails exist.
        security.verify_password(_dummy_hash(), password)
        return None
    return user if security.verify_password(user.password_hash, password) else None


def create_user_session(session: Session, user_id: int, *, days: int) -> str:
    token = security.generate_token()
    session.add(UserSession(
        token_hash=security.hash_token(token), user_id=user_id,
        expires_at=datetime.now(timezone.utc) + timedelta(days=days),
    ))
    session.flush()
    return token


def find_session_user(session: Session, token: str) -> UserRecord | None:
    row = session.execute(
        select(User).join(UserSession, UserSession.user_id == User.id).where(
            UserSession.token_hash == security.hash_token(token),
            UserSession.expires_at > datetime.now(timezone.utc),
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return UserRecord(row.id, row.email, user_memberships(session, row.id), row.is_admin)


def user_memberships(session: Session, user_id: int) -> tuple[MembershipRecord, ...]:
    rows = session.execute(
        select(Membership.project_id, Project.slug, Membership.role)
        .join(Project, Project.id == Membership.project_id)
        .where(Membership.user_id == user_id).order_by(Membership.project_id)
    )
    return tuple(MembershipRecord(r.project_id, r.slug, r.role) for r in rows)


def delete_user_session(session: Session, token: str) -> None:
    session.execute(
        update(UserSession).where(UserSession.token_hash == security.hash_token(token))
        .values(expires_at=datetime.now(timezone.utc))
    )


@functools.cache
def _dummy_hash() -> str:
    return security.hash_password("causeline-timing-equalizer")
