"""The pricing table behind `/api/pricing`: the owner's prices stored as Config records, over the defaults.

A stored price is a record of kind `Kind.PRICE`, id `<provider>/<model>` (provider ids never hold `/`, model
ids may), data = `Price.to_data()`. Writes call `on_change` so this process's snapshot is rebuilt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from shared.domain.config import Kind, Record
from shared.domain.pricing import DEFAULT_PRICES, InvalidPrice, Price, PriceEntry, PriceTable, canonical_provider
from shared.domain.text import has_control_characters
from shared.errors import InvalidRequest
from shared.ports import ConfigStore

log = logging.getLogger(__name__)

MAX_CHANGES = 1000  # model entries in one PATCH: far above any real table, bounds one request's writes


def price_id(provider: str, model: str) -> str:
    return f"{provider}/{model}"


def split_price_id(id: str) -> tuple[str, str]:
    provider, sep, model = id.partition("/")
    if not sep or not provider or not model:
        raise ValueError(f"a price id is `<provider>/<model>`, got {id!r}")
    return provider, model


def price_table(records: Iterable[Record]) -> PriceTable:
    """The effective table from configuration records (other kinds are ignored). A stored price that does
    not parse (edited by hand, restored from an older backup) is skipped with a log line, so the default
    price applies rather than every request failing."""
    overrides: dict[tuple[str, str], Price] = {}
    for r in records:
        if r.kind != Kind.PRICE:
            continue
        try:
            overrides[split_price_id(r.id)] = Price.from_data(r.data)
        except ValueError as exc:
            log.error("stored price %r is skipped, it does not parse: %s", r.id, exc)
    return PriceTable(overrides)


def entry_view(entry: PriceEntry) -> dict[str, Any]:
    """One row of the API's list: `{provider, model, input, output, cached, cacheCreation, reasoning, source}`."""
    return {"provider": entry.provider, "model": entry.model, **entry.price.to_data(), "source": entry.source}


def _invalid(message: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_price")


def _check_id(value: object, what: str, *, max_bytes: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    # Part of a record's sort key (DynamoDB caps keys at 1024 bytes).
    if not text or len(text.encode("utf-8")) > max_bytes or has_control_characters(text):
        raise _invalid(f"A {what} id must be 1 to {max_bytes} bytes without control characters, got {value!r:.80}.")
    return text


class PricingService:
    def __init__(self, store: ConfigStore, on_change: Callable[[], None]) -> None:
        self._store = store
        self._on_change = on_change

    def table(self) -> PriceTable:
        return price_table(self._store.list(Kind.PRICE))

    def list(self) -> dict[str, Any]:
        """The merged table, as `GET /api/pricing` answers it."""
        return {
            "prices": [entry_view(e) for e in self.table().entries()],
            "currency": "USD",
            "unit": "per 1M tokens",
        }

    def patch(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Apply `{provider: {model: {input, output, cached?, cacheCreation?, reasoning?} | null}}`.

        A model's object is merged over its current price (the owner's, else the default), so sending
        `{"output": 12}` changes one rate; a null field clears an optional rate (back to its fallback);
        null for the whole model removes the owner's price (back to the default). Every entry is checked
        before anything is written: one bad entry refuses the whole request.
        """
        plan = self._plan(changes)
        for id, data in plan:
            if data is None:
                self._store.delete(Kind.PRICE, id)
            else:
                self._store.put(Kind.PRICE, id, data)
        if plan:
            self._on_change()
        return self.list()

    def reset(self, provider: str | None = None) -> int:
        """Remove the owner's prices (of one provider, or all); returns how many were removed."""
        owner = self._owner(_check_id(provider, "provider", max_bytes=200)) if provider is not None else None
        removed = 0
        for r in self._store.list(Kind.PRICE):
            if owner is None or r.id.partition("/")[0] == owner:
                removed += int(self._store.delete(Kind.PRICE, r.id))
        if removed:
            self._on_change()
        return removed

    # ----- helpers -------------------------------------------------------------------------------------

    def _plan(self, changes: Mapping[str, Any]) -> Sequence[tuple[str, dict[str, float | None] | None]]:
        if not isinstance(changes, Mapping):
            raise _invalid("The body must be an object: `{provider: {model: {input, output, ...} | null}}`.")
        stored = {r.id: r.data for r in self._store.list(Kind.PRICE)}
        nodes = {r.id: str(r.data.get("prefix", "")).lower() for r in self._store.list(Kind.NODE)}
        plan: dict[str, dict[str, float | None] | None] = {}
        for raw_provider, models in changes.items():
            owner = self._owner(_check_id(raw_provider, "provider", max_bytes=200), nodes)
            if not isinstance(models, Mapping):
                raise _invalid(
                    f"`{raw_provider}` must map model ids to prices (or null), got {type(models).__name__}.",
                    str(raw_provider),
                )
            for raw_model, fields in models.items():
                model = _check_id(raw_model, "model", max_bytes=512)
                id = price_id(owner, model)
                if fields is None:
                    plan[id] = None
                    continue
                if not isinstance(fields, Mapping):
                    raise _invalid(f"The price of `{id}` must be an object or null.", id)
                current = stored.get(id) or _default_data(owner, model)  # what a partial entry is merged over
                try:
                    plan[id] = Price.from_data({**current, **fields}).to_data()
                except InvalidPrice as exc:
                    param = f"{id}.{exc.field}" if exc.field else id
                    raise _invalid(f"The price of `{id}`: {exc}", param) from exc
                if len(plan) > MAX_CHANGES:
                    raise _invalid(f"At most {MAX_CHANGES} prices can be changed in one request.")
        return tuple(plan.items())

    def _owner(self, provider: str, nodes: Mapping[str, str] | None = None) -> str:
        """The id prices are stored under: a catalogue id (for any of its aliases), a node id (for its
        prefix), or the id as sent (a provider that is not configured yet may still be priced)."""
        if "/" in provider:
            raise _invalid(f"A provider id has no `/`, got {provider!r:.80}; send `{{provider: {{model: ...}}}}`.")
        owner = canonical_provider(provider)
        if owner != provider.strip():
            return owner
        if nodes is None:
            nodes = {r.id: str(r.data.get("prefix", "")).lower() for r in self._store.list(Kind.NODE)}
        if provider in nodes:
            return provider
        return next((id for id, prefix in nodes.items() if prefix == provider.lower()), provider)


def _default_data(provider: str, model: str) -> Mapping[str, Any]:
    price = DEFAULT_PRICES.get((provider, model))
    return price.to_data() if price is not None else {}
