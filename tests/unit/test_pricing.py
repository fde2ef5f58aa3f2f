"""core.pricing: overrides, genai-prices, token accounting, unpriced/reported fallbacks.

Internals of the genai-prices path (resolver, fast path) are reached through core.genai_rates.
"""

from __future__ import annotations

import dataclasses
import warnings
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, localcontext
from unittest import mock
from zoneinfo import ZoneInfo

import genai_prices
import pytest
from genai_prices import Usage, calc_price
from genai_prices.data_snapshot import DataSnapshot, find_provider_by_id, get_snapshot, set_custom_snapshot
from genai_prices.types import (
    ClauseEquals, ConditionalPrice, ModelInfo, ModelPrice, StartDateConstraint, TieredPrices, TimeOfDateConstraint,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from core import genai_rates, pricing
from core.pricing import (
    GENAI_PRICES_SOURCE,
    PROVIDER_IDS,
    PriceOverride,
    billable_tokens,
    genai_provider_id,
    price_span,
    price_spans,
    select_override,
)
from core.span import COST_REPORTED, COST_UNPRICED, Span, Tokens

NOON = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
Q = Decimal("1e-10")


def ns(when: datetime) -> int:
    return int(when.timestamp()) * 10**9


def make_span(**fields) -> Span:
    """An OpenAI gpt-4o chat span started at NOON; any field can be replaced."""
    values = dict(
        trace_id=b"\x01" * 16, span_id=b"\x02" * 8, parent_span_id=None, name="chat gpt-4o", otel_kind=3,
        category="llm", operation="chat", start_ns=ns(NOON), end_ns=ns(NOON) + 10**9, status="ok",
        status_message=None, error_type=None, error_class=None, service_name="svc", agent_name=None,
        tool_name=None, provider="openai", request_model="gpt-4o", response_model=None,
        tokens=Tokens(input=1000, output=500), session_id=None, user_id=None, input=None, output=None,
        attributes={}, events=(), links=(), resource={},
    )
    values.update(fields)
    return Span(**values)


def override(id: int, pattern: str, provider: str | None = None, *, input: str = "1", output: str = "2",
             cache_read: str | None = None, cache_write: str | None = None,
             start: datetime = datetime(2025, 1, 1, tzinfo=UTC), end: datetime | None = None) -> PriceOverride:
    return PriceOverride(
        id=id, model_pattern=pattern, provider=provider,
        input_per_mtok=Decimal(input), output_per_mtok=Decimal(output),
        cache_read_per_mtok=None if cache_read is None else Decimal(cache_read),
        cache_write_per_mtok=None if cache_write is None else Decimal(cache_write),
        effective_from=start, effective_to=end,
    )


def package_price(usage: Usage, model: str, provider_id: str | None, when: datetime = NOON) -> Decimal:
    """The package's own answer, at our money scale."""
    return calc_price(usage, model, provider_id=provider_id, genai_request_timestamp=when).total_price.quantize(Q)


def package_rates(model: str, provider_id: str | None, when: datetime = NOON):
    return calc_price(Usage(input_tokens=1), model, provider_id=provider_id, genai_request_timestamp=when).model_price


# ---------------------------------------------------------------------------
# genai-prices path


def test_known_openai_model_exact_price_and_source():
    span = price_span(make_span())
    assert span.cost_usd == Decimal("0.0075000000")  # 1000 * $2.5/M + 500 * $10/M
    assert span.cost_usd == package_price(Usage(input_tokens=1000, output_tokens=500), "gpt-4o", "openai")
    assert span.cost_source == f"genai-prices {genai_prices.__version__}" == GENAI_PRICES_SOURCE


@pytest.mark.parametrize(
    ("category", "provider", "model", "tokens", "genai_provider"),
    [
        ("llm", "openai", "gpt-4o-mini", Tokens(input=12_345, output=678), "openai"),
        ("llm", "openai", "gpt-4o-2024-08-06", Tokens(input=1000, output=500, cache_read=400), "openai"),
        ("embedding", "openai", "text-embedding-3-small", Tokens(input=5000), "openai"),
        ("llm", "anthropic", "claude-sonnet-4-20250514",
         Tokens(input=3000, output=800, cache_read=1000, cache_write=500), "anthropic"),
        ("llm", "gcp.vertex_ai", "gemini-2.5-pro", Tokens(input=2000, output=100), "google"),
        ("llm", "gcp.vertex_ai", "claude-sonnet-4-20250514", Tokens(input=2000, output=100), "google"),
        ("llm", "aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", Tokens(input=900, output=90), "aws"),
        ("llm", "azure.ai.openai", "gpt-4o-mini", Tokens(input=900, output=90), "azure"),
        ("llm", "x_ai", "grok-3", Tokens(input=900, output=90), "x-ai"),
        ("llm", "mistral_ai", "mistral-large-latest", Tokens(input=900, output=90), "mistral"),
        ("llm", None, "claude-3-5-sonnet-20241022", Tokens(input=900, output=90), None),
    ],
)
def test_genai_prices_matches_package(category, provider, model, tokens, genai_provider):
    span = price_span(make_span(category=category, provider=provider, request_model=model, tokens=tokens))
    usage = Usage(input_tokens=tokens.input, output_tokens=tokens.output or 0,
                  cache_read_tokens=tokens.cache_read, cache_write_tokens=tokens.cache_write)
    assert span.cost_source == GENAI_PRICES_SOURCE
    assert span.cost_usd == package_price(usage, model, genai_provider)
    assert span.cost_usd > 0


@pytest.mark.parametrize(
    ("response_model", "request_model", "priced_as"),
    [
        ("gpt-4o-mini-2024-07-18", "gpt-4o", "gpt-4o-mini"),  # served model wins
        ("my-azure-deployment", "gpt-4o-mini", "gpt-4o-mini"),  # unknown served model: fall back
        (None, "gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini", None, "gpt-4o-mini"),
        ("  gpt-4o-mini ", "", "gpt-4o-mini"),
    ],
)
def test_served_model_preferred_then_requested(response_model, request_model, priced_as):
    span = price_span(make_span(response_model=response_model, request_model=request_model))
    assert span.cost_usd == package_price(Usage(input_tokens=1000, output_tokens=500), priced_as, "openai")


@pytest.mark.parametrize("hour", [2, 20])  # deepseek-chat has off-peak prices by time of day
def test_price_depends_on_span_start_time(hour):
    when = datetime(2025, 6, 1, hour, 15, tzinfo=UTC)
    span = price_span(make_span(provider="deepseek", request_model="deepseek-chat", start_ns=ns(when)))
    assert span.cost_usd == package_price(Usage(input_tokens=1000, output_tokens=500), "deepseek-chat", "deepseek", when)


def test_time_of_day_prices_differ():
    early = price_span(make_span(provider="deepseek", request_model="deepseek-chat",
                                 start_ns=ns(datetime(2025, 6, 1, 2, tzinfo=UTC))))
    late = price_span(make_span(provider="deepseek", request_model="deepseek-chat",
                                start_ns=ns(datetime(2025, 6, 1, 20, tzinfo=UTC))))
    assert early.cost_usd != late.cost_usd


# ---------------------------------------------------------------------------
# token accounting: every token priced once


@pytest.mark.parametrize(
    ("provider", "model", "tokens"),
    [
        ("openai", "gpt-4o", Tokens(input=1000, output=500, cache_read=200)),
        ("anthropic", "claude-sonnet-4-20250514", Tokens(input=1000, output=500, cache_read=200, cache_write=300)),
        ("anthropic", "claude-sonnet-4-20250514", Tokens(input=1000, output=0, cache_write=1000)),
    ],
)
def test_cache_tokens_priced_once(provider, model, tokens):
    rates = package_rates(model, provider)
    uncached = tokens.input - (tokens.cache_read or 0) - (tokens.cache_write or 0)
    expected = (
        uncached * rates.input_mtok
        + (tokens.cache_read or 0) * rates.cache_read_mtok
        + (tokens.cache_write or 0) * (rates.cache_write_mtok or rates.input_mtok)
        + tokens.output * rates.output_mtok
    ) / Decimal(1_000_000)
    span = price_span(make_span(provider=provider, request_model=model, tokens=tokens))
    assert span.cost_usd == expected.quantize(Q)


def test_cache_reads_are_cheaper_than_uncached_input():
    cached = price_span(make_span(tokens=Tokens(input=1000, output=0, cache_read=1000)))
    uncached = price_span(make_span(tokens=Tokens(input=1000, output=0)))
    assert cached.cost_usd == uncached.cost_usd / 2  # gpt-4o: cache read $1.25 vs input $2.5


@pytest.mark.parametrize(
    ("model", "reasoning"), [("o3-mini", 300), ("o3-mini", 500), ("gpt-4o", 100)],
)
def test_reasoning_is_inside_output_not_added(model, reasoning):
    with_reasoning = price_span(make_span(request_model=model, tokens=Tokens(input=100, output=500, reasoning=reasoning)))
    without = price_span(make_span(request_model=model, tokens=Tokens(input=100, output=500)))
    assert with_reasoning.cost_usd == without.cost_usd


def test_model_with_its_own_reasoning_rate():
    # perplexity sonar-deep-research: output $8/M, reasoning $3/M, input $2/M
    tokens = Tokens(input=1000, output=500, reasoning=100)
    span = price_span(make_span(provider="perplexity", request_model="sonar-deep-research", tokens=tokens))
    rates = package_rates("sonar-deep-research", "perplexity")
    expected = (1000 * rates.input_mtok + 400 * rates.output_mtok + 100 * rates.output_reasoning_mtok) / 10**6
    assert span.cost_usd == expected.quantize(Q)
    usage = Usage(input_tokens=1000, output_tokens=500, output_reasoning_tokens=100)
    assert span.cost_usd == package_price(usage, "sonar-deep-research", "perplexity")


@pytest.mark.parametrize(
    ("tokens", "uncached", "cache_read", "cache_write", "output"),
    [
        (Tokens(input=1000, output=500, cache_read=200, cache_write=300, reasoning=50), 500, 200, 300, 500),
        (Tokens(input=100, output=10, cache_read=300), 0, 300, 0, 10),  # input < cache: clamp at 0
        (Tokens(input=100, cache_read=80, cache_write=80), 0, 80, 80, 0),
        (Tokens(cache_read=50), 0, 50, 0, 0),  # no input total reported
        (Tokens(output=10, reasoning=40), 0, 0, 0, 40),  # output < reasoning: reasoning is output
        (Tokens(input=0, output=0), 0, 0, 0, 0),
        (Tokens(), 0, 0, 0, 0),
    ],
)
def test_billable_tokens_disjoint_and_never_negative(tokens, uncached, cache_read, cache_write, output):
    billable = billable_tokens(tokens)
    assert (billable.uncached_input, billable.cache_read, billable.cache_write, billable.output) == (
        uncached, cache_read, cache_write, output)


def test_negative_uncached_input_clamped_on_both_paths():
    tokens = Tokens(input=100, output=10, cache_read=300)
    by_override = price_span(make_span(tokens=tokens), [override(1, "gpt-4o", input="10", output="20", cache_read="1")])
    assert by_override.cost_usd == Decimal("0.0005000000")  # 300 * $1/M + 10 * $20/M, no negative input
    by_package = price_span(make_span(tokens=tokens))
    assert by_package.cost_source == GENAI_PRICES_SOURCE
    assert by_package.cost_usd == package_price(Usage(input_tokens=300, output_tokens=10, cache_read_tokens=300),
                                                "gpt-4o", "openai")


def test_explicit_zero_tokens_are_priced_zero_not_unpriced():
    span = price_span(make_span(tokens=Tokens(input=0, output=0)))
    assert (span.cost_usd, span.cost_source) == (Decimal("0E-10"), GENAI_PRICES_SOURCE)


# ---------------------------------------------------------------------------
# overrides


def test_override_cost_uses_its_rates():
    tokens = Tokens(input=1_000_000, output=2_000_000, cache_read=300_000, cache_write=100_000, reasoning=500_000)
    default_cache = override(7, "gpt-4o", input="3", output="5")
    assert price_span(make_span(tokens=tokens), [default_cache]).cost_usd == Decimal("13")  # 1M*3 + 2M*5
    own_cache = override(8, "gpt-4o", input="3", output="5", cache_read="0.5", cache_write="4")
    # 600k*3 + 300k*0.5 + 100k*4 + 2M*5 (reasoning is inside output)
    assert price_span(make_span(tokens=tokens), [own_cache]).cost_usd == Decimal("12.35")


OVERRIDE_CASES = [
    # (id, overrides, span fields, expected cost_source)
    ("override beats genai-prices", [override(1, "gpt-4o*")], {}, "override:1"),
    ("no match falls through to genai-prices", [override(1, "claude-*")], {}, GENAI_PRICES_SOURCE),
    ("case-insensitive", [override(1, "GPT-4O*")], {"request_model": "gpt-4o"}, "override:1"),
    ("glob on request model", [override(1, "gpt-4o*")], {"request_model": "GPT-4o-2024-08-06"}, "override:1"),
    ("more literal chars win", [override(1, "gpt-4o*"), override(2, "gpt-4o-mini*")],
     {"request_model": "gpt-4o-mini"}, "override:2"),
    ("more literal chars win, order independent", [override(2, "gpt-4o-mini*"), override(1, "gpt-4o*")],
     {"request_model": "gpt-4o-mini"}, "override:2"),
    ("exact beats equal-length glob", [override(1, "gpt-4o*"), override(2, "gpt-4o")], {}, "override:2"),
    ("? is a wildcard", [override(5, "gpt-4o-m???"), override(2, "gpt-4o-mi*")],
     {"request_model": "gpt-4o-mini"}, "override:2"),
    ("[] class counts as wildcard", [override(1, "gpt-4[o]-mini"), override(2, "gpt-4o-mini")],
     {"request_model": "gpt-4o-mini"}, "override:2"),
    ("provider-specific beats provider-wide", [override(1, "gpt-4o"), override(2, "*", provider="openai")],
     {}, "override:2"),
    ("provider compare is case-insensitive", [override(2, "*", provider="OpenAI")], {}, "override:2"),
    ("other provider's override ignored", [override(1, "gpt-4o*"), override(2, "gpt-4o", provider="azure.ai.openai")],
     {}, "override:1"),
    ("provider-specific needs a provider", [override(2, "gpt-4o", provider="openai")],
     {"provider": None}, GENAI_PRICES_SOURCE),
    ("served model's override beats requested model's",
     [override(1, "router-auto"), override(2, "gpt-4o*")],
     {"request_model": "router-auto", "response_model": "gpt-4o-2024-08-06"}, "override:2"),
    ("requested model's override used when served has none",
     [override(1, "router-auto")],
     {"request_model": "router-auto", "response_model": "gpt-4o-2024-08-06"}, "override:1"),
    ("override on requested model beats genai-prices on served",
     [override(1, "gpt-4o")], {"request_model": "gpt-4o", "response_model": "gpt-4o-mini"}, "override:1"),
    ("tie: later effective_from wins",
     [override(1, "gpt-4o", start=datetime(2025, 1, 1, tzinfo=UTC)),
      override(2, "gpt-4o", start=datetime(2025, 3, 1, tzinfo=UTC))], {}, "override:2"),
    ("tie: higher id wins", [override(5, "gpt-4o"), override(3, "gpt-4o")], {}, "override:5"),
    ("override prices a model genai-prices does not know", [override(4, "acme-*")],
     {"provider": "ollama", "request_model": "acme-7b"}, "override:4"),
    ("non-model spans ignore overrides", [override(1, "*")], {"category": "agent"}, None),
]


@pytest.mark.parametrize(("overrides", "fields", "source"), [c[1:] for c in OVERRIDE_CASES],
                         ids=[c[0] for c in OVERRIDE_CASES])
def test_override_precedence(overrides, fields, source):
    assert price_span(make_span(**fields), overrides).cost_source == source


JAN, MAR, JUN, DEC = (datetime(2025, m, 1, tzinfo=UTC) for m in (1, 3, 6, 12))
DATE_CASES = [
    # (id, effective_from, effective_to, span start, applies)
    ("before start", JUN, None, MAR, False),
    ("at start (inclusive)", JUN, None, JUN, True),
    ("open-ended, long after", JAN, None, datetime(2030, 1, 1, tzinfo=UTC), True),
    ("inside window", JAN, JUN, MAR, True),
    ("at end (exclusive)", JAN, JUN, JUN, False),
    ("after end", JAN, MAR, JUN, False),
    ("1 microsecond before end", JAN, JUN, JUN - timedelta(microseconds=1), True),
    ("other timezone, same instant", datetime(2025, 6, 1, 14, tzinfo=ZoneInfo("Europe/Berlin")),
     None, datetime(2025, 6, 1, 12, tzinfo=UTC), True),
]


@pytest.mark.parametrize(("start", "end", "at", "applies"), [c[1:] for c in DATE_CASES], ids=[c[0] for c in DATE_CASES])
def test_override_effective_dates(start, end, at, applies):
    span = make_span(start_ns=int(at.timestamp() * 1_000_000) * 1000)
    priced = price_span(span, [override(9, "gpt-4o", start=start, end=end)])
    assert priced.cost_source == ("override:9" if applies else GENAI_PRICES_SOURCE)


def test_successive_price_periods():
    old = override(1, "gpt-4o", input="10", start=JAN, end=JUN)
    new = override(2, "gpt-4o", input="20", start=JUN)
    assert price_span(make_span(start_ns=ns(MAR)), [old, new]).cost_source == "override:1"
    assert price_span(make_span(start_ns=ns(DEC)), [old, new]).cost_source == "override:2"


def test_select_override_returns_none_without_match():
    assert select_override([override(1, "claude*")], "openai", ("gpt-4o",), NOON) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"effective_from": datetime(2025, 1, 1)},  # naive
        {"effective_to": datetime(2025, 2, 1)},  # naive
        {"effective_to": datetime(2024, 1, 1, tzinfo=UTC)},  # before from
        {"effective_to": datetime(2025, 1, 1, tzinfo=UTC)},  # empty window
        {"input_per_mtok": 2.5},  # float money
        {"output_per_mtok": Decimal("-1")},
        {"cache_read_per_mtok": Decimal("NaN")},
        {"model_pattern": ""},
    ],
)
def test_override_validation(kwargs):
    values = dict(id=1, model_pattern="gpt-4o", provider=None, input_per_mtok=Decimal(1), output_per_mtok=Decimal(2),
                  cache_read_per_mtok=None, cache_write_per_mtok=None,
                  effective_from=datetime(2025, 1, 1, tzinfo=UTC), effective_to=None)
    values.update(kwargs)
    with pytest.raises(ValueError):
        PriceOverride(**values)


