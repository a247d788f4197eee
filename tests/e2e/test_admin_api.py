"""The admin API over HTTP: authentication, CRUD of every resource, and errors in `{error: {...}}` shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.harness import Gateway


def err(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert set(body) == {"error"}, body
    e: dict[str, Any] = body["error"]
    return e


@pytest.mark.parametrize("path", ["/providers", "/provider-nodes", "/provider-models", "/keys", "/settings", "/health"])
@pytest.mark.parametrize(
    "auth", [None, "Bearer wrong-token", "Basic Zm9vOmJhcg==", "Bearer", "bearer omni-admin-test-token-but-longer"]
)
def test_every_admin_route_needs_the_admin_token(gateway: Gateway, path: str, auth: str | None) -> None:
    headers = {"authorization": auth} if auth else {}
    resp = httpx.get(gateway.base_url + "/api" + path, headers=headers)
    assert resp.status_code == 401
    assert err(resp)["type"] == "authentication_error"


def test_no_docs_or_schema_exposed(gateway: Gateway) -> None:
    for path in ("/docs", "/openapi.json", "/api/openapi.json", "/api/docs"):
        assert httpx.get(gateway.base_url + path).status_code in (401, 404)


def test_provider_connection_crud(gateway: Gateway) -> None:
    with gateway.admin() as api:
        created = api.post(
            "/providers", json={"provider": "xai", "apiKey": "xai-secret-abcdefghijkl-0123", "name": "grok"}
        )
        assert created.status_code == 201
        conn = created.json()["connection"]
        assert conn["provider"] == "xai" and conn["apiKey"] == "xai-…0123" and conn["enabled"] is True
        assert any(c["id"] == conn["id"] for c in api.get("/providers").json()["connections"])
        assert "xai-secret-abcdefghijkl-0123" not in api.get("/providers").text
        patched = api.patch(f"/providers/{conn['id']}", json={"priority": 5, "enabled": False}).json()["connection"]
        assert (patched["priority"], patched["enabled"], patched["name"]) == (5, False, "grok")
        assert patched["version"] == conn["version"] + 1
        assert api.delete(f"/providers/{conn['id']}").status_code == 204
        gone = api.get(f"/providers/{conn['id']}")
        assert gone.status_code == 404 and err(gone)["code"] == "not_found"
        assert api.delete(f"/providers/{conn['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"provider": "nope", "apiKey": "k"}, "Unknown provider"),
        ({"provider": "groq"}, "apiKey"),
        ({"provider": "groq", "apiKey": "k", "baseUrl": "not a url"}, "baseUrl"),
        ({"provider": "groq", "apiKey": "k", "bogus": 1}, "bogus"),
        ({"provider": "groq", "apiKey": "k", "priority": "high"}, "priority"),
        ({"apiKey": "k"}, "provider"),
    ],
)
def test_provider_validation_errors(gateway: Gateway, body: dict[str, Any], needle: str) -> None:
    with gateway.admin() as api:
        resp = api.post("/providers", json=body)
    assert resp.status_code == 400, resp.text
    assert needle in err(resp)["message"]


def test_malformed_admin_json_is_400(gateway: Gateway) -> None:
    with gateway.admin() as api:
        resp = api.post("/providers", content=b"{oops", headers={"content-type": "application/json"})
    assert resp.status_code == 400


def test_nodes_models_and_cleanup(gateway: Gateway) -> None:
    with gateway.admin() as api:
        node = api.post("/provider-nodes", json={"prefix": "lab", "baseUrl": "http://127.0.0.1:9/v1"}).json()["node"]
        assert node["apiType"] == "openai"
        assert api.post("/provider-nodes", json={"prefix": "lab", "baseUrl": "http://x/v1"}).status_code == 400
        renamed = api.put(f"/provider-nodes/{node['id']}", json={"name": "Lab box"}).json()["node"]
        assert renamed["name"] == "Lab box" and renamed["prefix"] == "lab"
        model = api.post("/provider-models", json={"provider": "lab", "modelId": "m-1"})
        assert model.status_code == 201
        assert [m["modelId"] for m in api.get("/provider-models", params={"provider": "lab"}).json()["models"]] == [
            "m-1"
        ]
        assert "lab/m-1" in {m["id"] for m in httpx.get(gateway.v1 + "/models").json()["data"]}
        assert api.delete("/provider-models", params={"provider": "lab", "model": "m-1"}).status_code == 204
        assert api.delete(f"/provider-nodes/{node['id']}").status_code == 204
        assert api.get(f"/provider-nodes/{node['id']}").status_code == 404


def test_keys_are_shown_once(gateway: Gateway) -> None:
    with gateway.admin() as api:
        created = api.post("/keys", json={"name": "ci"})
        assert created.status_code == 201
        key = created.json()
        assert key["key"].startswith("sk-omni-") and len(key["key"]) > 40
        listed = api.get("/keys").json()["keys"]
        mine = next(k for k in listed if k["id"] == key["id"])
        assert mine["name"] == "ci" and key["key"] not in str(listed)
        assert api.post("/keys", json={"name": ""}).status_code == 400
        assert api.delete(f"/keys/{key['id']}").status_code == 204


def test_settings_and_health(gateway: Gateway) -> None:
    with gateway.admin() as api:
        settings = api.get("/settings").json()
        assert settings["requireApiKey"] is False and settings["cloud"] is False
        assert api.patch("/settings", json={"requireApiKey": "yes please"}).status_code == 400
        health = api.get("/health").json()
        assert health["status"] == "ok"
        assert "deepseek" in health["activeProviders"]


def test_translator_playground(gateway: Gateway) -> None:
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}],
    }
    with gateway.admin() as admin:
        resp = admin.post("/translator/translate", json={"body": body, "to": "anthropic"})
        gemini = admin.post("/translator/translate", json={"body": body, "to": "gemini", "from": "openai"}).json()
        bad = admin.post("/translator/translate", json={"body": {"x": 1}, "to": "anthropic"})
        unknown = admin.post("/translator/translate", json={"body": body, "to": "anthropic", "extra": 1})
    unsigned = httpx.post(gateway.base_url + "/api/translator/translate", json={"body": body, "to": "anthropic"})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["from"], out["kind"], out["to"]) == ("openai", "request", "anthropic")
    assert out["body"]["system"] == "Be terse." and out["body"]["max_tokens"] > 0
    assert out["canonical"]["messages"][0]["role"] == "system"
    assert gemini["body"]["systemInstruction"]["parts"][0]["text"] == "Be terse."
    assert bad.status_code == 400 and err(bad)["code"] == "undetectable_format"
    assert unknown.status_code == 400
    assert unsigned.status_code == 401
