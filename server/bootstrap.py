"""First run: a project, an all-scopes API key and an admin login, from CAUSELINE_INIT_* or generated."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import security
from core.permissions import Role
from core.settings import Settings
from db.models import Project
from db.queries.audit import append
from db.queries.auth import add_membership, create_api_key, create_project, create_user

BOOTSTRAP_ACTOR = "system:first-run"


@dataclass(frozen=True)
class Bootstrap:
    project_slug: str
    api_key: str
    admin_email: str
    admin_password: str
    generated: bool  # True when any secret was generated (so it must be shown once)


def bootstrap(session: Session, settings: Settings) -> Bootstrap | None:
    """Creates the first project, key and login when the database has no project; else None."""
    if session.scalar(select(func.count()).select_from(Project)):
        return None
    project = create_project(session, settings.init_project)
    key = create_api_key(session, project.id, name="initial key", scopes=list(security.SCOPES),
                         secret=settings.init_api_key)
    password = settings.init_admin_password or security.generate_password()
    user = create_user(session, settings.init_admin_email, password, is_admin=True)
    add_membership(session, user.id, project.id, Role.ADMIN)
    # The first key and admin are security-relevant creations like any later one: on the trail.
    for action, target, details in (("project.create", project.slug, {}),
                                    ("key.create", f"{key.prefix} ({key.name})", {"scopes": ",".join(key.scopes)}),
                                    ("member.add", user.email, {"role": Role.ADMIN.value})):
        append(session, project_id=project.id, actor=BOOTSTRAP_ACTOR, action=action, target=target, details=details)
    generated = settings.init_api_key is None or settings.init_admin_password is None
    return Bootstrap(project.slug, key.secret, user.email, password, generated)