# ---------------------------------------------------------------------------
# unpriced, reported, non-model spans

UNPRICEABLE = [
    ("unknown model", {"request_model": "totally-unknown-model-9000"}),
    ("unknown model, no provider", {"provider": None, "request_model": "totally-unknown-model-9000"}),
    ("provider genai-prices does not know", {"provider": "ollama", "request_model": "gpt-4o"}),
    ("no model", {"request_model": None, "response_model": None}),
    ("blank model", {"request_model": "  "}),
    ("no tokens", {"tokens": Tokens()}),
]


@pytest.mark.parametrize("fields", [c[1] for c in UNPRICEABLE], ids=[c[0] for c in UNPRICEABLE])
def test_unpriceable_is_unpriced_never_zero(fields):
    span = price_span(make_span(**fields))
    assert (span.cost_usd, span.cost_source) == (None, COST_UNPRICED)


@pytest.mark.parametrize("fields", [c[1] for c in UNPRICEABLE], ids=[c[0] for c in UNPRICEABLE])
def test_unpriceable_with_reported_cost_uses_it(fields):
    span = price_span(make_span(reported_cost_usd=Decimal("0.0123"), **fields))
    assert (span.cost_usd, span.cost_source) == (Decimal("0.0123000000"), COST_REPORTED)
    assert span.reported_cost_usd == Decimal("0.0123")


