"""Per-project price overrides: `PriceOverride`, its validation, and `select_override`.

Pure logic, no I/O. An override is a price in USD per million tokens that a
project sets on top of genai-prices (core.pricing tries overrides first).

Override precedence, among the overrides that match the model (glob, case-
insensitive), the provider (None matches any) and are effective at the span's
start (effective_from <= start < effective_to; effective_to None = open-ended):
 1. an override for the span's provider beats a provider-wide one
 2. more literal characters in the pattern (wildcards `*`, `?`, `[...]` do not
    count), so "gpt-4o-mini*" beats "gpt-4o*"
 3. a pattern without wildcards beats a glob of equal literal length
    ("gpt-4o" beats "gpt-4o*")
 4. later effective_from (a newer price supersedes an overlapping older one)
 5. higher id (deterministic last resort)
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: overrides do not depend on genai-prices
    from core.genai_rates import BillableTokens

__all__ = ("PriceOverride", "select_override")

_PER_MTOK = Decimal(1_000_000)

# Glob syntax of fnmatch: these parts match something other than themselves.
_GLOB_WILDCARD = re.compile(r"\*|\?|\[[^\]]*\]")


@dataclass(frozen=True)
class PriceOverride:
    """A per-project price (USD per million tokens) on top of genai-prices."""

    id: int
    model_pattern: str  # fnmatch glob, case-insensitive, e.g. "gpt-4o*"
    provider: str | None  # our provider name; None matches any provider
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal | None  # None: cache reads cost the input rate
    cache_write_per_mtok: Decimal | None  # None: cache writes cost the input rate
    effective_from: datetime  # tz-aware; inclusive
    effective_to: datetime | None = None  # tz-aware; exclusive; None = open-ended

    def __post_init__(self) -> None:
        if not self.model_pattern:
            raise ValueError("model_pattern must not be empty")
        for name in ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok"):
            _check_rate(name, getattr(self, name))
        _check_aware("effective_from", self.effective_from)
        if self.effective_to is not None:
            _check_aware("effective_to", self.effective_to)
            if self.effective_to <= self.effective_from:
                raise ValueError("effective_to must be after effective_from")

    def is_effective_at(self, when: datetime) -> bool:
        return self.effective_from <= when and (self.effective_to is None or when < self.effective_to)

    def matches(self, provider: str | None, model: str) -> bool:
        if self.provider is not None and (provider is None or provider.lower() != self.provider.lower()):
            return False
        return fnmatch.fnmatchcase(model.lower(), self.model_pattern.lower())

    def specificity(self) -> tuple[bool, int, bool, datetime, int]:
        """Sort key: the largest value wins (rule in the module docstring)."""
        literal_chars = len(_GLOB_WILDCARD.sub("", self.model_pattern))
        has_wildcard = _GLOB_WILDCARD.search(self.model_pattern) is not None
        return (self.provider is not None, literal_chars, not has_wildcard, self.effective_from, self.id)

    def cost(self, tokens: BillableTokens) -> Decimal:
        cache_read_rate = self.input_per_mtok if self.cache_read_per_mtok is None else self.cache_read_per_mtok
        cache_write_rate = self.input_per_mtok if self.cache_write_per_mtok is None else self.cache_write_per_mtok
        # Reasoning is inside `output` and has no rate of its own here.
        micro_usd = (
            tokens.uncached_input * self.input_per_mtok
            + tokens.cache_read * cache_read_rate
            + tokens.cache_write * cache_write_rate
            + tokens.output * self.output_per_mtok
        )
        return micro_usd / _PER_MTOK


def _check_rate(name: str, value: object) -> None:
    if value is None and name.startswith("cache_"):
        return
    # Decimal only: a float rate would make every cost inexact.
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a finite non-negative Decimal, got {value!r}")


def _check_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got {value!r}")


def select_override(
    overrides: Sequence[PriceOverride], provider: str | None, models: Sequence[str], when: datetime
) -> PriceOverride | None:
    """The winning override for the first of `models` that any override matches."""
    for model in models:
        candidates = [o for o in overrides if o.is_effective_at(when) and o.matches(provider, model)]
        if candidates:
            return max(candidates, key=PriceOverride.specificity)
    return None


def pattern_preview(pattern: str, provider: str | None, models: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Which of these (provider, model) pairs a new override would price — shown before saving,
    so `gpt-4o*` visibly catches `gpt-4o-mini` too."""
    probe = PriceOverride(id=0, model_pattern=pattern, provider=provider or None, input_per_mtok=Decimal(0),
                          output_per_mtok=Decimal(0), cache_read_per_mtok=None, cache_write_per_mtok=None,
                          effective_from=datetime(1970, 1, 1, tzinfo=timezone.utc))
    return [(p, m) for p, m in models if probe.matches(p, m)]
