"""Alert channels' third-party secrets, encrypted at rest.

A channel's secret (the generic webhook's HMAC key, a Slack webhook URL, a PagerDuty routing key)
has to be read back to be used, so it cannot be hashed like our own keys and passwords. It is
stored as `fernet:<token>` (cryptography's Fernet: AES-128-CBC + HMAC-SHA256), with the key
outside the database: the `secrets_key` setting, or a key file made on first use in the server's
home. A database dump or backup alone then holds no usable secret.

Several comma-separated keys rotate: the first encrypts, every one decrypts.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.settings import Settings

PREFIX = "fernet:"
KEY_FILE = "secrets.key"


class SecretBoxError(Exception):
    """A stored secret that the configured keys cannot open."""


class SecretBox:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    @classmethod
    def from_settings(cls, settings: Settings) -> "SecretBox":
        """The `secrets_key` setting's keys, else the home's key file (made now if missing)."""
        if settings.secrets_key is not None:
            keys = [k.strip().encode() for k in settings.secrets_key.get_secret_value().split(",") if k.strip()]
            try:
                return cls(keys)
            except ValueError as exc:
                raise ValueError(f"CAUSELINE_SECRETS_KEY: not a list of Fernet keys ({exc})") from None
        return cls([key_file(Path(settings.home))])

    def seal(self, secret: str | None) -> str | None:
        if secret is None:
            return None
        return PREFIX + self._fernet.encrypt(secret.encode()).decode()

    def open(self, stored: str | None) -> str | None:
        """The plain secret. A value without the prefix was stored before encryption existed and
        is returned as it is (`seal_stored` rewrites those)."""
        if stored is None or not stored.startswith(PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise SecretBoxError("the channel's secret cannot be decrypted with the configured secrets_key "
                                 "(was the key changed? keep the old key after the new one to rotate)") from None

    def is_sealed(self, stored: str | None) -> bool:
        return stored is None or stored.startswith(PREFIX)


def key_file(home: Path) -> bytes:
    """The key in `home/secrets.key`; when absent, a new one is written to a private temporary
    file and linked into place, so a racing process either wins or reads the winner's whole key."""
    path = home / KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    home.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    temporary = home / f".{KEY_FILE}.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(temporary, path)
    except FileExistsError:
        key = path.read_bytes().strip()
    finally:
        temporary.unlink()
    return key
