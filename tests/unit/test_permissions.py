"""core/permissions.py: the one table, as tables of cases."""

from __future__ import annotations

import pytest

from core.permissions import (
    ROLE_PERMISSIONS, Permission as P, Principal, Role, denial, grantable_scopes, key_permissions, parse_role,
)

ROLE_CASES = [
    # role, permission, allowed
    (Role.ADMIN, P.MANAGE_MEMBERS, True), (Role.ADMIN, P.READ_AUDIT, True), (Role.ADMIN, P.METRICS, True),
    (Role.ENGINEER, P.READ_CONTENT, True), (Role.ENGINEER, P.MANAGE_KEYS, True), (Role.ENGINEER, P.MANAGE_PRICES, True),
    (Role.ENGINEER, P.MANAGE_MEMBERS, False), (Role.ENGINEER, P.READ_AUDIT, False), (Role.ENGINEER, P.MANAGE_SETTINGS, False),
    (Role.AUDITOR, P.READ_CONTENT, True), (Role.AUDITOR, P.READ_AUDIT, True), (Role.AUDITOR, P.CREATE_REPORTS, True),
    (Role.AUDITOR, P.MANAGE_KEYS, False), (Role.AUDITOR, P.MANAGE_PRICES, False), (Role.AUDITOR, P.MANAGE_MEMBERS, False),
    (Role.AUDITOR, P.INGEST, False),
    (Role.ADMIN, P.MANAGE_ALERTS, True), (Role.ENGINEER, P.MANAGE_ALERTS, True), (Role.AUDITOR, P.MANAGE_ALERTS, False),
    (Role.VIEWER, P.MANAGE_ALERTS, False),
    (Role.VIEWER, P.READ, True), (Role.VIEWER, P.READ_CONTENT, False), (Role.VIEWER, P.MANAGE_KEYS, False),
    (Role.VIEWER, P.READ_AUDIT, False), (Role.VIEWER, P.CREATE_REPORTS, False),
    (Role.ENGINEER, P.WRITE_SCORES, True), (Role.ADMIN, P.WRITE_SCORES, True),
    (Role.AUDITOR, P.WRITE_SCORES, False), (Role.VIEWER, P.WRITE_SCORES, False),
]


@pytest.mark.parametrize("role, permission, allowed", ROLE_CASES)
def test_role_table(role, permission, allowed):
    assert (permission in ROLE_PERMISSIONS[role]) is allowed


def test_every_role_reads():
    assert all(P.READ in perms for perms in ROLE_PERMISSIONS.values())


@pytest.mark.parametrize("scopes, creator, has_creator, expected", [
    ({"ingest"}, None, False, {P.INGEST, P.WRITE_SCORES}),
    ({"read"}, None, False, {P.READ, P.READ_CONTENT}),
    ({"ingest", "read", "metrics"}, None, False, {P.INGEST, P.WRITE_SCORES, P.READ, P.READ_CONTENT, P.METRICS}),
    # Never more than the creator's role:
    ({"ingest", "read", "metrics"}, Role.ENGINEER, True, {P.INGEST, P.WRITE_SCORES, P.READ, P.READ_CONTENT}),
    ({"read"}, Role.VIEWER, True, {P.READ}),  # content masked like its creator's
    ({"ingest"}, Role.AUDITOR, True, set()),
    ({"read"}, None, True, set()),  # creator no longer a member
    ({"bogus"}, None, False, set()),
])
def test_key_permissions_never_exceed_the_creator(scopes, creator, has_creator, expected):
    assert key_permissions(scopes, creator, has_creator=has_creator) == frozenset(expected)


@pytest.mark.parametrize("role, scopes", [
    (Role.ADMIN, ("ingest", "read", "metrics")), (Role.ENGINEER, ("ingest", "read")),
    (Role.AUDITOR, ("read",)), (Role.VIEWER, ()),
])
def test_grantable_scopes(role, scopes):
    assert grantable_scopes(role) == scopes


@pytest.mark.parametrize("text, role", [("admin", Role.ADMIN), (" Viewer ", Role.VIEWER)])
def test_parse_role(text, role):
    assert parse_role(text) is role


def test_parse_role_refuses_unknown():
    with pytest.raises(ValueError, match="role must be one of"):
        parse_role("owner")


def test_denials_explain():
    viewer = Principal(1, "acme", ROLE_PERMISSIONS[Role.VIEWER], "user:v@x", role=Role.VIEWER, email="v@x")
    assert denial(viewer, P.READ) is None
    assert "role 'viewer'" in denial(viewer, P.MANAGE_KEYS)
    key = Principal(1, "acme", frozenset({P.READ, P.READ_CONTENT}), "key:cl_abc", key_id=3, scopes=frozenset({"read"}))
    assert "lacks the 'ingest' scope (it has: read)" in denial(key, P.INGEST)
    capped = Principal(1, "acme", frozenset(), "key:cl_abc", key_id=3, scopes=frozenset({"ingest"}))
    assert "no longer has a role" in denial(capped, P.INGEST)
    assert "never for keys" in denial(key, P.MANAGE_MEMBERS)


@pytest.mark.parametrize("pattern, provider, expected", [
    ("gpt-4o*", None, ["gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-mini"]),
    ("gpt-4o", None, ["gpt-4o"]),
    ("GPT-4O-2024-*", None, ["gpt-4o-2024-08-06"]),
    ("claude*", "openai", []),
    ("claude*", "anthropic", ["claude-3-5-sonnet"]),
])
def test_price_pattern_preview(pattern, provider, expected):
    from core.price_overrides import pattern_preview

    seen = [("openai", "gpt-4o"), ("openai", "gpt-4o-2024-08-06"), ("openai", "gpt-4o-mini"),
            ("anthropic", "claude-3-5-sonnet")]
    assert [m for _, m in pattern_preview(pattern, provider, seen)] == expected
