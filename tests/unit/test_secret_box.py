"""Alert channel secrets encrypted at rest (alerts/secret_box.py): sealing, rotation, a wrong key,
rows stored before encryption, the generated key file, and the setting's validation."""

from __future__ import annotations

import os
import stat

import pytest
from pydantic import ValidationError

from alerts.secret_box import PREFIX, SecretBox, SecretBoxError, key_file
from core.settings import Settings

# Fixed keys: test ids are built from them, and pytest-xdist workers must collect the same ids.
OLD = "Y2F1c2VsaW5lLXNlY3JldC1ib3gtdGVzdC1rZXktMDE="
NEW = "Y2F1c2VsaW5lLXNlY3JldC1ib3gtdGVzdC1rZXktMDI="


@pytest.mark.parametrize("secret", ["whsec_abc", "https://hooks.slack.com/services/T0/B0/xyz", "R0UT1NG", "ü €", ""])
def test_sealed_secrets_open_to_what_went_in_and_do_not_show_it(secret):
    box = SecretBox.from_settings(Settings(secrets_key=NEW))
    sealed = box.seal(secret)
    assert sealed.startswith(PREFIX) and (not secret or secret not in sealed)
    assert box.open(sealed) == secret and box.is_sealed(sealed)
    assert box.seal(secret) != sealed  # a fresh IV each time: equal secrets are not recognisable


@pytest.mark.parametrize(("stored_with", "read_with", "opens"), [
    (OLD, f"{NEW},{OLD}", True),   # rotation: the old key still decrypts after the new one
    (NEW, f"{NEW},{OLD}", True),
    (OLD, NEW, False),             # the old key dropped too early
], ids=["old-key-kept-after-new", "new-key", "old-key-dropped"])
def test_rotation_and_a_wrong_key(stored_with, read_with, opens):
    sealed = SecretBox.from_settings(Settings(secrets_key=stored_with)).seal("whsec_x")
    reader = SecretBox.from_settings(Settings(secrets_key=read_with))
    if opens:
        assert reader.open(sealed) == "whsec_x"
    else:
        with pytest.raises(SecretBoxError, match="cannot be decrypted with the configured secrets_key"):
            reader.open(sealed)


def test_the_first_key_encrypts():
    sealed = SecretBox.from_settings(Settings(secrets_key=f"{NEW},{OLD}")).seal("s")
    assert SecretBox.from_settings(Settings(secrets_key=NEW)).open(sealed) == "s"


@pytest.mark.parametrize("stored", [None, "whsec_plain_from_before_0029"])
def test_values_stored_before_encryption_are_read_as_they_are(stored):
    box = SecretBox.from_settings(Settings(secrets_key=NEW))
    assert box.open(stored) == stored and box.is_sealed(stored) is (stored is None)


def test_without_the_setting_a_private_key_file_is_made_once_in_home(tmp_path):
    home = tmp_path / "home"
    settings = Settings(secrets_key=None, home=home)
    sealed = SecretBox.from_settings(settings).seal("whsec_y")
    path = home / "secrets.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert SecretBox.from_settings(settings).open(sealed) == "whsec_y"  # the same key, read back
    assert key_file(home) == path.read_bytes().strip() and sorted(p.name for p in home.iterdir()) == ["secrets.key"]


@pytest.mark.parametrize(("value", "message"), [
    ("not-a-key", "key 1 is not a Fernet key"),
    (f"{NEW},short", "key 2 is not a Fernet key"),
    (" , ", "secrets_key is empty"),
], ids=["not-a-key", "second-key-short", "empty"])
def test_a_bad_key_stops_the_settings(value, message):
    with pytest.raises(ValidationError, match=message):
        Settings(secrets_key=value)
