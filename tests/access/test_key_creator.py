"""A key never outlives its creator's rights, not even when the creator's user row is deleted
(api_keys.created_by is then set NULL, which must not read as "made by the operator")."""

from __future__ import annotations

from sqlalchemy import text

from access.resolver import key_principal
from core.permissions import Permission, Principal, Role
from db.queries.auth import add_membership, create_api_key, create_user, find_key
from pages.settings import DELETED_USER, settings_data
from tests.api.seed import seed_project

ALL = ["ingest", "read", "metrics"]


def test_deleting_the_creator_leaves_the_key_with_nothing(session):
    project = seed_project(session, "acme")
    ann = create_user(session, "ann@example.com", "pw")
    add_membership(session, ann.id, project.id, Role.ENGINEER)
    member_key = create_api_key(session, project.id, name="ann's", scopes=ALL, created_by=ann.id)
    operator_key = create_api_key(session, project.id, name="cli", scopes=ALL)
    session.flush()
    assert Permission.READ in key_principal(find_key(session, member_key.secret)).permissions

    session.execute(text("DELETE FROM users WHERE id = :id"), {"id": ann.id})
    session.flush()
    orphan = find_key(session, member_key.secret)
    assert orphan is not None and orphan.created_by is None  # ON DELETE SET NULL
    assert key_principal(orphan).permissions == frozenset()
    # The operator's key (no creator ever) keeps its scopes.
    assert {Permission.INGEST, Permission.READ, Permission.METRICS} <= key_principal(
        find_key(session, operator_key.secret)).permissions

    admin = Principal(project.id, project.slug, frozenset({Permission.MANAGE_KEYS}), "user:admin@example.com",
                      role=Role.ADMIN)
    listed = {k.name: k.created_by for k in settings_data(session, admin).keys}
    assert listed["ann's"] == DELETED_USER and listed["cli"] is None
