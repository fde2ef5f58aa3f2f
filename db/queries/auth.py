"""Projects, API keys, users and UI sessions."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import security
from db.models import ApiKey, Membership, Project, User, UserSession


@dataclass(frozen=True)
class KeyPrincipal:
    key_id: int
    project_id: int
    scopes: frozenset[str]
    prefix: str


@dataclass(frozen=True)
class UserPrincipal:
    user_id: int
    email: str
    project_ids: tuple[int, ...]
    is_admin: bool


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
) -> CreatedKey:
    secret = secret or security.generate_api_key()
    row = ApiKey(
        project_id=project_id, name=name, prefix=security.key_prefix(secret),
        key_hash=security.hash_key(secret), scopes=sorted(scopes),
    )
    session.add(row)
    session.flush()
    return CreatedKey(row.id, project_id, name, row.prefix, row.scopes, secret)


def find_key(session: Session, secret: str) -> KeyPrincipal | None:
    """The unrevoked key with this secret, or None."""
    row = session.scalars(
        select(ApiKey).where(ApiKey.key_hash == security.hash_key(secret), ApiKey.revoked_at.is_(None))
    ).one_or_none()
    if row is None:
        return None
    return KeyPrincipal(row.id, row.project_id, frozenset(row.scopes), row.prefix)


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


def add_membership(session: Session, user_id: int, project_id: int, role: str = "owner") -> None:
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


def find_session_user(session: Session, token: str) -> UserPrincipal | None:
    row = session.execute(
        select(User).join(UserSession, UserSession.user_id == User.id).where(
            UserSession.token_hash == security.hash_token(token),
            UserSession.expires_at > datetime.now(timezone.utc),
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    project_ids = tuple(session.scalars(
        select(Membership.project_id).where(Membership.user_id == row.id).order_by(Membership.project_id)
    ))
    return UserPrincipal(row.id, row.email, project_ids, row.is_admin)


def delete_user_session(session: Session, token: str) -> None:
    session.execute(
        update(UserSession).where(UserSession.token_hash == security.hash_token(token))
        .values(expires_at=datetime.now(timezone.utc))
    )


@functools.cache
def _dummy_hash() -> str:
    return security.hash_password("causeline-timing-equalizer")


@dataclass(frozen=True)
class Principal:
    """Who is asking, and for which project. Every query downstream is scoped by project_id."""

    project_id: int
    scopes: frozenset[str]
    via: str  # "key:<prefix>", "user:<email>" or "open" (auth disabled)


def member_project(session: Session, user: UserPrincipal, slug: str) -> int | None:
    """The id of project `slug` if `user` is a member of it, else None (unknown or not a member:
    the same answer, so slugs of other projects are not revealed)."""
    if not slug or "\x00" in slug:
        return None
    project = get_project_by_slug(session, slug)
    return project.id if project is not None and project.id in user.project_ids else None


def resolve_principal(
    session: Session, *, api_key: str | None, session_token: str | None, project_slug: str | None = None,
) -> Principal | None:
    """A key wins over a cookie; a user sees the requested project if a member, else their first."""
    if api_key:
        key = find_key(session, api_key)
        if key is None:
            return None
        return Principal(key.project_id, key.scopes, f"key:{key.prefix}")
    if session_token:
        user = find_session_user(session, session_token)
        if user is None or not user.project_ids:
            return None
        project_id = user.project_ids[0]
        if project_slug:
            project_id = member_project(session, user, project_slug)
            if project_id is None:
                return None
        return Principal(project_id, frozenset(security.SCOPES), f"user:{user.email}")
    return None


def open_principal(session: Session, project_slug: str) -> Principal | None:
    """With auth disabled, everyone reads the bootstrap project."""
    project = get_project_by_slug(session, project_slug)
    return None if project is None else Principal(project.id, frozenset(security.SCOPES), "open")


def bearer_token(authorization: str | None, x_key: str | None) -> str | None:
    """The key from `Authorization: Bearer <key>` or `x-causeline-key: <key>`."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return x_key.strip() if x_key and x_key.strip() else None
