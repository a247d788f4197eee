"""Prices and cost: every token kind billed once at its rate, the fallbacks, and which price applies."""

from __future__ import annotations

import math
from typing import Any

import pytest

from shared.domain.pricing import DEFAULT_PRICES, ZERO, InvalidPrice, Price, PriceTable, cost, undated
from shared.domain.usage import Usage

FULL = Price(input=3.0, output=15.0, cached=0.3, cache_creation=3.75, reasoning=20.0)


# ----- cost ----------------------------------------------------------------------------------------------


def test_every_token_kind_is_billed_once_at_its_own_rate() -> None:
    usage = Usage(input=1_000_000, output=500_000, cached=400_000, cache_creation=100_000, reasoning=200_000)
    # fresh input 500k × 3, cached 400k × 0.3, creation 100k × 3.75, answer 300k × 15, reasoning 200k × 20
    expected = (500_000 * 3.0 + 400_000 * 0.3 + 100_000 * 3.75 + 300_000 * 15.0 + 200_000 * 20.0) / 1e6
    assert cost(usage, FULL) == pytest.approx(expected)
    assert cost(usage, FULL) == pytest.approx(10.495)


def test_reasoning_is_part_of_the_output_and_not_billed_twice() -> None:
    price = Price(input=1.0, output=10.0)  # reasoning falls back to the output rate
    with_reasoning = Usage(input=0, output=1_000, reasoning=600)
    without = Usage(input=0, output=1_000)
    assert cost(with_reasoning, price) == cost(without, price) == pytest.approx(0.01)


def test_unset_rates_fall_back_cached_and_creation_to_input_reasoning_to_output() -> None:
    price = Price(input=2.0, output=8.0)
    assert (price.cached_rate, price.cache_creation_rate, price.reasoning_rate) == (2.0, 2.0, 8.0)
    mixed = Usage(input=1_000_000, output=1_000_000, cached=300_000, cache_creation=200_000, reasoning=400_000)
    plain = Usage(input=1_000_000, output=1_000_000)
    assert cost(mixed, price) == cost(plain, price) == pytest.approx(10.0)


def test_a_zero_rate_is_a_rate_not_a_fallback() -> None:
    price = Price(input=1.0, output=2.0, cached=0.0)
    assert cost(Usage(input=1_000_000, cached=1_000_000), price) == 0.0


def test_no_price_costs_nothing() -> None:
    assert cost(Usage(input=10**9, output=10**9), None) == 0.0


def test_no_usage_costs_nothing() -> None:
    assert cost(Usage(), FULL) == 0.0


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        # more cached than input tokens: no negative fresh input, the cached ones still count at their rate
        (Usage(input=100, cached=300), 300 * 0.3 / 1e6),
        # reasoning larger than the output (a provider that reports it apart): billed as reasoning only
        (Usage(output=100, reasoning=400), 400 * 20.0 / 1e6),
        # negative counts from a broken upstream count as nothing
        (Usage(input=-5, output=-5, cached=-1, cache_creation=-1, reasoning=-1), 0.0),
    ],
)
def test_odd_upstream_counts_are_clamped_never_negative(usage: Usage, expected: float) -> None:
    got = cost(usage, FULL)
    assert got >= 0.0
    assert got == pytest.approx(expected)


def test_cost_is_rounded_to_a_tenth_of_a_nano_dollar() -> None:
    assert cost(Usage(input=1), Price(input=0.0028, output=0.0)) == 2.8e-9
    assert cost(Usage(input=1, output=2), Price(input=0.1, output=0.2)) == 5e-7  # not 5.000000000000001e-07
    assert cost(Usage(input=3), Price(input=0.1, output=0.0)) == 3e-7


def test_a_long_agent_session_costs_what_the_list_price_says() -> None:
    sonnet = DEFAULT_PRICES[("anthropic", "claude-sonnet-4-6")]
    usage = Usage(input=2_000_000, output=100_000, cached=1_500_000, cache_creation=200_000, reasoning=30_000)
    # 300k × 3 + 1.5M × 0.30 + 200k × 3.75 + 70k × 15 + 30k × 15
    assert cost(usage, sonnet) == pytest.approx(0.9 + 0.45 + 0.75 + 1.05 + 0.45)


