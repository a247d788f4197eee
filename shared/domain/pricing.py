"""Prices (USD per 1M tokens) and the cost of a request, computed once, here.

Billing rule. `Usage.input` includes cached and cache-creation tokens and `Usage.output` includes reasoning
tokens, so each token is billed exactly once, at the rate of its kind:

    cost = ( (input - cached - cache_creation) * input_rate
           + cached * cached_rate + cache_creation * cache_creation_rate
           + (output - reasoning) * output_rate + reasoning * reasoning_rate ) / 1e6

A rate left unset falls back: cached and cache creation to the input rate, reasoning to the output rate.
That is exact for providers without a separate rate and never under-counts where a discount exists;
providers that charge a premium for cache writes (Anthropic: 1.25× input) carry that rate explicitly in
the defaults. Odd upstream counts (more cached than input tokens) are clamped at zero, never negative.

Which price applies (`PriceTable.lookup`), first match wins:
1. the owner's price for exactly that provider and model, then for the model without a date suffix
   (`claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`, `gpt-5.4-2026-03-05` → `gpt-5.4`), or the
   other way round (a price stored for a dated id also serves its undated alias);
2. the same two steps in the built-in list prices (`shared.providers.prices`);
3. $0 for subscription (OAuth) and local providers, and for the flat-rate API-key rows: their
   marginal cost is nothing (an owner who wants "API-equivalent" spend sets a price, which wins);
4. otherwise unknown (None): such requests cost $0 and the cost-optimised strategy ranks them last.
Provider ids are catalogue ids (an alias such as `ds` is accepted and normalised); model ids compare
case-insensitively.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, NamedTuple

from shared.domain.usage import Usage
from shared.providers.catalog import get_provider
from shared.providers.prices import FLAT_RATE_PROVIDERS, LIST_PRICES
from shared.providers.spec import AuthKind

# A rate above this is a typo (the dearest models list a few hundred dollars per 1M tokens).
MAX_RATE = 100_000.0
COST_DIGITS = 10  # costs are rounded to 1e-10 USD, finer than one token of the cheapest listed rate

# JSON key → attribute
_FIELDS = {
    "input": "input",
    "output": "output",
    "cached": "cached",
    "cacheCreation": "cache_creation",
    "reasoning": "reasoning",
}


class InvalidPrice(ValueError):
    """A price document that does not hold; `field` names the offending key (camelCase)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _optional(data: Mapping[str, object], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidPrice(f"`{key}` must be a number (USD per 1M tokens), got {value!r:.50}.", key)
    if not 0 <= value <= MAX_RATE:
        raise InvalidPrice(f"`{key}` must be between 0 and {MAX_RATE:g} USD per 1M tokens, got {value!r}.", key)
    return float(value)


def _required(data: Mapping[str, object], key: str) -> float:
    value = _optional(data, key)
    if value is None:
        raise InvalidPrice(f"`{key}` is required (USD per 1M tokens).", key)
    return value


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M tokens. The optional rates fall back when None (see the module docstring)."""

    input: float
    output: float
    cached: float | None = None
    cache_creation: float | None = None
    reasoning: float | None = None

    @property
    def cached_rate(self) -> float:
        return self.input if self.cached is None else self.cached

    @property
    def cache_creation_rate(self) -> float:
        return self.input if self.cache_creation is None else self.cache_creation

    @property
    def reasoning_rate(self) -> float:
        return self.output if self.reasoning is None else self.reasoning

    def to_data(self) -> dict[str, float | None]:
        """The stored and API shape: every key present, null where the rate falls back."""
        return {
            "input": self.input,
            "output": self.output,
            "cached": self.cached,
            "cacheCreation": self.cache_creation,
            "reasoning": self.reasoning,
        }

    @classmethod
    def from_data(cls, data: object) -> Price:
        """Parse the `to_data` shape; raises `InvalidPrice` (a ValueError) naming the first bad key."""
        if not isinstance(data, Mapping):
            raise InvalidPrice(f"A price must be an object with {', '.join(_FIELDS)}.")
        unknown = sorted(str(k) for k in data if k not in _FIELDS)
        if unknown:
            raise InvalidPrice(f"Unknown price field `{unknown[0]}` (allowed: {', '.join(_FIELDS)}).", unknown[0])
        return cls(
            input=_required(data, "input"),
            output=_required(data, "output"),
            cached=_optional(data, "cached"),
            cache_creation=_optional(data, "cacheCreation"),
            reasoning=_optional(data, "reasoning"),
        )


ZERO = Price(0.0, 0.0)


def cost(usage: Usage, price: Price | None) -> float:
    """USD for one request's usage (see the module docstring); 0.0 without a price."""
    if price is None:
        return 0.0
    cached = max(usage.cached, 0)
    creation = max(usage.cache_creation, 0)
    reasoning = max(usage.reasoning, 0)
    fresh_input = max(usage.input - cached - creation, 0)
    answer = max(usage.output - reasoning, 0)
    micro = (
        fresh_input * price.input
        + cached * price.cached_rate
        + creation * price.cache_creation_rate
        + answer * price.output
        + reasoning * price.reasoning_rate
    )
    return round(micro / 1e6, COST_DIGITS)


_DATE_SUFFIX = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2})$")


