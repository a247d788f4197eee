"""Admin input that used to slip through: nulls in PATCH, malformed URLs, oversize fields, concurrent
writers. Each gets a 400 (or wins exactly once), and what is stored stays intact."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Gateway

LONG_KEY = "sk-robust-0000000000000000000001"


@pytest.fixture
def conn(gateway: Gateway) -> dict[str, Any]:
    created: dict[str, Any] = gateway.admin_post(
        "/providers", {"provider": "mistral", "apiKey": LONG_KEY, "baseUrl": "http://127.0.0.1:9/v1"}
    )["connection"]
    return created


@pytest.mark.parametrize("field", ["name", "priority", "enabled", "apiKey"])
def test_patch_null_is_refused_and_nothing_changes(gateway: Gateway, conn: dict[str, Any], field: str) -> None:
    with gateway.admin() as api:
        resp = api.patch(f"/providers/{conn['id']}", json={field: None})
        assert resp.status_code == 400
        assert "cannot be null" in resp.json()["error"]["message"]
        after = api.get(f"/providers/{conn['id']}").json()["connection"]
        assert after == conn
        assert api.get("/providers").status_code == 200


def test_patch_null_clears_the_fields_that_allow_it(gateway: Gateway, conn: dict[str, Any]) -> None:
    with gateway.admin() as api:
        after = api.patch(f"/providers/{conn['id']}", json={"baseUrl": None}).json()["connection"]
    assert after["baseUrl"] is None and after["priority"] == conn["priority"]


def test_node_prefix_null_is_refused(gateway: Gateway) -> None:
    with gateway.admin() as api:
        node = api.post("/provider-nodes", json={"prefix": "nulltest", "baseUrl": "http://127.0.0.1:9/v1"}).json()
        resp = api.patch(f"/provider-nodes/{node['node']['id']}", json={"prefix": None})
        assert resp.status_code == 400
        assert api.get(f"/provider-nodes/{node['node']['id']}").json()["node"]["prefix"] == "nulltest"


@pytest.mark.parametrize(
    "url",
    [
        "http://[zz/v1",
        "http://host:99999/v1",
        "http://user:pass@example.com/v1",
        "http://exa mple.com/v1",
        "https://" + "a" * 70 + ".com/v1",
        "ftp://example.com/v1",
        "http:///v1",
        "https://example.com/v1?key=abc",
    ],
)
def test_bad_base_urls_are_400(gateway: Gateway, url: str) -> None:
    with gateway.admin() as api:
        resp = api.post("/providers", json={"provider": "groq", "apiKey": "k", "baseUrl": url})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == "baseUrl"
    assert "user:pass" not in resp.text  # credentials are never echoed back


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/providers", {"provider": "groq", "apiKey": "k" * 500_000}),
        ("/providers", {"provider": "groq", "apiKey": "k", "name": "n" * 5000}),
        ("/provider-models", {"provider": "groq", "modelId": "m" * 2000}),
        ("/provider-models", {"provider": "groq", "modelId": "模" * 300}),  # 900 bytes: over the key limit
        ("/keys", {"name": "n" * 1000}),
    ],
)
def test_oversize_fields_are_400(gateway: Gateway, path: str, body: dict[str, Any]) -> None:
    with gateway.admin() as api:
        resp = api.post(path, json=body)
    assert resp.status_code == 400, resp.text[:300]


def test_concurrent_nodes_with_one_prefix_exactly_one_wins(gateway: Gateway) -> None:
    def create(i: int) -> int:
        with gateway.admin() as api:
            return api.post(
                "/provider-nodes", json={"prefix": "contended", "baseUrl": f"http://127.0.0.1:9/v{i}"}
            ).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(create, range(16)))
    assert codes.count(201) == 1
    assert set(codes) == {201, 400}
    with gateway.admin() as api:
        nodes = [n for n in api.get("/provider-nodes").json()["nodes"] if n["prefix"] == "contended"]
    assert len(nodes) == 1


def test_node_with_models_cannot_be_deleted_and_its_prefix_is_freed_after(gateway: Gateway) -> None:
    with gateway.admin() as api:
        node = api.post("/provider-nodes", json={"prefix": "owner", "baseUrl": "http://127.0.0.1:9/v1"}).json()["node"]
        api.post("/provider-models", json={"provider": "owner", "modelId": "m"}).raise_for_status()
        refused = api.delete(f"/provider-nodes/{node['id']}")
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "node_in_use"
        assert api.delete("/provider-models", params={"provider": node["id"], "model": "m"}).status_code == 204
        assert api.delete(f"/provider-nodes/{node['id']}").status_code == 204
        again = api.post("/provider-nodes", json={"prefix": "owner", "baseUrl": "http://127.0.0.1:9/v1"})
        assert again.status_code == 201  # the prefix was released with the node


def test_renaming_a_prefix_moves_the_claim(gateway: Gateway) -> None:
    with gateway.admin() as api:
        node = api.post("/provider-nodes", json={"prefix": "before", "baseUrl": "http://127.0.0.1:9/v1"}).json()["node"]
        assert api.patch(f"/provider-nodes/{node['id']}", json={"prefix": "after"}).status_code == 200
        assert api.post("/provider-nodes", json={"prefix": "before", "baseUrl": "http://x/v1"}).status_code == 201
        assert api.post("/provider-nodes", json={"prefix": "after", "baseUrl": "http://x/v1"}).status_code == 400


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/providers"),
        ("PATCH", "/providers/x"),
        ("DELETE", "/providers/x"),
        ("POST", "/provider-nodes"),
        ("DELETE", "/provider-models"),
        ("POST", "/keys"),
        ("DELETE", "/keys/x"),
        ("PATCH", "/settings"),
    ],
)
def test_writes_need_the_admin_token_too(gateway: Gateway, method: str, path: str) -> None:
    resp = httpx.request(method, gateway.base_url + "/api" + path, json={})
    assert resp.status_code == 401