# ----- Price documents -----------------------------------------------------------------------------------


def test_price_round_trips_through_its_camel_case_document() -> None:
    data = FULL.to_data()
    assert data == {"input": 3.0, "output": 15.0, "cached": 0.3, "cacheCreation": 3.75, "reasoning": 20.0}
    assert Price.from_data(data) == FULL


def test_unset_rates_are_null_in_the_document_and_optional_when_read() -> None:
    assert Price(1.0, 2.0).to_data() == {
        "input": 1.0,
        "output": 2.0,
        "cached": None,
        "cacheCreation": None,
        "reasoning": None,
    }
    assert Price.from_data({"input": 1, "output": 2}) == Price(1.0, 2.0)
    assert Price.from_data({"input": 1, "output": 2, "cached": None}) == Price(1.0, 2.0)


def test_integers_are_read_as_floats() -> None:
    price = Price.from_data({"input": 3, "output": 15, "cacheCreation": 0})
    assert isinstance(price.input, float) and price.cache_creation == 0.0


@pytest.mark.parametrize(
    ("data", "field", "needle"),
    [
        ({"output": 1}, "input", "required"),
        ({"input": 1}, "output", "required"),
        ({"input": None, "output": 1}, "input", "required"),
        ({"input": -0.5, "output": 1}, "input", "between 0"),
        ({"input": 1, "output": 1, "cached": -1}, "cached", "between 0"),
        ({"input": "3", "output": 1}, "input", "must be a number"),
        ({"input": True, "output": 1}, "input", "must be a number"),
        ({"input": 1, "output": [1]}, "output", "must be a number"),
        ({"input": math.inf, "output": 1}, "input", "must be a number"),
        ({"input": math.nan, "output": 1}, "input", "must be a number"),
        ({"input": 1e12, "output": 1}, "input", "between 0"),
        ({"input": 1, "output": 1, "cache_creation": 1}, "cache_creation", "Unknown price field"),
    ],
)
def test_bad_price_documents_are_refused_naming_the_field(data: dict[str, Any], field: str, needle: str) -> None:
    with pytest.raises(InvalidPrice, match=needle) as exc:
        Price.from_data(data)
    assert exc.value.field == field
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize("data", [None, [], "3/15", 3])
def test_a_price_must_be_an_object(data: object) -> None:
    with pytest.raises(InvalidPrice, match="must be an object"):
        Price.from_data(data)


# ----- which price applies ------------------------------------------------------------------------------


def test_the_defaults_apply_without_overrides() -> None:
    table = PriceTable()
    assert table.lookup("openai", "gpt-5.4") == Price(2.5, 15.0, cached=0.25)
    assert table.input_rate("anthropic", "claude-opus-4-6") == 5.0


def test_an_override_wins_over_the_default() -> None:
    mine = Price(1.0, 2.0)
    table = PriceTable({("openai", "gpt-5.4"): mine})
    assert table.lookup("openai", "gpt-5.4") == mine
    assert table.lookup("openai", "gpt-5.4-mini") == DEFAULT_PRICES[("openai", "gpt-5.4-mini")]


def test_a_dated_model_finds_the_undated_price_and_the_other_way_round() -> None:
    table = PriceTable({("openai", "gpt-5.4"): Price(1.0, 2.0)})
    assert table.lookup("openai", "gpt-5.4-2026-03-05") == Price(1.0, 2.0)
    # the catalogue lists Sonnet 4.5 by its dated id; clients often send the undated alias
    dated = DEFAULT_PRICES[("anthropic", "claude-sonnet-4-5-20250929")]
    assert table.lookup("anthropic", "claude-sonnet-4-5") == dated
    assert table.lookup("anthropic", "claude-sonnet-4-5-20260101") == dated


def test_an_exact_price_beats_the_date_stripped_one() -> None:
    table = PriceTable(
        {("x", "m"): Price(1.0, 1.0), ("x", "m-20250101"): Price(2.0, 2.0)},
        defaults={},
    )
    assert table.lookup("x", "m") == Price(1.0, 1.0)
    assert table.lookup("x", "m-20250101") == Price(2.0, 2.0)
    assert table.lookup("x", "m-20990101") == Price(1.0, 1.0)  # the undated price serves other dates