def _is_dated(model: str) -> bool:
    return _DATE_SUFFIX.search(model.strip().lower()) is not None


def undated(model: str) -> str:
    """The model id without a trailing release date (`-20250929` or `-2026-03-05`), lowercased."""
    return _DATE_SUFFIX.sub("", model.strip().lower())


def canonical_provider(provider: str) -> str:
    """A catalogue id for a catalogue alias (`ds` → `deepseek`); anything else (a node id) unchanged."""
    spec = get_provider(provider)
    return spec.id if spec is not None else provider.strip()


Key = tuple[str, str]
Source = Literal["default", "custom"]


class PriceEntry(NamedTuple):
    provider: str
    model: str
    price: Price
    source: Source


class _Index:
    """Prices by exact (provider, lowercased model), and by undated model for the fallback step."""

    __slots__ = ("by_base", "exact")

    def __init__(self, prices: Mapping[Key, Price]) -> None:
        exact: dict[Key, Price] = {}
        by_base: dict[Key, Price] = {}
        # Undated ids first, so an exact undated entry beats a dated one that strips to the same id.
        for (provider, model), price in sorted(prices.items(), key=lambda kv: _is_dated(kv[0][1])):
            exact[(provider, model.lower())] = price
            by_base.setdefault((provider, undated(model)), price)
        self.exact = MappingProxyType(exact)
        self.by_base = MappingProxyType(by_base)

    def find(self, provider: str, model: str) -> Price | None:
        price = self.exact.get((provider, model.strip().lower()))
        return price if price is not None else self.by_base.get((provider, undated(model)))


def _default_prices() -> dict[Key, Price]:
    return {key: Price(*row) for key, row in LIST_PRICES.items()}


DEFAULT_PRICES: Mapping[Key, Price] = MappingProxyType(_default_prices())
_DEFAULT_INDEX = _Index(DEFAULT_PRICES)  # built once: every snapshot's table shares it


class PriceTable:
    """The effective prices: built-in list prices with the owner's overrides on top. Immutable."""

    __slots__ = ("_custom", "_defaults", "_entries")

    def __init__(self, overrides: Mapping[Key, Price] | None = None, defaults: Mapping[Key, Price] = DEFAULT_PRICES):
        custom = {(canonical_provider(p), m): price for (p, m), price in (overrides or {}).items()}
        self._custom = _Index(custom)
        self._defaults = _DEFAULT_INDEX if defaults is DEFAULT_PRICES else _Index(defaults)
        merged = {(p, m): PriceEntry(p, m, price, "default") for (p, m), price in defaults.items()}
        merged.update({(p, m): PriceEntry(p, m, price, "custom") for (p, m), price in custom.items()})
        self._entries = tuple(sorted(merged.values(), key=lambda e: (e.provider, e.model.lower(), e.model)))

    def lookup(self, provider: str, model: str) -> Price | None:
        """The price that applies to `model` on `provider` (the rules are in the module docstring)."""
        owner = canonical_provider(provider)
        for index in (self._custom, self._defaults):
            price = index.find(owner, model)
            if price is not None:
                return price
        return ZERO if _flat_rate(owner) else None

    def input_rate(self, provider: str, model: str) -> float | None:
        """USD per 1M input tokens, for ranking targets by cost; None when the price is unknown."""
        price = self.lookup(provider, model)
        return None if price is None else price.input

    def entries(self) -> tuple[PriceEntry, ...]:
        """Every listed price, the owner's replacing the default of the same id, by provider and model."""
        return self._entries


def _flat_rate(provider: str) -> bool:
    if provider in FLAT_RATE_PROVIDERS:
        return True
    spec = get_provider(provider)
    return spec is not None and spec.auth in (AuthKind.OAUTH, AuthKind.NONE)
