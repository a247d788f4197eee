"""The built-in list prices: every pay-per-token catalogue model is priced or says why not, and the data is sane."""

from __future__ import annotations

import pytest

from shared.domain.pricing import DEFAULT_PRICES, Price, PriceTable
from shared.providers.catalog import PROVIDERS, get_provider
from shared.providers.prices import FLAT_RATE_PROVIDERS, LIST_PRICES, UNPRICED
from shared.providers.spec import AuthKind

API_KEY_MODELS = [(p.id, m) for p in PROVIDERS if p.auth is AuthKind.API_KEY for m in p.models]


@pytest.mark.parametrize(("provider", "model"), API_KEY_MODELS)
def test_every_pay_per_token_catalogue_model_has_a_price_or_a_reason(provider: str, model: str) -> None:
    key = (provider, model)
    if provider in FLAT_RATE_PROVIDERS:
        assert PriceTable().lookup(provider, model) == Price(0.0, 0.0)
    elif key in UNPRICED:
        assert UNPRICED[key]
        assert PriceTable().lookup(provider, model) is None
    else:
        assert key in LIST_PRICES, f"{provider}/{model} needs a list price in shared/providers/prices.py"
        assert PriceTable().lookup(provider, model) == DEFAULT_PRICES[key]


def test_the_priced_catalogue_models_are_counted() -> None:
    priced = [k for k in API_KEY_MODELS if k in LIST_PRICES]
    assert len(priced) == len(API_KEY_MODELS) - len(UNPRICED) - sum(p in FLAT_RATE_PROVIDERS for p, _ in API_KEY_MODELS)


@pytest.mark.parametrize(("key", "price"), sorted(DEFAULT_PRICES.items()))
def test_list_prices_are_sane(key: tuple[str, str], price: Price) -> None:
    rates = [price.input, price.output, price.cached, price.cache_creation, price.reasoning]
    assert all(r is None or 0 <= r < 1000 for r in rates), key
    assert price.input > 0 and price.output > 0, key  # a free model belongs in FLAT_RATE_PROVIDERS
    assert price.cached is None or price.cached <= price.input, key  # a cache read is never dearer
    assert Price.from_data(price.to_data()) == price  # every default passes the owner's validation


def test_list_prices_name_pay_per_token_catalogue_rows_only() -> None:
    for provider, model in LIST_PRICES:
        spec = get_provider(provider)
        assert spec is not None and spec.id == provider, provider
        assert spec.auth is AuthKind.API_KEY and provider not in FLAT_RATE_PROVIDERS, provider
        assert model.strip() == model and model, (provider, model)


def test_unpriced_and_flat_rate_entries_name_real_rows() -> None:
    catalogue = set(API_KEY_MODELS)
    assert set(UNPRICED) <= catalogue
    assert not set(UNPRICED) & set(LIST_PRICES)
    for provider in FLAT_RATE_PROVIDERS:
        spec = get_provider(provider)
        assert spec is not None and spec.auth is AuthKind.API_KEY