def test_our_price_wins_over_reported_and_both_are_kept():
    span = price_span(make_span(reported_cost_usd=Decimal("0.5")))
    assert (span.cost_usd, span.cost_source, span.reported_cost_usd) == (
        Decimal("0.0075000000"), GENAI_PRICES_SOURCE, Decimal("0.5"))


@pytest.mark.parametrize("category", ["agent", "tool", "workflow", "routing", "retrieval", "guardrail", "other"])
def test_non_model_spans_untouched(category):
    # Agent spans often repeat their children's usage: pricing them would double count.
    span = make_span(category=category, reported_cost_usd=Decimal("1"))
    priced = price_span(span, [override(1, "*")])
    assert priced is span
    assert (priced.cost_usd, priced.cost_source) == (None, None)


def test_price_spans_batch():
    spans = [make_span(), make_span(category="tool"), make_span(request_model="nope"),
             make_span(request_model="gpt-4o-mini")]
    sources = [s.cost_source for s in price_spans(iter(spans), [override(3, "gpt-4o-mini")])]
    assert sources == [GENAI_PRICES_SOURCE, None, COST_UNPRICED, "override:3"]


# ---------------------------------------------------------------------------
# provider mapping and genai-prices integration


@pytest.mark.parametrize(("ours", "theirs"), sorted(PROVIDER_IDS.items()))
def test_provider_mapping_targets_exist_in_genai_prices(ours, theirs):
    assert genai_provider_id(ours) == theirs
    provider = find_provider_by_id(get_snapshot().providers, theirs)
    assert provider is not None and provider.id == theirs


