"""`/api/pricing` over HTTP: an app holding the pricing router, wired to real services on a moto store, with the
admin app's authentication and error handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from functions.admin.routes_pricing import router
from shared.adapters.crypto import AesGcmCipher
from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model
from shared.domain.config import Kind
from shared.domain.pricing import DEFAULT_PRICES
from shared.services.container import assemble
from shared.services.snapshot import ConfigCache
from shared.settings import Settings
from shared.web.errors import add_error_handlers

TOKEN = "omni-admin-pricing-test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


class Api:
    def __init__(self, client: TestClient, store: DynamoConfigStore, changes: list[int]) -> None:
        self.client = client
        self.store = store
        self.changes = changes


@pytest.fixture
def api(table_names: dict[str, str], dynamo_endpoint: str | None, tmp_path: Path) -> Iterator[Api]:
    store = DynamoConfigStore(bind_config_model(table_names["ConfigTable"], "us-east-1", dynamo_endpoint))
    cipher = AesGcmCipher.from_key_file(tmp_path / "k")
    cache = ConfigCache(store, cipher, ttl=None)
    changes: list[int] = []

    def on_change() -> None:
        changes.append(1)
        cache.invalidate()

    settings = Settings.from_env({"OMNIROUTE_DATA_DIR": str(tmp_path)})
    services = assemble(settings, store, cipher, cache, on_change=on_change, admin_token=TOKEN)
    app = FastAPI()
    app.state.services = services
    app.include_router(router)
    add_error_handlers(app)
    try:
        with TestClient(app) as client:
            yield Api(client, store, changes)
    finally:
        asyncio.run(services.aclose())


def error(resp: Any) -> dict[str, Any]:
    body = resp.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) >= {"message", "type", "code"}
    err: dict[str, Any] = body["error"]
    return err


@pytest.mark.parametrize(("method", "body"), [("GET", None), ("PATCH", {}), ("DELETE", None)])
def test_pricing_needs_the_admin_token(api: Api, method: str, body: Any) -> None:
    resp = api.client.request(method, "/api/pricing", json=body, headers={"authorization": "Bearer wrong"})
    assert resp.status_code == 401
    assert error(resp)["type"] == "authentication_error"


def test_get_lists_the_default_table(api: Api) -> None:
    resp = api.client.get("/api/pricing", headers=AUTH)
    assert resp.status_code == 200
    body = resp.json()
    assert (body["currency"], body["unit"]) == ("USD", "per 1M tokens")
    assert len(body["prices"]) == len(DEFAULT_PRICES)
    assert {"provider", "model", "input", "output", "cached", "cacheCreation", "reasoning", "source"} == set(
        body["prices"][0]
    )


def test_patch_sets_and_removes_prices_including_model_ids_with_slashes(api: Api) -> None:
    body = {
        "openai": {"gpt-5.4": {"input": 2, "output": 12}},
        "openrouter": {"qwen/qwen3-coder:free": {"input": 0, "output": 0}},
    }
    resp = api.client.patch("/api/pricing", json=body, headers=AUTH)
    assert resp.status_code == 200, resp.text
    rows = {(p["provider"], p["model"]): p for p in resp.json()["prices"]}
    assert rows[("openai", "gpt-5.4")]["output"] == 12.0 and rows[("openai", "gpt-5.4")]["source"] == "custom"
    assert rows[("openrouter", "qwen/qwen3-coder:free")]["source"] == "custom"
    assert api.store.get(Kind.PRICE, "openrouter/qwen/qwen3-coder:free") is not None
    assert api.changes == [1]

    resp = api.client.patch("/api/pricing", json={"openai": {"gpt-5.4": None}}, headers=AUTH)
    rows = {(p["provider"], p["model"]): p for p in resp.json()["prices"]}
    assert rows[("openai", "gpt-5.4")]["source"] == "default" and rows[("openai", "gpt-5.4")]["output"] == 15.0


def test_a_bad_rate_is_a_400_naming_provider_model_and_field_and_nothing_is_written(api: Api) -> None:
    body = {"openai": {"gpt-5.4": {"input": 1, "output": 1}}, "groq": {"llama-3.1-8b-instant": {"input": -2}}}
    resp = api.client.patch("/api/pricing", json=body, headers=AUTH)
    assert resp.status_code == 400
    err = error(resp)
    assert (err["type"], err["code"]) == ("invalid_request_error", "invalid_price")
    assert "groq/llama-3.1-8b-instant" in err["message"] and "`input`" in err["message"]
    assert api.store.list(Kind.PRICE) == []
    assert api.changes == []


@pytest.mark.parametrize(
    "body",
    [
        ["openai"],
        {"openai": "gpt-5.4"},
        {"openai": {"gpt-5.4": 3}},
        {"": {"gpt-5.4": {"input": 1, "output": 1}}},
        {"openai": {"": {"input": 1, "output": 1}}},
    ],
)
def test_a_body_of_the_wrong_shape_is_a_400(api: Api, body: Any) -> None:
    resp = api.client.patch("/api/pricing", json=body, headers=AUTH)
    assert resp.status_code == 400, resp.text
    assert error(resp)["type"] == "invalid_request_error"


def test_malformed_json_is_a_400(api: Api) -> None:
    resp = api.client.patch("/api/pricing", content=b"{oops", headers={**AUTH, "content-type": "application/json"})
    assert resp.status_code == 400
    error(resp)


def test_delete_resets_one_provider_or_every_price(api: Api) -> None:
    body = {
        "openai": {"gpt-5.4": {"input": 1, "output": 1}, "gpt-5.2": {"input": 1, "output": 1}},
        "groq": {"llama-3.1-8b-instant": {"input": 1, "output": 1}},
    }
    api.client.patch("/api/pricing", json=body, headers=AUTH)
    resp = api.client.delete("/api/pricing", params={"provider": "openai"}, headers=AUTH)
    assert (resp.status_code, resp.json()) == (200, {"removed": 2})
    resp = api.client.delete("/api/pricing", headers=AUTH)
    assert resp.json() == {"removed": 1}
    assert api.store.list(Kind.PRICE) == []


def test_delete_with_an_empty_provider_is_a_400(api: Api) -> None:
    resp = api.client.delete("/api/pricing", params={"provider": ""}, headers=AUTH)
    assert resp.status_code == 400
    error(resp)
