"""Secrets: API keys (random, SHA-256 hashed) and passwords (argon2id).

API keys carry 190 bits of randomness, so a fast hash is safe for them and keeps
the per-request check cheap; human passwords get argon2id, which is slow on purpose.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

KEY_PREFIX = "cl_"
VISIBLE_CHARS = 11  # "cl_" + 8 characters shown in lists and logs
from core.permissions import SCOPES  # noqa: E402,F401 - ingest, read, metrics (the one table)

_hasher = PasswordHasher()


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def key_prefix(key: str) -> str:
    return key[:VISIBLE_CHARS]


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def hash_token(token: str) -> bytes:
    """Session tokens are random too: stored as SHA-256, like keys."""
    return hash_key(token)


def generate_token() -> str:
    return secrets.token_urlsafe(32)


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def parse_scopes(text: str) -> list[str]:
    scopes = sorted({s.strip() for s in text.split(",") if s.strip()})
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ValueError(f"scopes must be a comma-separated subset of {', '.join(SCOPES)}; got {text!r}")
    return scopes
