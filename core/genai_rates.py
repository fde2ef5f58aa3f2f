"""genai-prices bridge: the list-price cost of a model call, or None.

Pure logic, no I/O. `genai_cost` prices (provider, models, billable tokens,
start) from the genai-prices data; core.pricing calls it once per model-call
span without a matching override, so the (provider, model) resolution is
cached here, including misses. Also holds the provider-id mapping, the usage
genai-prices is given, and the fast-path precomputation below.

Speed: a genai-prices `calc_price` call costs 50-90 us, too much for the ingest
hot path. For each ModelPrice of a resolved model, `_fast_price` works out once
what `ModelPrice.calc_price` computes for our usage shape (which price applies
to which token kind, per-request fees, and the rates of each tier range);
`_fast_cost` then replays the same Decimal operations in the same order, so the
cost is identical. Prices selected by time (start dates, deepseek's off-peak
hours) keep the fast path: it is keyed by the ModelPrice object genai-prices
selects for the span's start. Anything else (prices calc_price would reject,
rewritten usage, non-int counts) takes the slow path, calc_price itself, and so
does everything when the installed genai-prices is not a version the fast path
was checked against (FAST_PATH_TESTED_VERSIONS).
"""

from __future__ import annotations

import threading

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import NamedTuple

import genai_prices
from genai_prices import Usage
from genai_prices.data_snapshot import DataSnapshot, find_provider_by_id, get_snapshot
from genai_prices.types import (
    ModelInfo, ModelPrice, Provider, StartDateConstraint, TieredPrices, TimeOfDateConstraint,
)

# The fast path replays genai-prices' internal arithmetic, so it is used only with
# the versions it was checked against: tests/unit/test_pricing.py compares it with
# the public calc_price over the whole catalogue. Any other version (and a
# pre-release, post-release or local build) gets calc_price itself: slower, never
# mispriced. Widen this together with the pin in pyproject.toml, after those tests
# pass with the new version (tests/unit/test_genai_rates.py fails until then).
FAST_PATH_TESTED_VERSIONS = ((0, 2, 3), (0, 2, 4))  # [from, below)


def fast_path_supported(version: str) -> bool:
    """Whether the fast path may mirror genai-prices ``version`` (a plain X.Y.Z in the tested range)."""
    parts = version.split(".")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return False
    low, below = FAST_PATH_TESTED_VERSIONS
    return low <= tuple(int(part) for part in parts) < below


FAST_PATH = fast_path_supported(genai_prices.__version__)
unit_data = None
if FAST_PATH:
    try:  # genai-prices internals the fast path mirrors; without them only speed suffers
        from genai_prices.data_units import unit_data
        from genai_prices.units import UnitDef, UnitRegistry
        from genai_prices.validation import validate_priced_units
    except ImportError:  # pragma: no cover - a tested version has them
        FAST_PATH = False

__all__ = (
    "FAST_PATH",
    "PROVIDER_IDS",
    "BillableTokens",
    "genai_cost",
    "fast_path_supported",
    "genai_provider_id",
    "utc_from_ns",
)

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
# Tokens


class BillableTokens(NamedTuple):
    """Disjoint token counts: each token appears in exactly one field but `reasoning`,
    which is the part of `output` spent on reasoning (for rates that separate it).

    A NamedTuple rather than a frozen dataclass: built once per model call, and
    twice as fast to build.
    """

    uncached_input: int
    cache_read: int
    cache_write: int
    output: int
    reasoning: int

    @property
    def input(self) -> int:
        """All input tokens, cached or not (what genai-prices calls input_tokens)."""
        return self.uncached_input + self.cache_read + self.cache_write


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


# The registry calc_price uses (genai_prices.units._get_registry builds the same).
_REGISTRY = UnitRegistry(unit_data) if FAST_PATH and unit_data is not None else None
_USAGE_KEY_OF_PRICE_KEY: Mapping[str, str] = (
    {} if _REGISTRY is None else {unit.price_key: unit.usage_key for unit in _REGISTRY.units.values()}
)
# Never zero-filled: the counts we report, and "requests" (not a usage key).
_NOT_ZERO_FILLED = frozenset({
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "output_reasoning_tokens", "requests",
})


