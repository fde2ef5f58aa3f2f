"""Docs that must not drift from the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name):
    env = "DATABASE_URL" if name == "database_url" else f"CAUSELINE_{name.upper()}"
    assert f"`{env}`" in (ROOT / "docs" / "configuration.md").read_text(), f"{env} missing from docs/configuration.md"


def test_readme_starts_with_the_two_commands():
    lines = [line.strip() for line in (ROOT / "README.md").read_text().splitlines()]
    commands = [line for line in lines if line in ("make run", "make test")]
    assert commands[:2] == ["make run", "make test"]
