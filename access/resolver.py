"""The one resolver: credentials -> Principal for one project, or a Denied saying why."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.permissions import LEGACY_ROLES, ROLE_PERMISSIONS, Principal, Role, key_permissions
from core.settings import Settings
from db.queries.auth import KeyRecord, UserRecord, find_key, find_session_user, get_project_by_slug

from access.credentials import Credentials


class Denied(Exception):
    """401 (who are you?) or 403 (not allowed), with a message saying precisely why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def role_of(text: str | None) -> Role | None:
    if text is None:
        return None
    return LEGACY_ROLES.get(text) or Role(text)


def key_principal(key: KeyRecord) -> Principal:
    creator_role = role_of(key.creator_role)
    return Principal(
        key.project_id, key.project_slug,
        key_permissions(key.scopes, creator_role, has_creator=key.by_member),
        f"key:{key.prefix}", key_id=key.key_id, scopes=key.scopes,
    )


def user_principal(user: UserRecord, wanted: str | None, remembered: str | None) -> Principal:
    """The user in the project asked for (`?project=`), else the one last chosen, else their first."""
    if not user.memberships:
        raise Denied(403, f"user {user.email} is not a member of any project; ask a project admin to add you")
    if wanted:
        membership = user.membership(wanted)
        if membership is None:  # unknown or not a member: one answer, so other slugs stay secret
            raise Denied(403, f"user {user.email} is not a member of project {wanted!r}")
    else:
        membership = (remembered and user.membership(remembered)) or user.memberships[0]
    role = role_of(membership.role)
    return Principal(
        membership.project_id, membership.slug, ROLE_PERMISSIONS[role], f"user:{user.email}", role=role,
        user_id=user.user_id, email=user.email, projects=tuple(m.slug for m in user.memberships),
    )


def open_principal(session: Session, settings: Settings, wanted: str | None) -> Principal:
    """Auth disabled (explicitly configured): everyone is an admin of the bootstrap project."""
    slug = settings.init_project
    if wanted and wanted != slug:
        raise Denied(403, f"auth is disabled: only project {slug!r} is served")
    project = get_project_by_slug(session, slug)
    if project is None:
        raise Denied(503, f"auth is disabled but project {slug!r} does not exist yet; "
                          "run `causeline migrate` / `causeline serve` first")
    return Principal(project.id, slug, ROLE_PERMISSIONS[Role.ADMIN], "open", role=Role.ADMIN, projects=(slug,))


def resolve(session: Session, settings: Settings, creds: Credentials, wanted_project: str | None) -> Principal:
    """A key wins over a login cookie. A key reads only its own project."""
    if settings.auth_disabled:
        return open_principal(session, settings, wanted_project)
    if creds.api_key is not None:
        key = find_key(session, creds.api_key)
        if key is None:
            raise Denied(401, "unknown or revoked API key")
        principal = key_principal(key)
        if wanted_project and wanted_project != key.project_slug:
            raise Denied(403, f"API key {key.prefix}... reads only its own project, not {wanted_project!r}")
        return principal
    if creds.session_token:
        user = find_session_user(session, creds.session_token)
        if user is None:
            raise Denied(401, "the login session has expired or was logged out; log in again")
        return user_principal(user, wanted_project, creds.remembered_project)
    raise Denied(401, "no credentials: send 'Authorization: Bearer <api key>' or "
                      "'x-causeline-key: <api key>', or log in")