def _price_sets(model: ModelInfo) -> list[ModelPrice]:
    """Every ModelPrice the model can select (one, or one per ConditionalPrice)."""
    if isinstance(model.prices, list):
        return [conditional.prices for conditional in model.prices]
    return [model.prices]


def _zero_usage(model: ModelInfo) -> Mapping[str, int]:
    """Explicit zeros for the other units this model prices (web searches, audio, ...).

    Telemetry never reports them, and genai-prices infers a missing count as 0
    anyway, but that inference costs about 40% of each calc_price call.
    """
    keys = {
        _USAGE_KEY_OF_PRICE_KEY.get(price_key)
        for price_set in _price_sets(model)
        for price_key, value in vars(price_set).items()
        if value is not None
    }
    return MappingProxyType({key: 0 for key in keys if key is not None and key not in _NOT_ZERO_FILLED})


# Fast path. Our usage (see _genai_usage) split into disjoint kinds: each token
# is in exactly one kind; a per-request fee is billed for one "request".
_UNCACHED_INPUT, _CACHE_READ, _CACHE_WRITE, _PLAIN_OUTPUT, _REASONING, _REQUEST = range(6)
_KIND_COUNT = 6
# The usage keys _genai_usage reports, as sums of kinds. Every other usage key a
# price needs is zero-filled, or (cache/reasoning counts of 0) inferred as 0.
_REPORTED_KINDS: Mapping[str, tuple[int, ...]] = MappingProxyType({
    "input_tokens": (_UNCACHED_INPUT, _CACHE_READ, _CACHE_WRITE),
    "cache_read_tokens": (_CACHE_READ,),
    "cache_write_tokens": (_CACHE_WRITE,),
    "output_tokens": (_PLAIN_OUTPUT, _REASONING),
    "output_reasoning_tokens": (_REASONING,),
})
_REQUESTS_USAGE_KEY = "requests"  # calc_price bills 1 of it per call
# calc_price rewrites the usage of these (provider id, model id) (minimum billed audio).
_USAGE_REWRITTEN = frozenset({("groq", "whisper-large-v3"), ("groq", "whisper-large-v3-turbo")})

# One term of calc_price's sum: (price, unit.per, the kinds whose counts make up the unit's leaf count).
_Term = tuple[Decimal, Decimal, tuple[int, ...]]
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class _FastPrice:
    """What `ModelPrice.calc_price` computes for our usage shape, worked out once.

    Tiers apply to all tokens of a unit once the input tokens (cache included)
    exceed the tier's start, so the terms are constant between two tier starts:
    `terms[bisect_left(thresholds, input_tokens)]` applies (one entry without tiers).
    """

    price: ModelPrice  # the ModelPrice this was built from (identity check)
    thresholds: tuple[int, ...]  # sorted distinct tier starts, in input tokens
    terms: tuple[tuple[_Term, ...], ...]  # len(thresholds) + 1 entries


