"""The judge prompts, versioned files: `<name>.v<N>.md`, a `# system` and a `# user` section with
{{placeholders}} (core/judge_evaluators.py fills them). A prompt's text never changes once
released: a new wording is a new version file, so every verdict names the exact prompt that
produced it (`faithfulness@1`)."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from core.judge_evaluators import Prompt, parse_prompt

_FILE = re.compile(r"([a-z_]+)\.v([0-9]+)\.md")


@lru_cache(maxsize=None)
def latest() -> dict[str, Prompt]:
    """Each prompt's newest version, by name."""
    found: dict[str, Prompt] = {}
    for entry in resources.files(__name__).iterdir():
        match = _FILE.fullmatch(entry.name)
        if match is None:
            continue
        name, version = match.group(1), int(match.group(2))
        if name not in found or found[name].version < version:
            found[name] = parse_prompt(name, version, entry.read_text(encoding="utf-8"))
    return found