def test_an_override_of_the_undated_id_wins_over_a_dated_default() -> None:
    table = PriceTable({("anthropic", "claude-sonnet-4-5"): Price(9.0, 9.0)})
    assert table.lookup("anthropic", "claude-sonnet-4-5-20250929") == Price(9.0, 9.0)


def test_models_compare_case_insensitively_and_aliases_name_their_provider() -> None:
    table = PriceTable()
    assert table.lookup("minimax", "minimax-m2.7") == DEFAULT_PRICES[("minimax", "MiniMax-M2.7")]
    assert table.lookup("ds", "deepseek-chat") == DEFAULT_PRICES[("deepseek", "deepseek-chat")]
    assert PriceTable({("DS", "deepseek-chat"): Price(1.0, 1.0)}).lookup("deepseek", "deepseek-chat") == Price(1, 1)


def test_model_ids_with_slashes_are_plain_keys() -> None:
    table = PriceTable()
    assert table.lookup("openrouter", "openai/gpt-5") == Price(1.25, 10.0, cached=0.125)
    assert table.lookup("openrouter", "gpt-5") is None  # no guessing across providers' namespaces


@pytest.mark.parametrize(("provider", "model"), [("claude", "claude-opus-4-6"), ("codex", "gpt-5.2"), ("ollama", "x")])
def test_subscriptions_and_local_servers_cost_nothing_per_token(provider: str, model: str) -> None:
    assert PriceTable().lookup(provider, model) == ZERO
    assert PriceTable().input_rate(provider, model) == 0.0


@pytest.mark.parametrize(("provider", "model"), [("glm", "glm-5.1"), ("nvidia", "anything-new")])
def test_flat_rate_api_key_rows_cost_nothing_per_token(provider: str, model: str) -> None:
    assert PriceTable().lookup(provider, model) == ZERO


def test_an_owner_price_on_a_subscription_tracks_api_equivalent_spend() -> None:
    table = PriceTable({("claude", "claude-opus-4-6"): Price(5.0, 25.0)})
    assert table.lookup("cc", "claude-opus-4-6") == Price(5.0, 25.0)
    assert table.lookup("claude", "claude-haiku-4-5") == ZERO


def test_an_unknown_price_is_none() -> None:
    table = PriceTable()
    assert table.lookup("openai", "gpt-99") is None
    assert table.lookup("node_abc123", "my-model") is None
    assert table.input_rate("openai", "gpt-99") is None
    assert cost(Usage(input=1_000_000), table.lookup("openai", "gpt-99")) == 0.0


def test_table_cost_uses_the_price_that_applies() -> None:
    table = PriceTable({("groq", "llama-3.1-8b-instant"): Price(1.0, 2.0)})
    assert cost(Usage(input=1_000_000, output=1_000_000), table.lookup("groq", "llama-3.1-8b-instant")) == 3.0


def test_entries_list_defaults_and_overrides_once_each_by_provider_and_model() -> None:
    table = PriceTable({("openai", "gpt-5.4"): Price(1.0, 2.0), ("zzz-node", "m"): Price(0.5, 0.5)})
    entries = table.entries()
    keys = [(e.provider, e.model) for e in entries]
    assert len(keys) == len(set(keys)) == len(DEFAULT_PRICES) + 1
    assert keys == sorted(keys, key=lambda k: (k[0], k[1].lower(), k[1]))
    by_key = {(e.provider, e.model): e for e in entries}
    assert by_key[("openai", "gpt-5.4")].source == "custom"
    assert by_key[("openai", "gpt-5.4")].price == Price(1.0, 2.0)
    assert by_key[("openai", "gpt-5.2")].source == "default"
    assert by_key[("zzz-node", "m")].source == "custom"


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("gpt-5.4-2026-03-05", "gpt-5.4"),
        ("command-a-03-2025", "command-a-03-2025"),  # not a full date: kept
        ("gpt-oss-120b", "gpt-oss-120b"),
        ("MiniMax-M2.7", "minimax-m2.7"),
    ],
)
def test_undated_strips_only_a_trailing_release_date(model: str, expected: str) -> None:
    assert undated(model) == expected