def _fast_price(price: ModelPrice, zero_usage: Mapping[str, int]) -> _FastPrice | None:
    """The fast path for one ModelPrice, or None (slow path: calc_price itself).

    ModelPrice.calc_price adds `price * leaf count / unit.per` over the priced
    units, in the order of the ModelPrice's attributes. A unit's leaf count is
    its usage minus the leaf counts of its priced descendants (genai_prices.
    decompose.compute_leaf_values): e.g. input minus cache reads and writes when
    those have their own price, else cache tokens are billed as input. For our
    usage each leaf is a sum of disjoint kinds, which is worked out here.

    None for whatever calc_price would warn about or reject, or could reject for
    some counts (a leaf that can go negative), and for usage keys we do not fill
    in: the slow path then gives calc_price's own answer or error.
    """
    if _REGISTRY is None or type(price) is not ModelPrice:
        return None
    priced: list[tuple[UnitDef, Decimal | TieredPrices]] = []
    for price_key, value in vars(price).items():
        if price_key.startswith("_") or value is None:
            continue
        try:
            unit = _REGISTRY.unit_for_price_key(price_key)
        except KeyError:
            return None  # calc_price warns and skips the key
        if not _valid_price(value):
            return None  # calc_price raises
        priced.append((unit, value))
    try:
        validate_priced_units([unit for unit, _ in priced], _REGISTRY)
    except ValueError:
        return None

    # compute_leaf_values, on kind coefficients instead of counts.
    token_units = sorted(
        (unit for unit, _ in priced if unit.usage_key != _REQUESTS_USAGE_KEY),
        key=lambda unit: (-len(unit.dimensions), unit.usage_key),
    )
    leaves: dict[str, list[int]] = {}
    for unit in token_units:
        leaf = [0] * _KIND_COUNT
        if unit.usage_key in _REPORTED_KINDS:
            for kind in _REPORTED_KINDS[unit.usage_key]:
                leaf[kind] = 1
        elif unit.usage_key not in zero_usage:
            return None  # genai-prices would infer it: not a case we model
        for other in token_units:
            if other is not unit and unit.dimensions.items() <= other.dimensions.items():
                leaf = [mine - theirs for mine, theirs in zip(leaf, leaves[other.usage_key], strict=True)]
        if any(coefficient not in (0, 1) for coefficient in leaf):
            return None  # a leaf that can go negative, or counts a token twice
        leaves[unit.usage_key] = leaf

    kinds_of_terms: list[tuple[Decimal | TieredPrices, Decimal, tuple[int, ...]]] = []
    for unit, value in priced:
        if unit.usage_key == _REQUESTS_USAGE_KEY:
            kinds: tuple[int, ...] = (_REQUEST,)
        else:
            kinds = tuple(kind for kind, coefficient in enumerate(leaves[unit.usage_key]) if coefficient)
        if kinds:  # a leaf that is always 0 adds exactly 0
            # Decimal(per): what `/ per` converts the int to anyway, done once.
            kinds_of_terms.append((value, Decimal(unit.per), kinds))

    thresholds = tuple(sorted({
        tier.start for value, _, _ in kinds_of_terms if isinstance(value, TieredPrices) for tier in value.tiers
    }))
    # An input count in each range between thresholds: 0, then each threshold + 1.
    samples = (0, *(threshold + 1 for threshold in thresholds))
    terms = tuple(
        tuple((_tier_price(value, input_tokens), per, kinds) for value, per, kinds in kinds_of_terms)
        for input_tokens in samples
    )
    return _FastPrice(price, thresholds, terms)


def _valid_price(value: object) -> bool:
    """genai_prices.types._validate_model_price_value, as a predicate."""
    if isinstance(value, TieredPrices):
        starts = [tier.start for tier in value.tiers]
        return (
            all(type(start) is int and start >= 0 for start in starts)
            and starts == sorted(starts)
            and all(_valid_price(tier.price) for tier in value.tiers)
            and _valid_price(value.base)
        )
    return isinstance(value, Decimal) and value.is_finite() and value >= 0


def _tier_price(value: Decimal | TieredPrices, input_tokens: int) -> Decimal:
    """The rate genai_prices.types.calc_unit_price applies for this many input tokens."""
    if not isinstance(value, TieredPrices):
        return value
    for tier in reversed(value.tiers):
        if input_tokens > tier.start:
            return tier.price
    return value.base


def _kind_counts(tokens: BillableTokens) -> tuple[int, ...] | None:
    """Counts per kind (indexed by _UNCACHED_INPUT etc.), or None unless plain non-negative ints.

    Usage validates its values (and floats take other arithmetic), so anything
    unusual goes down the slow path. uncached_input >= 0 and output >= reasoning
    by construction of BillableTokens.
    """
    uncached, read, write, output, reasoning = tokens
    if not (type(uncached) is type(read) is type(write) is type(output) is type(reasoning) is int):
        return None
    if read < 0 or write < 0 or reasoning < 0:
        return None
    return (uncached, read, write, output - reasoning, reasoning, 1)


