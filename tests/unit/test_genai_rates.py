"""core.genai_rates: the fast path mirrors genai-prices internals only for tested versions.

The catalogue-wide comparisons of the fast path with genai-prices' public
calc_price live in test_pricing.py; this file guards when the fast path is used.
"""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import genai_prices
import pytest
from genai_prices import Usage, calc_price
from genai_prices.types import ModelInfo

from core import genai_rates
from core.genai_rates import BillableTokens, fast_path_supported


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        ("0.2.3", True),
        ("0.2.4", False),  # a release the fast path was not checked against
        ("0.2.2", False),
        ("0.3.0", False),
        ("1.0.0", False),
        ("0.2.3rc1", False),  # pre-, post- and local builds are other code
        ("0.2.3.post1", False),
        ("0.2.3+local", False),
        ("0.2", False),
        ("", False),
        ("garbage", False),
    ],
)
def test_fast_path_supported_versions(version, supported):
    assert fast_path_supported(version) is supported


def test_installed_genai_prices_is_a_tested_version():
    # Fails on an upgrade: run test_pricing.py's catalogue comparisons with the new
    # version, then widen FAST_PATH_TESTED_VERSIONS and the pin in pyproject.toml.
    assert genai_rates.FAST_PATH, (
        f"genai-prices {genai_prices.__version__} is outside FAST_PATH_TESTED_VERSIONS "
        f"{genai_rates.FAST_PATH_TESTED_VERSIONS}: pricing falls back to calc_price (slow)"
    )


CASES = [
    ("openai", "gpt-4o", BillableTokens(1000, 200, 0, 500, 0)),
    ("anthropic", "claude-sonnet-4-20250514", BillableTokens(1000, 2000, 300, 500, 0)),
    ("google", "gemini-2.5-pro", BillableTokens(250_000, 0, 0, 1000, 400)),
    ("deepseek", "deepseek-chat", BillableTokens(10, 5, 0, 7, 0)),
]
WHEN = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _calc_price(provider_id, model, tokens):
    usage = Usage(
        input_tokens=tokens.input,
        output_tokens=tokens.output,
        cache_read_tokens=tokens.cache_read or None,
        cache_write_tokens=tokens.cache_write or None,
        output_reasoning_tokens=tokens.reasoning or None,
    )
    return calc_price(usage, model, provider_id=provider_id, genai_request_timestamp=WHEN).total_price


def test_outside_the_tested_range_every_price_comes_from_calc_price():
    start_ns = int(WHEN.timestamp()) * 10**9
    genai_rates._resolver.clear()
    try:
        expected = [_calc_price(genai_rates.genai_provider_id(p), m, t) for p, m, t in CASES]
        with mock.patch.object(genai_rates, "FAST_PATH", False):
            calls = []
            real = ModelInfo.calc_price

            def spy(self, *args, **kwargs):
                calls.append(self.id)
                return real(self, *args, **kwargs)

            with mock.patch.object(ModelInfo, "calc_price", spy):
                costs = [genai_rates.genai_cost(p, (m,), t, start_ns) for p, m, t in CASES]
            assert costs == expected
            assert len(calls) == len(CASES)  # no price took the fast path
    finally:
        genai_rates._resolver.clear()  # entries built without fast terms


def test_inside_the_tested_range_the_fast_path_is_taken():
    start_ns = int(WHEN.timestamp()) * 10**9
    with mock.patch.object(ModelInfo, "calc_price", side_effect=AssertionError("slow path")):
        for provider, model, tokens in CASES:
            assert genai_rates.genai_cost(provider, (model,), tokens, start_ns) is not None
