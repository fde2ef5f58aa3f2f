"""Users and their memberships (roles per project): the Settings page and `causeline users`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core import security
from core.permissions import Role
from db.models import ApiKey, Membership, User, UserSession


class MemberError(ValueError):
    """A membership change that cannot be made, with the reason for a person."""


@dataclass(frozen=True)
class Member:
    user_id: int
    email: str
    role: str
    created_at: datetime


def list_members(session: Session, project_id: int) -> list[Member]:
    rows = session.execute(
        select(User.id, User.email, Membership.role, User.created_at)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.project_id == project_id).order_by(User.email)
    )
    return [Member(r.id, r.email, r.role, r.created_at) for r in rows]


def find_user(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email.strip().lower())).one_or_none()


def add_member(session: Session, project_id: int, email: str, role: Role,
               password: str | None = None) -> tuple[Member, str | None]:
    """Adds `email` to the project with `role`, creating the user if needed. Returns the member and
    the generated password when a new user was created without one (shown once)."""
    email = email.strip().lower()
    if not email or "@" not in email or "\x00" in email or len(email) > 320:
        raise MemberError(f"{email!r} is not an e-mail address")
    generated = None
    user = find_user(session, email)
    if user is None:
        generated = None if password else security.generate_password()
        user = User(email=email, password_hash=security.hash_password(password or generated))
        session.add(user)
        session.flush()
    elif session.get(Membership, (user.id, project_id)) is not None:
        raise MemberError(f"{email} is already a member of this project")
    session.add(Membership(user_id=user.id, project_id=project_id, role=Role(role).value))
    session.flush()
    return Member(user.id, user.email, Role(role).value, user.created_at), generated


def _membership(session: Session, project_id: int, email: str) -> Membership:
    user = find_user(session, email)
    membership = session.get(Membership, (user.id, project_id)) if user else None
    if membership is None:
        raise MemberError(f"{email} is not a member of this project")
    return membership


def _admins(session: Session, project_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Membership).where(
        Membership.project_id == project_id, Membership.role == Role.ADMIN.value)) or 0


def set_role(session: Session, project_id: int, email: str, role: Role) -> tuple[str, str]:
    """Changes the member's role; returns (old, new). The last admin cannot be demoted."""
    membership = _membership(session, project_id, email)
    old = membership.role
    if old == Role.ADMIN.value and role != Role.ADMIN and _admins(session, project_id) <= 1:
        raise MemberError("the project's last admin cannot be demoted; make someone else admin first")
    membership.role = Role(role).value
    session.flush()
    return old, membership.role


def remove_member(session: Session, project_id: int, email: str) -> int:
    """Removes the member and revokes the keys they created in this project (a key never outlives
    its creator's rights). Returns how many keys were revoked. The last admin cannot be removed."""
    membership = _membership(session, project_id, email)
    if membership.role == Role.ADMIN.value and _admins(session, project_id) <= 1:
        raise MemberError("the project's last admin cannot be removed")
    revoked = session.execute(
        update(ApiKey).where(ApiKey.project_id == project_id, ApiKey.created_by == membership.user_id,
                             ApiKey.revoked_at.is_(None))
        .values(revoked_at=datetime.now(timezone.utc))
    ).rowcount
    session.delete(membership)
    session.flush()
    return revoked


def reset_password(session: Session, email: str, password: str | None = None) -> str:
    """Sets a new password (generated when not given) and ends the user's login sessions."""
    user = find_user(session, email)
    if user is None:
        raise MemberError(f"no user {email}")
    password = password or security.generate_password()
    user.password_hash = security.hash_password(password)
    session.execute(update(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at > func.now())
                    .values(expires_at=func.now()))
    session.flush()
    return password


@dataclass(frozen=True)
class SsoMembership:
    """What a single sign-on did to the user's membership of the SSO project."""

    user_id: int | None  # None: the user has no role there now (or never had one) and is refused
    created: bool = False  # the user did not exist before
    old_role: str | None = None
    new_role: str | None = None
    kept: str | None = None  # why the provider's role was not applied (the last admin stays admin)


def sync_sso_member(session: Session, project_id: int, email: str, role: Role | None) -> SsoMembership:
    """Makes the membership follow the identity provider: created with `role` on first sign-in,
    its role changed to `role` on later ones, removed when `role` is None. The project's last
    admin is never demoted or removed this way (same rule as the Settings page)."""
    user = find_user(session, email)
    membership = session.get(Membership, (user.id, project_id)) if user else None
    if role is None:
        if membership is None:
            return SsoMembership(None)
        try:
            remove_member(session, project_id, email)
        except MemberError as exc:
            return SsoMembership(None, old_role=membership.role, kept=str(exc))
        return SsoMembership(None, old_role=membership.role)
    if membership is None:
        member, _ = add_member(session, project_id, email, role)  # a random password nobody knows, if new
        return SsoMembership(member.user_id, created=user is None, new_role=member.role)
    if membership.role == role.value:
        return SsoMembership(user.id, old_role=membership.role, new_role=membership.role)
    try:
        old, new = set_role(session, project_id, email, role)
    except MemberError as exc:
        return SsoMembership(user.id, old_role=membership.role, new_role=membership.role, kept=str(exc))
    return SsoMembership(user.id, old_role=old, new_role=new)
