"""core/oidc_claims.py: claims -> e-mail and role, as tables."""

from __future__ import annotations

import pytest

from core.oidc_claims import (
    ClaimRefusal, RoleMap, claim_values, parse_default_role, parse_role_map, role_for, verified_email,
)
from core.permissions import Role

MAP = parse_role_map("admins=admin, eng=engineer,audit=auditor")


@pytest.mark.parametrize("text, expected", [
    ("", ()),
    ("admins=admin", (("admins", Role.ADMIN),)),
    (" admins = Admin , eng=engineer,", (("admins", Role.ADMIN), ("eng", Role.ENGINEER))),
    ("cn=ops=viewer", (("cn=ops", Role.VIEWER),)),  # the last '=' splits
])
def test_parse_role_map(text, expected):
    assert parse_role_map(text) == expected


@pytest.mark.parametrize("text", ["admins", "=admin", "admins=root", "a=admin,b", "cn=ops,dc=x=viewer"])
def test_parse_role_map_refuses(text):
    with pytest.raises(ValueError):
        parse_role_map(text)


@pytest.mark.parametrize("text, expected", [
    ("viewer", Role.VIEWER), ("none", None), ("NONE", None), ("", None), ("Auditor", Role.AUDITOR),
])
def test_parse_default_role(text, expected):
    assert parse_default_role(text) == expected


@pytest.mark.parametrize("claims, claim, expected", [
    ({"groups": ["a", "b"]}, "groups", ["a", "b"]),
    ({"groups": "a"}, "groups", ["a"]),
    ({"groups": ["a", 3, None]}, "groups", ["a"]),
    ({}, "groups", []),
    ({"groups": {"a": 1}}, "groups", []),
    ({"realm_access": {"roles": ["eng"]}}, "realm_access.roles", ["eng"]),
    ({"https://x.example/roles": ["eng"]}, "https://x.example/roles", ["eng"]),
    ({"realm_access": "flat"}, "realm_access.roles", []),
])
def test_claim_values(claims, claim, expected):
    assert claim_values(claims, claim) == expected


@pytest.mark.parametrize("claims, roles, expected", [
    ({"groups": ["eng"]}, RoleMap(MAP), Role.ENGINEER),
    ({"groups": ["eng", "admins"]}, RoleMap(MAP), Role.ADMIN),  # the map's order decides, not the claim's
    ({"groups": ["audit", "eng"]}, RoleMap(MAP), Role.ENGINEER),
    ({"groups": ["sales"]}, RoleMap(MAP), Role.VIEWER),
    ({"groups": ["sales"]}, RoleMap(MAP, default=None), None),
    ({}, RoleMap(MAP, default=None), None),
    ({"groups": ["admin"]}, RoleMap(MAP), Role.VIEWER),  # with a map, an unmapped "admin" group is nothing
    ({"groups": ["admin"]}, RoleMap(), Role.ADMIN),  # without one, role names are themselves
    ({"groups": ["sales", "Engineer"]}, RoleMap(), Role.ENGINEER),
    ({"groups": ["sales"]}, RoleMap(default=Role.AUDITOR), Role.AUDITOR),
])
def test_role_for(claims, roles, expected):
    assert role_for(claims, "groups", roles) == expected


@pytest.mark.parametrize("claims, expected", [
    ({"email": "Ann@Example.com", "email_verified": True}, "ann@example.com"),
    ({"email": "ann@example.com", "email_verified": "true"}, "ann@example.com"),
    ({"email": "ann@example.com", "email_verified": False}, "not verified"),
    ({"email": "ann@example.com", "email_verified": "false"}, "not verified"),
    ({"email": "ann@example.com", "email_verified": 1}, "not verified"),
    ({"email": "ann@example.com"}, "not verified"),
    ({"email_verified": True}, "no e-mail"),
    ({"email": "nobody", "email_verified": True}, "no e-mail"),
    ({"email": ["ann@example.com"], "email_verified": True}, "no e-mail"),
])
def test_verified_email(claims, expected):
    if "@" in expected:
        assert verified_email(claims) == expected
    else:
        with pytest.raises(ClaimRefusal, match=expected):
            verified_email(claims)
