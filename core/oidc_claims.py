"""Single sign-on: what a verified ID token's claims mean here (who, and with which role).

Pure: the token's signature and its iss/aud/exp/nonce were checked before (web/oidc_client.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.permissions import Role, parse_role


class ClaimRefusal(ValueError):
    """The token is genuine, but its claims do not let this person in; the message says why."""


@dataclass(frozen=True)
class RoleMap:
    """Claim value -> role, in the operator's order (the first entry a user's claim holds wins)."""

    entries: tuple[tuple[str, Role], ...] = ()
    default: Role | None = Role.VIEWER  # for a user whose claim holds no mapped value; None refuses


def parse_role_map(text: str) -> tuple[tuple[str, Role], ...]:
    """"admins=admin, eng=engineer" -> (("admins", admin), ("eng", engineer)). Raises ValueError."""
    entries: list[tuple[str, Role]] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        value, sep, role = item.rpartition("=")
        if not sep or not value.strip():
            raise ValueError(f"role map entry {item!r} is not value=role")
        entries.append((value.strip(), parse_role(role)))
    return tuple(entries)


def parse_default_role(text: str) -> Role | None:
    """A role name, or "none" (users whose claim maps to no role are refused)."""
    return None if text.strip().lower() in ("none", "") else parse_role(text)


def claim_values(claims: dict, claim: str) -> list[str]:
    """The claim's values as strings: a string, a list of strings, absent -> []. A name that is
    not a key is tried as a dotted path into nested objects (e.g. Keycloak's realm_access.roles);
    names holding dots (Auth0's "https://example.com/roles") are keys first."""
    value = claims.get(claim)
    if value is None and "." in claim:
        value = claims
        for part in claim.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def role_for(claims: dict, claim: str, roles: RoleMap) -> Role | None:
    """The role the claim grants. With a map, only the map counts (a group that happens to be
    called "admin" grants nothing unless mapped); without one, a value that is a role name is
    that role. Nothing matched: the default (None refuses)."""
    values = claim_values(claims, claim)
    if roles.entries:
        held = set(values)
        for value, role in roles.entries:
            if value in held:
                return role
        return roles.default
    for value in values:
        try:
            return parse_role(value)
        except ValueError:
            continue
    return roles.default


def verified_email(claims: dict) -> str:
    """The lower-cased e-mail the provider vouches for. Raises ClaimRefusal."""
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or "\x00" in email or len(email) > 320:
        raise ClaimRefusal("The identity provider sent no e-mail address for this account "
                           "(allow the 'email' scope for this client).")
    verified = claims.get("email_verified")
    # Some providers (Amazon Cognito) send the boolean as the string "true".
    if verified is not True and not (isinstance(verified, str) and verified.lower() == "true"):
        raise ClaimRefusal(f"The identity provider has not verified the e-mail address {email.strip().lower()}; "
                           "verify it there, then sign in again.")
    return email.strip().lower()