def _fast_cost(fast: _FastPrice, counts: tuple[int, ...]) -> Decimal:
    """`calc_price(...).total_price`, replayed: the same Decimal operations in the same order.

    Terms whose count is 0 are skipped: they add exactly 0, and Decimal results
    depend on operand values only, so the sum is unchanged even where the
    context rounds.
    """
    terms = fast.terms[0]
    if fast.thresholds:  # tiers go by all input tokens, cache included (calc_unit_price)
        input_tokens = counts[_UNCACHED_INPUT] + counts[_CACHE_READ] + counts[_CACHE_WRITE]
        terms = fast.terms[bisect_left(fast.thresholds, input_tokens)]
    total = _ZERO
    for price, per, kinds in terms:
        count = 0
        for kind in kinds:
            count += counts[kind]
        if count:
            total += price * count / per
    return total


_US_PER_DAY = 86_400_000_000


@dataclass(frozen=True, slots=True)
class _PriceSchedule:
    """Which ModelPrice `ModelInfo.get_prices` selects, by the UTC day and time of day.

    Start-date constraints compare the UTC date, time-of-day ones the UTC time,
    so the selection is constant between the dates and times where one of them
    flips: `prices[bisect_right(days, day)][bisect_right(times, time_of_day)]`.
    Spares a datetime and get_prices (~1 us) per span of such models.
    """

    days: tuple[int, ...]  # sorted distinct start dates, in days since the epoch
    times: tuple[int, ...]  # sorted distinct window edges, in UTC microseconds into the day
    prices: tuple[tuple[ModelPrice, ...], ...]

    def price_at(self, start_ns: int) -> ModelPrice:
        day, time_of_day = divmod(start_ns // 1000, _US_PER_DAY)
        return self.prices[bisect_right(self.days, day)][bisect_right(self.times, time_of_day)]


def _price_schedule(model: ModelInfo) -> _PriceSchedule | None:
    """The schedule of a model with conditional prices, or None (get_prices per span)."""
    if not isinstance(model.prices, list):
        return None
    days: set[int] = set()
    times: set[int] = set()
    for conditional in model.prices:
        constraint = conditional.constraint
        if constraint is None:
            continue
        if type(constraint) is StartDateConstraint and type(constraint.start_date) is date:
            days.add((constraint.start_date - _EPOCH.date()).days)
        elif type(constraint) is TimeOfDateConstraint:
            times.update(_utc_microsecond_of_day(moment) for moment in (constraint.start_time, constraint.end_time))
        else:
            return None
    day_edges, time_edges = tuple(sorted(days)), tuple(sorted(times))
    # get_prices itself decides, at an instant in each range: before the first
    # edge, then at each edge (a range before a time edge at 00:00 is empty).
    day_samples = (day_edges[0] - 1, *day_edges) if day_edges else (0,)
    time_samples = (0, *time_edges)
    try:
        prices = tuple(
            tuple(model.get_prices(_EPOCH + timedelta(days=day, microseconds=micros)) for micros in time_samples)
            for day in day_samples
        )
    except OverflowError:  # a start date next to date.min / date.max
        return None
    return _PriceSchedule(day_edges, time_edges, prices)


def _utc_microsecond_of_day(moment: time) -> int:
    # As TimeOfDateConstraint reads it: naive is UTC, an offset applies as on 1970-01-01.
    if moment.tzinfo is not None:
        moment = datetime.combine(date(1970, 1, 1), moment).astimezone(UTC).time()
    return ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1_000_000 + moment.microsecond


@dataclass(frozen=True, slots=True)
class _GenaiModel:
    provider: Provider
    model: ModelInfo
    zero_usage: Mapping[str, int]
    fast: Mapping[int, _FastPrice]  # by id() of the model's ModelPrice objects that have a fast path
    schedule: _PriceSchedule | None  # for conditional prices by date / time of day


def _fast_prices(provider: Provider, model: ModelInfo, zero_usage: Mapping[str, int]) -> Mapping[int, _FastPrice]:
    if not FAST_PATH or (provider.id, model.id) in _USAGE_REWRITTEN:
        return MappingProxyType({})
    fast = {}
    for price in _price_sets(model):
        found = _fast_price(price, zero_usage)
        if found is not None:
            fast[id(price)] = found
    return MappingProxyType(fast)


class _ModelResolver:
    """Bounded cache of (genai provider id, model name) -> genai-prices model, misses included.

    Which model a name refers to does not depend on time (prices do, and are
    resolved per call from the span's timestamp), so caching the resolution is
    safe. genai-prices caches hits itself but rescans every model on each miss
    (~55 us) and its caches grow with every distinct name; model names come
    from untrusted telemetry, so this cache is bounded and cleared when full.
    The fast-path terms live in the entries, so they are bounded with them.
    It is also dropped when genai-prices switches snapshot (UpdatePrices).
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._max_entries = max_entries
        self._snapshot: DataSnapshot | None = None
        self._entries: dict[tuple[str | None, str], _GenaiModel | None] = {}
        # The collector prices from many threads: the snapshot check, the reset and the
        # insertion happen under this lock (the slow lookup itself does not hold it).
        self._lock = threading.Lock()

    def resolve(self, provider_id: str | None, model: str) -> _GenaiModel | None:
        snapshot = get_snapshot()
        key = (provider_id, model.lower())
        with self._lock:
            if snapshot is not self._snapshot:
                self._entries = {}
                self._snapshot = snapshot
            found = self._entries.get(key, _MISSING)
        if found is not _MISSING:
            return found
        found = _find_provider_model(snapshot, provider_id, key[1])
        with self._lock:
            if snapshot is self._snapshot:  # not resolved against a snapshot replaced meanwhile
                if len(self._entries) >= self._max_entries:
                    self._entries = {}
                self._entries[key] = found
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries = {}
            self._snapshot = None


_MISSING = object()


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
    zero_usage = _zero_usage(model)
    return _GenaiModel(provider, model, zero_usage, _fast_prices(provider, model, zero_usage), _price_schedule(model))


_resolver = _ModelResolver()


def utc_from_ns(ns: int) -> datetime:
    """Unix nanoseconds as an aware UTC datetime (microsecond precision, no float)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def genai_cost(provider: str | None, models: Sequence[str], tokens: BillableTokens, start_ns: int) -> Decimal | None:
    """The genai-prices cost at `start_ns` for the first of `models` it prices, unquantized; None if none."""
    provider_id = genai_provider_id(provider)
    counts = _kind_counts(tokens)
    when: datetime | None = None  # only built when needed (~1 us)
    for model in models:
        resolved = _resolver.resolve(provider_id, model)
        if resolved is None:
            continue
        # The price calc_price would select: the same object, as no price_context is given.
        price = resolved.model.prices
        if not isinstance(price, ModelPrice):
            if resolved.schedule is not None:
                price = resolved.schedule.price_at(start_ns)
            else:
                when = when or utc_from_ns(start_ns)
                price = resolved.model.get_prices(when)
        fast = resolved.fast.get(id(price))
        if counts is not None and fast is not None and fast.price is price:
            return _fast_cost(fast, counts)
        when = when or utc_from_ns(start_ns)
        usage = _genai_usage(tokens, resolved.zero_usage)
        try:
            calculation = resolved.model.calc_price(usage, resolved.provider, genai_request_timestamp=when)
        except ValueError:
            # genai-prices rejects usage it cannot decompose for this model's
            # price units; try the other model name, else leave unpriced.
            continue
        return calculation.total_price
    return None
