"""Where credentials travel: key headers and the UI's cookies (names defined here only)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

SESSION_COOKIE = "causeline_session"
PROJECT_COOKIE = "causeline_project"  # the project last chosen in the UI with ?project=
KEY_HEADER = "x-causeline-key"
MAX_KEY_CHARS = 256


class BadCredentials(Exception):
    """A credential header is present but malformed: a 401 with this message."""


@dataclass(frozen=True)
class Credentials:
    api_key: str | None
    session_token: str | None
    remembered_project: str | None


def plausible_key(secret: str) -> bool:
    """Could this be an API key at all? Empty, overlong or non-printable-ASCII values are refused
    before any hashing or query (and never reach a cache)."""
    return 0 < len(secret) <= MAX_KEY_CHARS and secret.isascii() and secret.isprintable()


def api_key(authorization: str | None, x_key: str | None) -> str | None:
    """The key from `Authorization: Bearer <key>` or `x-causeline-key: <key>`; None when neither
    header is sent. A header that is sent but malformed raises BadCredentials saying why."""
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise BadCredentials("the Authorization header must be 'Bearer <api key>'")
        key = value.strip()
        if not key:
            raise BadCredentials("the Authorization header has the Bearer scheme but no key")
    elif x_key is not None:
        key = x_key.strip()
        if not key:
            raise BadCredentials(f"the {KEY_HEADER} header is empty")
    else:
        return None
    if not plausible_key(key):
        raise BadCredentials("malformed API key: expected up to 256 printable ASCII characters")
    return key


def from_request(conn: HTTPConnection) -> Credentials:
    """Raises BadCredentials for a malformed key header."""
    key = api_key(conn.headers.get("authorization"), conn.headers.get(KEY_HEADER))
    return Credentials(key, conn.cookies.get(SESSION_COOKIE) or None, conn.cookies.get(PROJECT_COOKIE) or None)
