"""Cost of model-call spans: per-project overrides first, then genai-prices.

Pure logic, no I/O. The collector calls `price_span` once per ingested span, so
the genai-prices path caches the (provider, model) resolution, including misses.
Overrides and their precedence live in core.price_overrides; the genai-prices
bridge (provider ids, resolution cache, fast path) in core.genai_rates.

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

Token accounting (conventions.md): input includes cache read/write and output
includes reasoning, so each kind is priced exactly once: uncached input =
input - cache_read - cache_write, clamped at zero; reasoning is billed inside
output at the output rate (genai-prices uses its own reasoning rate for the few
models that have one and bills the rest of the output at the output rate).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

import genai_prices

from core.genai_rates import PROVIDER_IDS, BillableTokens, genai_cost, genai_provider_id, utc_from_ns
from core.price_overrides import PriceOverride, select_override
from core.span import COST_REPORTED, COST_UNPRICED, Span, Tokens

__all__ = (
    "COST_ERROR_ATTR",
    "COST_QUANTUM",
    "MAX_SPAN_COST_USD",
    "GENAI_PRICES_SOURCE",
    "PROVIDER_IDS",
    "BillableTokens",
    "PriceOverride",
    "billable_tokens",
    "genai_provider_id",
    "price_span",
    "price_call",
    "price_spans",
    "select_override",
    "span_start",
)

# Money scale of every cost we produce: 1e-10 USD is far below one token of the
# cheapest model (~1e-8 USD), so rounding never hides a priced call.
COST_QUANTUM = Decimal("1e-10")
# A single model call costing more than this is garbage telemetry, not a bill; it also keeps
# every stored cost and its rollup sums far inside numeric(20,10).
MAX_SPAN_COST_USD = Decimal(10) ** 6
COST_ERROR_ATTR = "causeline.cost_error"
GENAI_PRICES_SOURCE = f"genai-prices {genai_prices.__version__}"


# ---------------------------------------------------------------------------
# Tokens


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
# Spans


def span_start(span: Span) -> datetime:
    """The span's start as an aware UTC datetime (microsecond precision, no float)."""
    return utc_from_ns(span.start_ns)


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
    reported = span.tokens
    # `reported.input is None and`: spares the common case Tokens.any's generator (~0.4 us).
    if not models or (reported.input is None and not reported.any):
        return None
    tokens = billable_tokens(reported)
    if overrides:
        override = select_override(overrides, span.provider, models, span_start(span))
        if override is not None:
            return override.cost(tokens), f"override:{override.id}"
    cost = genai_cost(span.provider, models, tokens, span.start_ns)
    if cost is not None:
        return cost, GENAI_PRICES_SOURCE
    return None


# dataclasses.replace(span, cost_usd=..., cost_source=...) costs ~9 us for our
# 31 fields, mostly in its generic loop over them; reading the fields before the
# cost with one attrgetter and calling the constructor positionally does the
# same in ~3.5 us (__init__ and __post_init__ still run). That needs every field
# to be positional and the cost fields last, as checked here.
_COST_FIELDS = ("cost_usd", "cost_source", "reported_cost_usd")
_SPAN_FIELDS = dataclasses.fields(Span)
_SPAN_POSITIONAL = (
    all(field.init and not field.kw_only for field in _SPAN_FIELDS)
    and tuple(field.name for field in _SPAN_FIELDS[-len(_COST_FIELDS):]) == _COST_FIELDS
)
_leading_span_values = operator.attrgetter(*(field.name for field in _SPAN_FIELDS[:-len(_COST_FIELDS)]))


def _with_cost(span: Span, cost: Decimal | None, source: str) -> Span:
    """`dataclasses.replace(span, cost_usd=cost, cost_source=source)`, faster."""
    if type(span) is not Span or not _SPAN_POSITIONAL:
        return dataclasses.replace(span, cost_usd=cost, cost_source=source)
    return Span(*_leading_span_values(span), cost, source, span.reported_cost_usd)


def price_span(span: Span, overrides: Sequence[PriceOverride] = ()) -> Span:
    """`span` with cost_usd and cost_source filled in; non-model spans are returned as is.

    Never raises: a cost that cannot be computed, or one beyond MAX_SPAN_COST_USD (garbage
    token counts, a broken override), leaves the span "unpriced" with the reason in its
    causeline.cost_error attribute."""
    if not span.is_model_call:
        return span
    try:
        priced = _priced(span, overrides)
        if priced is not None:
            cost, source = priced
        elif span.reported_cost_usd is not None:
            cost, source = span.reported_cost_usd, COST_REPORTED
        else:
            return _with_cost(span, None, COST_UNPRICED)
        if not cost.is_finite() or cost < 0:
            return _unpriced(span, f"{source} gave an invalid cost ({cost})")
        if cost > MAX_SPAN_COST_USD:
            return _unpriced(span, f"{source} cost {cost:.2f} USD exceeds the per-span limit of "
                                   f"{MAX_SPAN_COST_USD} USD (implausible token counts?)")
        return _with_cost(span, _quantize(cost), source)
    except Exception as exc:  # noqa: BLE001 - pricing one span must never fail an ingest batch
        try:
            return _unpriced(span, f"pricing failed: {type(exc).__name__}: {str(exc)[:200]}")
        except Exception:  # noqa: BLE001 - e.g. a span we cannot even copy
            return span


def _unpriced(span: Span, reason: str) -> Span:
    attributes = dict(span.attributes) if isinstance(span.attributes, Mapping) else {}
    attributes[COST_ERROR_ATTR] = reason
    return dataclasses.replace(span, attributes=attributes, cost_usd=None, cost_source=COST_UNPRICED)


def price_spans(spans: Iterable[Span], overrides: Sequence[PriceOverride] = ()) -> list[Span]:
    """`price_span` over a batch (one project's overrides)."""
    overrides = tuple(overrides)
    return [price_span(span, overrides) for span in spans]


def price_call(provider: str | None, model: str, input_tokens: int | None, output_tokens: int | None,
               start_ns: int) -> Decimal | None:
    """What a call Causeline makes itself (the judge, a replay) cost by genai-prices; None when the
    model is unknown or a count is missing (recorded unpriced, never as a zero)."""
    if input_tokens is None or output_tokens is None or not model:
        return None
    tokens = BillableTokens(max(input_tokens, 0), 0, 0, max(output_tokens, 0), 0)
    try:
        cost = genai_cost(provider or None, (model,), tokens, start_ns)
    except Exception:  # noqa: BLE001 - an unpriceable call is unpriced, not a failed evaluation
        return None
    if cost is None or not cost.is_finite() or cost < 0 or cost > MAX_SPAN_COST_USD:
        return None
    return _quantize(cost)