@pytest.mark.parametrize(("ours", "theirs"), [(None, None), ("Groq", "groq"), ("openrouter", "openrouter"),
                                               ("X_AI", "x-ai"), ("ollama", "ollama")])
def test_provider_passthrough(ours, theirs):
    assert genai_provider_id(ours) == theirs


def _every_model():
    for provider in get_snapshot().providers:
        for model in provider.models:
            yield provider.id, model.id


def test_every_genai_prices_model_priced_like_calc_price():
    """Our cached resolution + zero-filled usage gives calc_price's answer for every model in the data."""
    tokens = Tokens(input=120_000, output=3_000, cache_read=20_000, cache_write=10_000, reasoning=1_000)
    usage = dict(input_tokens=120_000, output_tokens=3_000, cache_read_tokens=20_000, cache_write_tokens=10_000,
                 output_reasoning_tokens=1_000)
    checked = 0
    for provider_id, model_id in _every_model():
        span = price_span(make_span(provider=provider_id, request_model=model_id, tokens=tokens))
        try:
            expected = package_price(Usage(**usage), model_id, provider_id)
        except (LookupError, ValueError):
            assert span.cost_source == COST_UNPRICED, (provider_id, model_id)
            continue
        assert (span.cost_usd, span.cost_source) == (expected, GENAI_PRICES_SOURCE), (provider_id, model_id)
        checked += 1
    assert checked > 1000


