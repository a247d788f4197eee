"""PricingService against a real (moto) store: patch, list, removal, reset, all-or-nothing validation, and
the table the snapshot builds from the stored records."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model
from shared.domain.config import Kind, Record
from shared.domain.pricing import DEFAULT_PRICES, Price
from shared.errors import InvalidRequest
from shared.services.admin_pricing import PricingService, price_table

Parts = tuple[PricingService, DynamoConfigStore, list[int]]


@pytest.fixture
def parts(table_names: dict[str, str], dynamo_endpoint: str | None) -> Parts:
    store = DynamoConfigStore(bind_config_model(table_names["ConfigTable"], "us-east-1", dynamo_endpoint))
    changes: list[int] = []
    return PricingService(store, on_change=lambda: changes.append(1)), store, changes


def row(view: dict[str, Any], provider: str, model: str) -> dict[str, Any]:
    found = [p for p in view["prices"] if (p["provider"], p["model"]) == (provider, model)]
    assert len(found) == 1, (provider, model)
    return found[0]


def refused(call: Callable[[], object], param: str | None, needle: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        call()
    assert exc.value.code == "invalid_price"
    assert exc.value.param == param
    assert needle in exc.value.message, exc.value.message


def test_the_list_is_the_default_table_in_usd_per_million(parts: Parts) -> None:
    svc, _, _ = parts
    view = svc.list()
    assert (view["currency"], view["unit"]) == ("USD", "per 1M tokens")
    assert len(view["prices"]) == len(DEFAULT_PRICES)
    assert row(view, "openai", "gpt-5.4") == {
        "provider": "openai",
        "model": "gpt-5.4",
        "input": 2.5,
        "output": 15.0,
        "cached": 0.25,
        "cacheCreation": None,
        "reasoning": None,
        "source": "default",
    }


def test_a_patched_price_is_stored_listed_as_custom_and_reaches_the_table(parts: Parts) -> None:
    svc, store, changes = parts
    view = svc.patch({"openai": {"gpt-5.4": {"input": 2, "output": 12, "cached": 0.2, "reasoning": 20}}})
    assert row(view, "openai", "gpt-5.4") == {
        "provider": "openai",
        "model": "gpt-5.4",
        "input": 2.0,
        "output": 12.0,
        "cached": 0.2,
        "cacheCreation": None,
        "reasoning": 20.0,
        "source": "custom",
    }
    stored = store.get(Kind.PRICE, "openai/gpt-5.4")
    assert stored is not None and stored.data["output"] == 12.0
    assert price_table(store.list_all()).lookup("openai", "gpt-5.4") == Price(2.0, 12.0, cached=0.2, reasoning=20.0)
    assert changes == [1]  # one notification per request, however many prices it changes


def test_a_partial_entry_is_merged_over_the_current_price(parts: Parts) -> None:
    svc, _, _ = parts
    view = svc.patch({"anthropic": {"claude-sonnet-4-6": {"output": 16}}})
    assert row(view, "anthropic", "claude-sonnet-4-6") | {"source": None} == {
        "provider": "anthropic",
        "model": "claude-sonnet-4-6",
        "input": 3.0,
        "output": 16.0,
        "cached": 0.3,
        "cacheCreation": 3.75,
        "reasoning": None,
        "source": None,
    }
    # ...then over the owner's own price; a null field clears that rate back to its fallback
    view = svc.patch({"anthropic": {"claude-sonnet-4-6": {"input": 4, "cacheCreation": None}}})
    got = row(view, "anthropic", "claude-sonnet-4-6")
    assert (got["input"], got["output"], got["cacheCreation"], got["source"]) == (4.0, 16.0, None, "custom")


def test_a_new_model_needs_input_and_output(parts: Parts) -> None:
    svc, store, changes = parts
    refused(lambda: svc.patch({"openai": {"gpt-9": {"output": 1}}}), "openai/gpt-9.input", "required")
    assert changes == []
    svc.patch({"openai": {"gpt-9": {"input": 1, "output": 2}}})
    assert changes == [1]
    assert row(svc.list(), "openai", "gpt-9")["source"] == "custom"
    assert store.get(Kind.PRICE, "openai/gpt-9") is not None


def test_null_removes_the_owners_price_and_the_default_applies_again(parts: Parts) -> None:
    svc, store, _ = parts
    svc.patch({"openai": {"gpt-5.4": {"input": 9, "output": 9}, "my-finetune": {"input": 1, "output": 1}}})
    view = svc.patch({"openai": {"gpt-5.4": None, "my-finetune": None}})
    assert row(view, "openai", "gpt-5.4")["source"] == "default"
    assert row(view, "openai", "gpt-5.4")["input"] == 2.5
    assert not [p for p in view["prices"] if p["model"] == "my-finetune"]
    assert store.list(Kind.PRICE) == []


def test_null_for_a_price_that_was_never_set_is_harmless(parts: Parts) -> None:
    svc, store, _ = parts
    svc.patch({"openai": {"gpt-5.4": None}})
    assert store.list(Kind.PRICE) == []


def test_model_ids_with_slashes_are_stored_under_provider_slash_model(parts: Parts) -> None:
    svc, store, _ = parts
    svc.patch({"openrouter": {"meta-llama/llama-4-maverick:free": {"input": 0, "output": 0}}})
    rec = store.get(Kind.PRICE, "openrouter/meta-llama/llama-4-maverick:free")
    assert rec is not None
    table = price_table(store.list_all())
    assert table.lookup("openrouter", "meta-llama/llama-4-maverick:free") == Price(0.0, 0.0)
    assert row(svc.list(), "openrouter", "meta-llama/llama-4-maverick:free")["source"] == "custom"


def test_one_bad_entry_refuses_the_whole_request_and_writes_nothing(parts: Parts) -> None:
    svc, store, changes = parts
    bad = {
        "openai": {"gpt-5.4": {"input": 1, "output": 1}},
        "groq": {"llama-3.1-8b-instant": {"input": -1, "output": 1}},
    }
    refused(lambda: svc.patch(bad), "groq/llama-3.1-8b-instant.input", "groq/llama-3.1-8b-instant")
    assert store.list(Kind.PRICE) == []
    assert changes == []


BAD_ENTRIES: list[tuple[dict[str, Any], str | None, str]] = [
    ({"openai": {"gpt-5.4": {"input": "cheap"}}}, "openai/gpt-5.4.input", "must be a number"),
    ({"openai": {"gpt-5.4": {"output": True}}}, "openai/gpt-5.4.output", "must be a number"),
    ({"openai": {"gpt-5.4": {"input": None}}}, "openai/gpt-5.4.input", "required"),
    ({"openai": {"gpt-5.4": {"inputRate": 1}}}, "openai/gpt-5.4.inputRate", "Unknown price field"),
    ({"openai": {"gpt-5.4": 3}}, "openai/gpt-5.4", "must be an object or null"),
    ({"openai": ["gpt-5.4"]}, "openai", "must map model ids"),
    ({"openai": None}, "openai", "must map model ids"),
    ({"": {"m": {"input": 1, "output": 1}}}, None, "provider id"),
    ({"openai/gpt-5.4": {"m": {"input": 1, "output": 1}}}, None, "has no `/`"),
    ({"openai": {" ": {"input": 1, "output": 1}}}, None, "model id"),
    ({"openai": {"bad\nmodel": {"input": 1, "output": 1}}}, None, "control characters"),
    ({"openai": {"x" * 513: {"input": 1, "output": 1}}}, None, "1 to 512 bytes"),
]


def test_bad_entries_are_refused_naming_provider_model_and_field(parts: Parts) -> None:
    svc, store, _ = parts
    for changes, param, needle in BAD_ENTRIES:  # one store for all: creating tables is the slow part
        refused(lambda changes=changes: svc.patch(changes), param, needle)
    assert store.list(Kind.PRICE) == []


def test_provider_aliases_and_node_prefixes_are_stored_under_the_owner_id(parts: Parts) -> None:
    svc, store, _ = parts
    store.create(Kind.NODE, "node_abc123", {"name": "lab", "prefix": "lab", "baseUrl": "http://x", "apiType": "openai"})
    svc.patch({"ds": {"deepseek-chat": {"output": 0.3}}, "LAB": {"m": {"input": 1, "output": 2}}})
    assert {r.id for r in store.list(Kind.PRICE)} == {"deepseek/deepseek-chat", "node_abc123/m"}
    # a provider that is not configured (yet) may still be priced
    svc.patch({"node_future": {"m": {"input": 1, "output": 1}}})
    assert store.get(Kind.PRICE, "node_future/m") is not None


def test_reset_removes_one_providers_prices_or_all(parts: Parts) -> None:
    svc, store, changes = parts
    svc.patch(
        {
            "openai": {"gpt-5.4": {"input": 1, "output": 1}, "gpt-5.2": {"input": 1, "output": 1}},
            "openrouter": {"openai/gpt-5": {"input": 1, "output": 1}},
        }
    )
    assert svc.reset("openai") == 2
    assert [r.id for r in store.list(Kind.PRICE)] == ["openrouter/openai/gpt-5"]
    assert svc.reset("openai") == 0
    assert svc.reset() == 1
    assert store.list(Kind.PRICE) == []
    assert changes == [1, 1, 1]  # the patch and the two resets that removed something


def test_reset_accepts_a_provider_alias(parts: Parts) -> None:
    svc, _, _ = parts
    svc.patch({"deepseek": {"deepseek-chat": {"input": 1, "output": 1}}})
    assert svc.reset("ds") == 1


def test_a_malformed_stored_price_is_skipped_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    records = [
        Record(Kind.PRICE, "openai/gpt-5.4", {"input": -1, "output": 1}, 1, ""),
        Record(Kind.PRICE, "no-slash", {"input": 1, "output": 1}, 1, ""),
        Record(Kind.PRICE, "groq/llama-3.1-8b-instant", {"input": 7, "output": 7}, 1, ""),
        Record(Kind.SETTINGS, "global", {"input": 1, "output": 1}, 1, ""),
    ]
    with caplog.at_level(logging.ERROR, logger="shared.services.admin_pricing"):
        table = price_table(records)
    assert table.lookup("openai", "gpt-5.4") == DEFAULT_PRICES[("openai", "gpt-5.4")]
    assert table.lookup("groq", "llama-3.1-8b-instant") == Price(7.0, 7.0)
    assert len(table.entries()) == len(DEFAULT_PRICES)
    assert "openai/gpt-5.4" in caplog.text and "no-slash" in caplog.text
