"""Cost of model-call spans: per-project overrides first, then genai-prices.

Pure logic, no I/O. The collector calls `price_span` once per ingested span, so
the genai-prices path caches the (provider, model) resolution, including misses.

Which spans are priced: only model calls (`Span.is_model_call`, i.e. category
`llm` or `embedding`). Agent, workflow and other spans often repeat the usage of
the model calls below them; pricing them would count the same tokens twice in
every rollup (see ARCHITECTURE.md section 3), so they keep cost None / None even
when they carry a model name and token counts.

Order of sources for a model call:
 1. a matching `PriceOverride` effective at the span's start → "override:<id>"
 2. genai-prices at the span's start time → "genai-prices <version>"
 3. the cost the instrumentation reported → "reported"
 4. otherwise cost None → "unpriced" (never a silent zero)
Models are tried served model first (`response_model`), then `request_model`,
within each source: overrides for either model beat genai-prices.

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

Token accounting (conventions.md): input includes cache read/write and output
includes reasoning, so each kind is priced exactly once: uncached input =
input - cache_read - cache_write, clamped at zero; reasoning is billed inside
output at the output rate (genai-prices uses its own reasoning rate for the few
models that have one and bills the rest of the output at the output rate).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from types import MappingProxyType

import genai_prices
from genai_prices import Usage
from genai_prices.data_snapshot import DataSnapshot, find_provider_by_id, get_snapshot
from genai_prices.types import ModelInfo, Provider

from core.span import COST_REPORTED, COST_UNPRICED, Span, Tokens

__all__ = (
    "COST_QUANTUM",
    "GENAI_PRICES_SOURCE",
    "PROVIDER_IDS",
    "BillableTokens",
    "PriceOverride",
    "billable_tokens",
    "genai_provider_id",
    "price_span",
    "price_spans",
    "select_override",
    "span_start",
)

# Money scale of every cost we produce: 1e-10 USD is far below one token of the
# cheapest model (~1e-8 USD), so rounding never hides a priced call.
COST_QUANTUM = Decimal("1e-10")
GENAI_PRICES_SOURCE = f"genai-prices {genai_prices.__version__}"

_PER_MTOK = Decimal(1_000_000)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Our provider names (OTel gen_ai.provider.name after alias normalization) to
# genai-prices provider ids, where genai-prices would not find them by itself.
# Without this "x_ai" is unknown to genai-prices and "azure.ai.openai" silently
# matches the "openai" provider by substring. Names not listed are passed
# through: genai-prices finds exact ids ("openai", "groq", "deepseek", ...) and
# some aliases ("google-vertex", "bedrock"). A provider genai-prices cannot find
# (e.g. "ollama", "ibm.watsonx.ai") leaves the span unpriced: guessing another
# provider's list price for a self-hosted model would invent money.
PROVIDER_IDS: Mapping[str, str] = MappingProxyType({
    "openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "x_ai": "x-ai",
    "mistral_ai": "mistral",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "groq": "groq",
    "perplexity": "perplexity",
})


# ---------------------------------------------------------------------------
# Overrides

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


# ---------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True, slots=True)
class BillableTokens:
    """Disjoint token counts: each token appears in exactly one field but `reasoning`,
    which is the part of `output` spent on reasoning (for rates that separate it)."""

    uncached_input: int
    cache_read: int
    cache_write: int
    output: int
    reasoning: int

    @property
    def input(self) -> int:
        """All input tokens, cached or not (what genai-prices calls input_tokens)."""
        return self.uncached_input + self.cache_read + self.cache_write


def billable_tokens(tokens: Tokens) -> BillableTokens:
    """Split reported counts into disjoint kinds; None counts as 0.

    A total smaller than its parts (input < cache_read + cache_write, or output <
    reasoning) is inconsistent telemetry: the parts are trusted and the uncached
    remainder is clamped at zero rather than going negative.
    """
    cache_read = tokens.cache_read or 0
    cache_write = tokens.cache_write or 0
    reasoning = tokens.reasoning or 0
    uncached_input = max((tokens.input or 0) - cache_read - cache_write, 0)
    output = max(tokens.output or 0, reasoning)
    return BillableTokens(uncached_input, cache_read, cache_write, output, reasoning)


# ---------------------------------------------------------------------------
# genai-prices


def genai_provider_id(provider: str | None) -> str | None:
    """The genai-prices provider id for our provider name (None: let it infer from the model)."""
    if provider is None:
        return None
    key = provider.strip().lower()
    return PROVIDER_IDS.get(key, key)


def _genai_usage(tokens: BillableTokens, zero_usage: Mapping[str, int]) -> Usage:
    # genai-prices wants totals plus breakdowns, the same shape as our
    # convention: input_tokens includes cache tokens, output_tokens includes
    # reasoning; it subtracts the breakdowns itself where the model prices them.
    usage = dict(zero_usage)
    usage["input_tokens"] = tokens.input
    usage["output_tokens"] = tokens.output
    if tokens.cache_read:
        usage["cache_read_tokens"] = tokens.cache_read
    if tokens.cache_write:
        usage["cache_write_tokens"] = tokens.cache_write
    if tokens.reasoning:
        usage["output_reasoning_tokens"] = tokens.reasoning
    return Usage(**usage)


def _price_to_usage_keys() -> Mapping[str, str]:
    try:
        from genai_prices.data_units import unit_data
    except ImportError:  # layout of a future genai-prices: only costs speed
        return {}
    return {raw.get("price_key", usage_key): usage_key for usage_key, raw in unit_data.items()}


_USAGE_KEY_OF_PRICE_KEY = _price_to_usage_keys()
# Never zero-filled: the counts we report, and "requests" (not a usage key).
_NOT_ZERO_FILLED = frozenset({
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "output_reasoning_tokens", "requests",
})


def _zero_usage(model: ModelInfo) -> Mapping[str, int]:
    """Explicit zeros for the other units this model prices (web searches, audio, ...).

    Telemetry never reports them, and genai-prices infers a missing count as 0
    anyway, but that inference costs about 40% of each calc_price call.
    """
    if isinstance(model.prices, list):
        price_sets = [conditional.prices for conditional in model.prices]
    else:
        price_sets = [model.prices]
    keys = {
        _USAGE_KEY_OF_PRICE_KEY.get(price_key)
        for price_set in price_sets
        for price_key, value in vars(price_set).items()
        if value is not None
    }
    return MappingProxyType({key: 0 for key in keys if key is not None and key not in _NOT_ZERO_FILLED})


@dataclass(frozen=True, slots=True)
class _GenaiModel:
    provider: Provider
    model: ModelInfo
    zero_usage: Mapping[str, int]


class _ModelResolver:
    """Bounded cache of (genai provider id, model name) -> genai-prices model, misses included.

    Which model a name refers to does not depend on time (prices do, and are
    resolved per call from the span's timestamp), so caching the resolution is
    safe. genai-prices caches hits itself but rescans every model on each miss
    (~55 us) and its caches grow with every distinct name; model names come
    from untrusted telemetry, so this cache is bounded and cleared when full.
    It is also dropped when genai-prices switches snapshot (UpdatePrices).
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._max_entries = max_entries
        self._snapshot: DataSnapshot | None = None
        self._entries: dict[tuple[str | None, str], _GenaiModel | None] = {}

    def resolve(self, provider_id: str | None, model: str) -> _GenaiModel | None:
        snapshot = get_snapshot()
        if snapshot is not self._snapshot:
            self._entries = {}
            self._snapshot = snapshot
        key = (provider_id, model.lower())
        try:
            return self._entries[key]
        except KeyError:
            pass
        found = _find_provider_model(snapshot, provider_id, key[1])
        if len(self._entries) >= self._max_entries:
            self._entries = {}
        self._entries[key] = found
        return found

    def clear(self) -> None:
        self._entries = {}
        self._snapshot = None


def _find_provider_model(snapshot: DataSnapshot, provider_id: str | None, model_ref: str) -> _GenaiModel | None:
    # Mirrors DataSnapshot.find_provider_model without touching its unbounded caches.
    if provider_id is None:
        provider = next(
            (p for p in snapshot.providers if p.model_match is not None and p.model_match.is_match(model_ref)),
            None,
        )
    else:
        provider = find_provider_by_id(snapshot.providers, provider_id)
    if provider is None:
        return None
    model = provider.find_model(model_ref, all_providers=snapshot.providers)
    if model is None:
        return None
    return _GenaiModel(provider, model, _zero_usage(model))


_resolver = _ModelResolver()


def _genai_cost(provider: str | None, models: Sequence[str], tokens: BillableTokens, when: datetime) -> Decimal | None:
    provider_id = genai_provider_id(provider)
    for model in models:
        resolved = _resolver.resolve(provider_id, model)
        if resolved is None:
            continue
        usage = _genai_usage(tokens, resolved.zero_usage)
        try:
            calculation = resolved.model.calc_price(usage, resolved.provider, genai_request_timestamp=when)
        except ValueError:
            # genai-prices rejects usage it cannot decompose for this model's
            # price units; try the other model name, else leave unpriced.
            continue
        return calculation.total_price
    return None


# ---------------------------------------------------------------------------
# Spans


def span_start(span: Span) -> datetime:
    """The span's start as an aware UTC datetime (microsecond precision, no float)."""
    return _EPOCH + timedelta(microseconds=span.start_ns // 1000)


def _candidate_models(span: Span) -> tuple[str, ...]:
    # The served model is what was billed; the requested one is the fallback.
    models: list[str] = []
    for model in (span.response_model, span.request_model):
        model = (model or "").strip()
        if model and model not in models:
            models.append(model)
    return tuple(models)


def _quantize(amount: Decimal) -> Decimal:
    return amount.quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)


def _priced(span: Span, overrides: Sequence[PriceOverride]) -> tuple[Decimal, str] | None:
    models = _candidate_models(span)
    if not models or not span.tokens.any:
        return None
    tokens = billable_tokens(span.tokens)
    when = span_start(span)
    override = select_override(overrides, span.provider, models, when)
    if override is not None:
        return override.cost(tokens), f"override:{override.id}"
    cost = _genai_cost(span.provider, models, tokens, when)
    if cost is not None:
        return cost, GENAI_PRICES_SOURCE
    return None


def price_span(span: Span, overrides: Sequence[PriceOverride] = ()) -> Span:
    """`span` with cost_usd and cost_source filled in; non-model spans are returned as is."""
    if not span.is_model_call:
        return span
    priced = _priced(span, overrides)
    if priced is not None:
        cost, source = priced
        return dataclasses.replace(span, cost_usd=_quantize(cost), cost_source=source)
    if span.reported_cost_usd is not None:
        return dataclasses.replace(span, cost_usd=_quantize(span.reported_cost_usd), cost_source=COST_REPORTED)
    return dataclasses.replace(span, cost_usd=None, cost_source=COST_UNPRICED)


def price_spans(spans: Iterable[Span], overrides: Sequence[PriceOverride] = ()) -> list[Span]:
    """`price_span` over a batch (one project's overrides)."""
    overrides = tuple(overrides)
    return [price_span(span, overrides) for span in spans]