def test_lookup_cache_follows_genai_prices_snapshot():
    assert price_span(make_span()).cost_source == GENAI_PRICES_SOURCE
    set_custom_snapshot(DataSnapshot(providers=[], from_auto_update=True))
    try:
        assert price_span(make_span()).cost_source == COST_UNPRICED
    finally:
        set_custom_snapshot(None)
    assert price_span(make_span()).cost_source == GENAI_PRICES_SOURCE


def test_lookup_cache_is_bounded():
    resolver = genai_rates._ModelResolver(max_entries=3)
    for i in range(10):
        resolver.resolve("openai", f"junk-{i}")
        assert len(resolver._entries) <= 3


def test_no_warnings_from_genai_prices():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        price_span(make_span(provider="perplexity", request_model="sonar-deep-research",
                             tokens=Tokens(input=10, output=10, cache_read=1, cache_write=1, reasoning=1)))


counts = st.none() | st.integers(min_value=0, max_value=10**9)


@settings(max_examples=200, deadline=None)
@given(
    tokens=st.builds(Tokens, input=counts, output=counts, cache_read=counts, cache_write=counts, reasoning=counts),
    target=st.sampled_from([("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-20250514"),
                            ("perplexity", "sonar-deep-research"), ("gcp.vertex_ai", "gemini-2.5-pro"),
                            ("openai", "unknown-model")]),
    with_override=st.booleans(),
)
def test_any_token_counts_give_a_non_negative_decimal_or_unpriced(tokens, target, with_override):
    provider, model = target
    overrides = [override(1, model, cache_read="0.1")] if with_override else []
    span = price_span(make_span(provider=provider, request_model=model, tokens=tokens), overrides)
    if span.cost_source == COST_UNPRICED:
        assert span.cost_usd is None
        assert model == "unknown-model" or not tokens.any
    else:
        assert isinstance(span.cost_usd, Decimal) and span.cost_usd >= 0
        assert span.cost_usd.as_tuple().exponent == -10


# ---------------------------------------------------------------------------
# fast path: precomputed calc_price terms must give calc_price's exact answer


@contextmanager
def slow_path_only():
    """Every genai-prices price through calc_price itself, as before the fast path."""
    with mock.patch.object(genai_rates, "_kind_counts", return_value=None):
        yield


def _resolved_catalogue():
    """(provider id, model id, resolution) for every model in the data that our resolver finds by its id."""
    for provider_id, model_id in _every_model():
        resolved = genai_rates._resolver.resolve(provider_id, model_id)
        if resolved is not None:
            yield provider_id, model_id, resolved


def _tier_starts(resolved) -> set[int]:
    return {
        tier.start
        for price in genai_rates._price_sets(resolved.model)
        for value in vars(price).values()
        if isinstance(value, TieredPrices)
        for tier in value.tiers
    }


BIG = 2**63 - 1  # the largest count the normalizer accepts: products exceed 28 digits, so Decimal rounds
TOKEN_VECTORS = [
    Tokens(input=0, output=0),
    Tokens(input=1, output=1),
    Tokens(input=1000, output=500),
    Tokens(input=120_000, output=3_000, cache_read=20_000, cache_write=10_000, reasoning=1_000),
    Tokens(input=1000, output=500, reasoning=500),  # all output is reasoning
    Tokens(input=10, output=5, cache_read=30),  # inconsistent: uncached input clamped at 0
    Tokens(cache_write=77),
    Tokens(output=10, reasoning=40),
    Tokens(input=7_654_321, output=1_234_567, cache_read=1_000_001, cache_write=999_999, reasoning=3),
    Tokens(input=BIG, output=BIG, cache_read=2**62, cache_write=2**61, reasoning=2**60),
]


