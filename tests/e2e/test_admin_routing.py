"""Combos, aliases, fallback chains, connection rate limits and routing settings over HTTP against a real
`omniroute serve`. The gateway is shared with other tests, so every test removes what it adds."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.harness import Gateway


def err(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert set(body) == {"error"}, body
    e: dict[str, Any] = body["error"]
    return e


def model_owners(gateway: Gateway) -> dict[str, str]:
    return {m["id"]: m["owned_by"] for m in httpx.get(gateway.v1 + "/models").json()["data"]}


def test_combo_crud_with_a_slash_in_the_name(gateway: Gateway) -> None:
    with gateway.admin() as api:
        created = api.post(
            "/combos",
            json={
                "name": "e2e/fast",
                "models": ["ds/deepseek-chat", {"model": "fake/gpt-4o-mini", "weight": 2}],
                "strategy": "weighted",
                "config": {"maxRetries": 1},
            },
        )
        assert created.status_code == 201, created.text
        combo = created.json()["combo"]
        assert combo["name"] == "e2e/fast" and combo["version"] == 1
        assert combo["models"] == ["ds/deepseek-chat", {"model": "fake/gpt-4o-mini", "weight": 2}]
        assert combo["config"] == {"maxRetries": 1, "retryDelayMs": 0}
        assert "e2e/fast" in [c["name"] for c in api.get("/combos").json()["combos"]]
        assert api.get("/combos/e2e/fast").json()["combo"] == combo
        assert api.get("/combos/e2e%2Ffast").json()["combo"] == combo
        assert model_owners(gateway)["e2e/fast"] == "combo"

        patched = api.patch("/combos/e2e/fast", json={"config": {"retryDelayMs": 100}}).json()["combo"]
        assert patched["strategy"] == "weighted" and patched["config"] == {"maxRetries": 1, "retryDelayMs": 100}
        assert patched["version"] == 2
        replaced = api.put("/combos/e2e/fast", json={"models": ["ds/deepseek-chat"]}).json()["combo"]
        assert replaced["strategy"] == "priority" and replaced["config"] == {"maxRetries": 0, "retryDelayMs": 0}

        assert api.delete("/combos/e2e/fast").status_code == 204
        gone = api.get("/combos/e2e/fast")
        assert gone.status_code == 404 and err(gone)["code"] == "not_found"
        assert api.delete("/combos/e2e/fast").status_code == 404
    assert "e2e/fast" not in model_owners(gateway)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"name": "e2e-bad", "models": ["nope/model"]}, "models[0]", "invalid_combo"),
        ({"name": "ds/shadow", "models": ["ds/deepseek-chat"]}, "name", "invalid_combo"),
        ({"name": "e2e-bad", "models": ["ds/m"], "config": {"maxRetries": 6}}, "config.maxRetries", "invalid_value"),
        ({"name": "e2e-bad", "models": ["ds/m"], "config": {"maxRetries": "2"}}, "config.maxRetries", "invalid_value"),
        ({"name": "e2e-bad", "models": ["ds/m"], "config": {"bogus": 1}}, "config.bogus", "invalid_value"),
        ({"name": "e2e-bad", "models": ["ds/m"], "bogus": 1}, "bogus", "invalid_value"),
        ({"name": "e2e-bad", "models": []}, "models", "invalid_value"),
        ({"name": "e2e-bad", "models": ["ds/m"], "strategy": None}, None, "invalid_value"),
    ],
)
def test_combo_validation_errors_are_400_with_param_and_code(
    gateway: Gateway, body: dict[str, Any], param: str | None, code: str
) -> None:
    with gateway.admin() as api:
        resp = api.post("/combos", json=body)
    assert resp.status_code == 400, resp.text
    e = err(resp)
    assert (e["type"], e["code"], e["param"]) == ("invalid_request_error", code, param)


def test_a_referenced_combo_cannot_be_deleted_409(gateway: Gateway) -> None:
    with gateway.admin() as api:
        assert api.post("/combos", json={"name": "e2e-base", "models": ["ds/deepseek-chat"]}).status_code == 201
        assert api.post("/combos", json={"name": "e2e-top", "models": ["e2e-base"]}).status_code == 201
        duplicate = api.post("/combos", json={"name": "e2e-base", "models": ["ds/deepseek-chat"]})
        assert duplicate.status_code == 409 and err(duplicate)["code"] == "combo_exists"
        cycle = api.patch("/combos/e2e-base", json={"models": ["e2e-top"]})
        assert cycle.status_code == 400 and "e2e-base → e2e-top → e2e-base" in err(cycle)["message"]

        in_use = api.delete("/combos/e2e-base")
        assert in_use.status_code == 409
        e = err(in_use)
        assert (e["type"], e["code"]) == ("conflict_error", "combo_in_use") and "e2e-top" in e["message"]

        assert api.delete("/combos/e2e-top").status_code == 204
        assert api.delete("/combos/e2e-base").status_code == 204


def test_aliases(gateway: Gateway) -> None:
    wildcard = "e2e-gpt-?"
    with gateway.admin() as api:
        exact = api.post("/aliases", json={"pattern": "e2e-smart", "target": "ds/deepseek-reasoner"})
        assert exact.status_code == 201 and exact.json()["alias"]["target"] == "ds/deepseek-reasoner"
        assert api.post("/aliases", json={"pattern": wildcard, "target": "fake/gpt-4o-mini"}).status_code == 201
        again = api.post("/aliases", json={"pattern": "e2e-smart", "target": "ds/deepseek-chat"})
        assert again.status_code == 409 and err(again)["code"] == "alias_exists"
        spaced = api.post("/aliases", json={"pattern": "e2e smart", "target": "ds/deepseek-chat"})
        assert spaced.status_code == 400 and err(spaced)["param"] == "pattern"
        patterns = [a["pattern"] for a in api.get("/aliases").json()["aliases"]]
        assert {"e2e-smart", wildcard} <= set(patterns)
        owners = model_owners(gateway)
        assert owners["e2e-smart"] == "alias" and wildcard not in owners

        assert api.delete("/aliases/" + quote(wildcard)).status_code == 204  # `?` travels as %3F
        assert api.delete("/aliases/e2e-smart").status_code == 204
        assert api.delete("/aliases/e2e-smart").status_code == 404
        assert not {"e2e-smart", wildcard} & {a["pattern"] for a in api.get("/aliases").json()["aliases"]}


def test_fallback_chains(gateway: Gateway) -> None:
    with gateway.admin() as api:
        created = api.post("/fallback-chains", json={"pattern": "e2e/*", "models": ["ds/deepseek-chat"]})
        assert created.status_code == 201, created.text
        assert created.json()["fallbackChain"]["models"] == ["ds/deepseek-chat"]
        replaced = api.put("/fallback-chains/e2e/*", json={"models": ["fake/gpt-4o-mini", "ds/deepseek-chat"]})
        assert replaced.json()["fallbackChain"]["models"] == ["fake/gpt-4o-mini", "ds/deepseek-chat"]
        listed = {f["pattern"]: f for f in api.get("/fallback-chains").json()["fallbackChains"]}
        assert listed["e2e/*"]["version"] == 2
        too_many = api.put("/fallback-chains/e2e/*", json={"models": ["ds/deepseek-chat"] * 11})
        assert too_many.status_code == 400 and err(too_many)["param"] == "models"
        assert api.put("/fallback-chains/e2e-none", json={"models": ["ds/m"]}).status_code == 404
        assert api.delete("/fallback-chains/e2e/*").status_code == 204
        assert api.delete("/fallback-chains/e2e/*").status_code == 404


def test_connection_rate_limit(gateway: Gateway) -> None:
    with gateway.admin() as api:
        created = api.post(
            "/providers",
            json={
                "provider": "groq",
                "apiKey": "gsk-e2e-000000000000001",
                "rateLimit": {"rpm": 30, "maxConcurrent": 2},
            },
        )
        assert created.status_code == 201, created.text
        conn = created.json()["connection"]
        assert conn["rateLimit"] == {"rpm": 30, "maxConcurrent": 2}
        try:
            patched = api.patch(f"/providers/{conn['id']}", json={"rateLimit": {"minGapMs": 500}}).json()
            assert patched["connection"]["rateLimit"] == {"minGapMs": 500}
            cleared = api.patch(f"/providers/{conn['id']}", json={"rateLimit": None}).json()["connection"]
            assert "rateLimit" not in cleared
            bad = api.patch(f"/providers/{conn['id']}", json={"rateLimit": {"rpm": 0}})
            assert bad.status_code == 400 and err(bad)["param"] == "rateLimit.rpm"
            unknown = api.patch(f"/providers/{conn['id']}", json={"rateLimit": {"burst": 1}})
            assert unknown.status_code == 400 and err(unknown)["param"] == "rateLimit.burst"
        finally:
            assert api.delete(f"/providers/{conn['id']}").status_code == 204


def test_routing_settings_round_trip(gateway: Gateway) -> None:
    with gateway.admin() as api:
        sent = {
            "accountStrategy": "round-robin",
            "stickyLimit": 5,
            "resilience": {"apikey": {"breakerThreshold": 4, "cooldownBaseSeconds": 1.5}},
            "keepaliveSeconds": 10,
        }
        try:
            resp = api.patch("/settings", json=sent)
            assert resp.status_code == 200, resp.text
            stored = api.get("/settings").json()
            assert {k: stored[k] for k in sent} == sent
        finally:
            reset = {"accountStrategy": None, "stickyLimit": None, "resilience": None, "keepaliveSeconds": None}
            assert api.patch("/settings", json=reset).status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"accountStrategy": "fastest"}, "accountStrategy"),
        ({"stickyLimit": 0}, "stickyLimit"),
        ({"stickyLimit": 1001}, "stickyLimit"),
        ({"maxAttempts": 31}, "maxAttempts"),
        ({"cacheTtlSeconds": -1}, "cacheTtlSeconds"),
        ({"firstByteTimeoutSeconds": 901}, "firstByteTimeoutSeconds"),
        ({"streamIdleTimeoutSeconds": 0.5}, "streamIdleTimeoutSeconds"),
        ({"keepaliveSeconds": "15"}, "keepaliveSeconds"),
        ({"resilience": {"apikey": {"cooldownBaseSeconds": 0.05}}}, "resilience.apikey.cooldownBaseSeconds"),
        ({"resilience": {"apikey": {"maxBackoffSteps": 21}}}, "resilience.apikey.maxBackoffSteps"),
        ({"resilience": {"oauth": {"breakerThreshold": 0}}}, "resilience.oauth.breakerThreshold"),
        ({"resilience": {"oauth": {"breakerResetSeconds": 86401}}}, "resilience.oauth.breakerResetSeconds"),
        ({"resilience": {"oauth": {"maxAttempts": 3}}}, "resilience.oauth.maxAttempts"),
        ({"resilience": {"session": {}}}, "resilience.session"),
    ],
)
def test_routing_settings_validation(gateway: Gateway, body: dict[str, Any], param: str) -> None:
    with gateway.admin() as api:
        resp = api.patch("/settings", json=body)
    assert resp.status_code == 400, resp.text
    assert err(resp)["param"] == param