def _threshold_vectors(starts: set[int]) -> list[Tokens]:
    """Input (cache included, as genai-prices counts it for tiers) just below, at and above each tier start."""
    vectors = []
    for start in starts:
        for total in (start - 1, start, start + 1):
            if total >= 0:
                vectors.append(Tokens(input=total, output=1000))
                vectors.append(Tokens(input=total, output=1000, cache_read=total // 2, cache_write=total // 8,
                                      reasoning=100))
    return vectors


def test_fast_path_covers_almost_every_price_in_the_data():
    prices = fast = 0
    slow_models = set()
    for provider_id, model_id, resolved in _resolved_catalogue():
        for price in genai_rates._price_sets(resolved.model):
            prices += 1
            if id(price) in resolved.fast:
                fast += 1
            else:
                slow_models.add((provider_id, model_id))
    assert prices > 2000
    # genai-prices 0.2.3: only groq's whisper models (calc_price rewrites their usage) take the slow path.
    assert fast / prices > 0.98, sorted(slow_models)
    assert len(slow_models) <= 10, sorted(slow_models)


def test_fast_cost_equals_model_price_calc_price_for_every_price_in_the_data():
    """_fast_cost against ModelPrice.calc_price (what ModelInfo.calc_price calls) on the same usage:
    every ModelPrice of every model, conditional ones included, tier starts crossed, rounding forced."""
    checked = 0
    for provider_id, model_id, resolved in _resolved_catalogue():
        vectors = TOKEN_VECTORS + _threshold_vectors(_tier_starts(resolved))
        for price in genai_rates._price_sets(resolved.model):
            fast = resolved.fast.get(id(price))
            if fast is None:
                continue
            for reported in vectors:
                tokens = billable_tokens(reported)
                usage = genai_rates._genai_usage(tokens, resolved.zero_usage)
                expected = price.calc_price(usage)["total_price"]
                actual = genai_rates._fast_cost(fast, genai_rates._kind_counts(tokens))
                assert actual == expected, (provider_id, model_id, price, reported)
                assert pricing._quantize(actual) == pricing._quantize(expected)
                # Prices in the data have few digits, so the default 28 digits never round; at 6 digits
                # nearly every operation rounds, and only the same operations in the same order agree.
                with localcontext(prec=6):
                    assert genai_rates._fast_cost(fast, genai_rates._kind_counts(tokens)) == price.calc_price(usage)[
                        "total_price"], (provider_id, model_id, price, reported)
                checked += 1
    assert checked > 25_000


def _constraint_instants(resolved) -> list[datetime]:
    """Instants around every date or time-of-day at which the model's selected price changes."""
    instants = []
    for conditional in resolved.model.prices if isinstance(resolved.model.prices, list) else ():
        constraint = conditional.constraint
        if isinstance(constraint, StartDateConstraint):
            edges = [datetime.combine(constraint.start_date, time(0), tzinfo=UTC)]
        elif isinstance(constraint, TimeOfDateConstraint):
            edges = [
                datetime.combine(date(2025, 6, 1), moment).replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)
                for moment in (constraint.start_time, constraint.end_time)
            ]
        else:
            edges = []
        for edge in edges:
            instants += [edge - timedelta(microseconds=1), edge, edge + timedelta(microseconds=1)]
    return instants


def test_time_selected_prices_fast_equals_slow_at_every_boundary():
    tokens = Tokens(input=250_000, output=3_000, cache_read=20_000, cache_write=10_000, reasoning=1_000)
    checked = 0
    for provider_id, model_id, resolved in _resolved_catalogue():
        for when in _constraint_instants(resolved):
            span = make_span(provider=provider_id, request_model=model_id, tokens=tokens,
                             start_ns=int(when.timestamp()) * 10**9 + when.microsecond * 1000)
            with slow_path_only():
                slow = price_span(span)
            fast = price_span(span)
            assert (fast.cost_usd, fast.cost_source) == (slow.cost_usd, slow.cost_source), (provider_id, model_id, when)
            checked += 1
    assert checked > 500


def _synthetic_model(*constraints) -> ModelInfo:
    prices = [ConditionalPrice(prices=ModelPrice(input_mtok=Decimal(0)))]
    prices += [ConditionalPrice(constraint=constraint, prices=ModelPrice(input_mtok=Decimal(i + 1)))
               for i, constraint in enumerate(constraints)]
    return ModelInfo(id="synthetic", match=ClauseEquals(equals="synthetic"), prices=prices)


UTC_PLUS_8 = timezone(timedelta(hours=8))
SYNTHETIC_MODELS = [
    _synthetic_model(TimeOfDateConstraint(start_time=time(0), end_time=time(8))),  # an edge at midnight
    _synthetic_model(TimeOfDateConstraint(start_time=time(22), end_time=time(0))),
    _synthetic_model(StartDateConstraint(start_date=date(2025, 3, 1)),
                     TimeOfDateConstraint(start_time=time(22, tzinfo=UTC_PLUS_8), end_time=time(6, 30, tzinfo=UTC_PLUS_8)),
                     StartDateConstraint(start_date=date(2024, 1, 1))),  # unsorted start dates
    _synthetic_model(TimeOfDateConstraint(start_time=time(1, 2, 3, 4), end_time=time(1, 2, 3, 5)),
                     StartDateConstraint(start_date=date(1969, 12, 31))),
]


def _conditional_models() -> list[ModelInfo]:
    catalogue = [resolved.model for _, _, resolved in _resolved_catalogue() if isinstance(resolved.model.prices, list)]
    return SYNTHETIC_MODELS + catalogue


def _as_ns(when: datetime) -> int:
    return int((when - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)) * 1000


def test_price_schedule_selects_like_get_prices_at_every_edge():
    checked = 0
    for model in _conditional_models():
        schedule = genai_rates._price_schedule(model)
        assert schedule is not None, model.id
        instants = [datetime(2025, 6, 1, tzinfo=UTC)]
        for day in schedule.days:
            for micros in (0, *schedule.times, genai_rates._US_PER_DAY - 1):
                edge = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day, microseconds=micros)
                instants += [edge - timedelta(microseconds=1), edge, edge + timedelta(microseconds=1)]
        for micros in schedule.times:
            edge = datetime(2025, 6, 1, tzinfo=UTC) + timedelta(microseconds=micros)
            instants += [edge - timedelta(microseconds=1), edge, edge + timedelta(microseconds=1)]
        for when in instants:
            assert schedule.price_at(_as_ns(when)) is model.get_prices(when), (model.id, when)
            checked += 1
    assert checked > 500


@settings(max_examples=500, deadline=None)
@given(
    model=st.sampled_from(_conditional_models()),
    when=st.datetimes(min_value=datetime(1969, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)),
)
def test_price_schedule_selects_like_get_prices(model, when):
    assert genai_rates._price_schedule(model).price_at(_as_ns(when)) is model.get_prices(when)


def test_off_peak_prices_take_the_fast_path_and_differ():
    # deepseek-chat: off-peak window 16:30-00:30 UTC.
    peak, off_peak = datetime(2025, 6, 1, 12, tzinfo=UTC), datetime(2025, 6, 1, 20, tzinfo=UTC)
    with mock.patch.object(ModelInfo, "calc_price", side_effect=AssertionError("slow path")):
        costs = [price_span(make_span(provider="deepseek", request_model="deepseek-chat", start_ns=ns(when))).cost_usd
                 for when in (peak, off_peak)]
    assert costs == [package_price(Usage(input_tokens=1000, output_tokens=500), "deepseek-chat", "deepseek", when)
                     for when in (peak, off_peak)]
    assert costs[0] != costs[1]


@pytest.mark.parametrize(
    ("provider", "model", "tokens"),
    [
        ("openai", "gpt-4o", Tokens(input=1200, output=300, cache_read=200, reasoning=50)),
        ("anthropic", "claude-sonnet-4-5", Tokens(input=3000, output=800, cache_read=1000, cache_write=500)),
        ("anthropic", "claude-sonnet-4-5", Tokens(input=300_000, output=800, cache_read=100_000)),  # upper tier
        ("gcp.vertex_ai", "gemini-2.5-pro", Tokens(input=200_000, output=100)),  # at the tier start: base rate
        ("gcp.vertex_ai", "gemini-2.5-pro", Tokens(input=200_001, output=100)),  # above it: tier rate
        ("perplexity", "sonar-deep-research", Tokens(input=1000, output=500, reasoning=100)),  # own reasoning rate
        ("openai", "text-embedding-3-small", Tokens(input=5000)),
    ],
)
def test_common_models_take_the_fast_path(provider, model, tokens):
    with mock.patch.object(ModelInfo, "calc_price", side_effect=AssertionError("slow path")):
        fast = price_span(make_span(provider=provider, request_model=model, tokens=tokens))
    with slow_path_only():
        slow = price_span(make_span(provider=provider, request_model=model, tokens=tokens))
    assert fast.cost_source == GENAI_PRICES_SOURCE
    assert fast.cost_usd == slow.cost_usd


def test_tiers_apply_to_all_tokens_past_the_start():
    below = price_span(make_span(provider="gcp.vertex_ai", request_model="gemini-2.5-pro",
                                 tokens=Tokens(input=200_000, output=0))).cost_usd
    above = price_span(make_span(provider="gcp.vertex_ai", request_model="gemini-2.5-pro",
                                 tokens=Tokens(input=200_001, output=0))).cost_usd
    assert above > below * 3 / 2  # gemini-2.5-pro: $1.25/M, $2.5/M past 200k, on every input token


_MODELS = [(provider_id, model_id) for provider_id, model_id, _ in _resolved_catalogue()]
_PRICED_BY_TIME_OR_TIER = [
    (provider_id, model_id) for provider_id, model_id, resolved in _resolved_catalogue()
    if isinstance(resolved.model.prices, list) or _tier_starts(resolved)
]
_TIER_EDGES = sorted({edge for _, _, resolved in _resolved_catalogue() for start in _tier_starts(resolved)
                      for edge in (start - 1, start, start + 1)})
_count = st.none() | st.just(0) | st.integers(0, 2_000) | st.integers(0, 10**7) | st.just(BIG)


@st.composite
def _reported_tokens(draw) -> Tokens:
    input_tokens = draw(_count | st.sampled_from(_TIER_EDGES))
    return Tokens(input=input_tokens, output=draw(_count), cache_read=draw(_count), cache_write=draw(_count),
                  reasoning=draw(_count))


@settings(max_examples=1500, deadline=None)
@given(
    target=st.sampled_from(_MODELS) | st.sampled_from(_PRICED_BY_TIME_OR_TIER),
    tokens=_reported_tokens(),
    when=st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    via_alias=st.sampled_from([None, "gcp.vertex_ai", "aws.bedrock", "azure.ai.openai"]),
)
def test_fast_path_equals_slow_path(target, tokens, when, via_alias):
    """Any model of the data, any counts (tier edges, cache, reasoning, zeros, inconsistent, huge), any time."""
    provider, model = target
    if via_alias is not None:  # the same name through another provider (fallback providers, other prices)
        provider = via_alias
    start_ns = int(when.timestamp()) * 10**9 + when.microsecond * 1000
    span = make_span(provider=provider, request_model=model, tokens=tokens, start_ns=start_ns)
    billable = billable_tokens(tokens)
    fast_total = genai_rates.genai_cost(provider, (model,), billable, start_ns)
    fast = price_span(span)
    with slow_path_only():
        slow_total = genai_rates.genai_cost(provider, (model,), billable, start_ns)
        slow = price_span(span)
    assert fast_total == slow_total  # before quantizing: the same Decimal value
    assert (fast.cost_usd, fast.cost_source) == (slow.cost_usd, slow.cost_source)


@pytest.mark.parametrize(
    "tokens",
    [
        Tokens(input=1000.0, output=10),  # not a count the normalizer produces: calc_price's float arithmetic
        Tokens(input=True, output=10),
        Tokens(input=1000, output=10, cache_read=-5),
        Tokens(input=1000, output=-10),
    ],
)
def test_unusual_counts_behave_as_before(tokens):
    span = make_span(tokens=tokens)
    with slow_path_only():
        try:
            expected = price_span(span)
        except ValueError as error:
            expected = type(error)
    try:
        actual = price_span(span)
    except ValueError as error:
        actual = type(error)
    assert actual == expected


def test_fast_prices_are_bounded_with_the_lookup_cache():
    resolver = genai_rates._ModelResolver(max_entries=3)
    for provider_id, model_id in _MODELS[:50]:
        resolved = resolver.resolve(provider_id, model_id)
        assert len(resolver._entries) <= 3
        assert len(resolved.fast) <= len(genai_rates._price_sets(resolved.model))
    for i in range(1000):  # untrusted names: misses are cached, within the same bound
        resolver.resolve("openai", f"gpt-4o-junk-{i}")
        assert len(resolver._entries) <= 3


def test_module_cache_stays_bounded_under_junk_model_names():
    for i in range(genai_rates._resolver._max_entries + 100):
        price_span(make_span(request_model=f"junk-model-{i}"))
    assert len(genai_rates._resolver._entries) <= genai_rates._resolver._max_entries
    assert price_span(make_span()).cost_usd == Decimal("0.0075000000")


def test_fast_path_registry_is_genai_prices_own():
    from genai_prices.units import _get_registry

    ours = {key: (unit.price_key, unit.per, dict(unit.dimensions)) for key, unit in genai_rates._REGISTRY.units.items()}
    theirs = {key: (unit.price_key, unit.per, dict(unit.dimensions)) for key, unit in _get_registry().units.items()}
    assert ours == theirs


@pytest.mark.parametrize(
    "fields",
    [{}, {"reported_cost_usd": Decimal("0.5")}, {"category": "embedding", "response_model": "x"},
     {"attributes": {"a": 1}, "parent_span_id": b"\x03" * 8}],
)
@pytest.mark.parametrize(("cost", "source"), [(Decimal("0.1"), GENAI_PRICES_SOURCE), (None, COST_UNPRICED)])
def test_with_cost_is_dataclasses_replace(fields, cost, source):
    assert pricing._SPAN_POSITIONAL, "Span's layout changed: _with_cost fell back to the slow dataclasses.replace"
    span = make_span(**fields)
    assert pricing._with_cost(span, cost, source) == dataclasses.replace(span, cost_usd=cost, cost_source=source)


# --- never raises, never stores an impossible cost -------------------------------------------------

def _model_call(**changes) -> Span:
    span = Span(
        trace_id=b"\x01" * 16, span_id=b"\x02" * 8, parent_span_id=None, name="chat gpt-4o", otel_kind=3,
        category="llm", operation="chat", start_ns=1_750_000_000_000_000_000, end_ns=1_750_000_000_100_000_000,
        status="ok", status_message=None, error_type=None, error_class=None, service_name=None, agent_name=None,
        tool_name=None, provider="openai", request_model="gpt-4o", response_model="gpt-4o",
        tokens=Tokens(input=100, output=20), session_id=None, user_id=None, input=None, output=None,
        attributes={"a": 1}, events=(), links=(), resource={},
    )
    return dataclasses.replace(span, **changes)


def test_implausible_cost_is_unpriced_with_the_reason():
    span = price_span(_model_call(tokens=Tokens(input=1, output=10**12)))
    assert span.cost_usd is None and span.cost_source == COST_UNPRICED
    assert "exceeds the per-span limit" in span.attributes["causeline.cost_error"]
    assert span.attributes["a"] == 1


def test_implausible_reported_cost_is_unpriced():
    span = price_span(_model_call(request_model="no-such-model", response_model=None,
                                  reported_cost_usd=Decimal("5000000")))
    assert span.cost_usd is None and span.cost_source == COST_UNPRICED
    assert "reported" in span.attributes["causeline.cost_error"]


def test_price_span_never_raises():
    with mock.patch.object(pricing, "genai_cost", side_effect=RuntimeError("boom")):
        span = price_span(_model_call())
    assert span.cost_usd is None and span.cost_source == COST_UNPRICED
    assert span.attributes["causeline.cost_error"] == "pricing failed: RuntimeError: boom"
