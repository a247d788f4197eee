"""Configuration, usage and budget spend survive a normal stop and a `kill -9` right after they were written."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.e2e.conftest import UPSTREAM_KEY
from tests.e2e.harness import Gateway
from tests.fakes.server import ServerThread

MSG = [{"role": "user", "content": "still there?"}]


def configure(gw: Gateway, fake: ServerThread) -> dict[str, str]:
    conn = gw.admin_post(
        "/providers", {"provider": "deepseek", "apiKey": UPSTREAM_KEY, "baseUrl": fake.base_url + "/v1"}
    )["connection"]
    node = gw.admin_post("/provider-nodes", {"prefix": "fake", "baseUrl": fake.base_url + "/v1"})["node"]
    gw.admin_post("/providers", {"provider": "fake", "apiKey": UPSTREAM_KEY})
    gw.admin_post("/provider-models", {"provider": "fake", "modelId": "custom-1"})
    with gw.admin() as admin:
        key = admin.post("/keys", json={"name": "persist"}).json()["key"]
        admin.patch("/settings", json={"requireApiKey": True}).raise_for_status()
    return {"conn": conn["id"], "node": node["id"], "key": key}


def assert_serving(gw: Gateway, ids: dict[str, str]) -> None:
    with OpenAI(base_url=gw.v1, api_key=ids["key"], max_retries=0) as client:
        for model in ("ds/deepseek-chat", "fake/custom-1"):
            reply = client.chat.completions.create(model=model, messages=MSG)  # type: ignore[arg-type]
            assert reply.choices[0].message.content == "Hello from fake-openai: still there?"
        assert "fake/custom-1" in {m.id for m in client.models.list()}
    assert httpx.get(gw.v1 + "/models").status_code == 401  # requireApiKey survived too
    with gw.admin() as admin:
        assert admin.get(f"/providers/{ids['conn']}").json()["connection"]["apiKey"] == "sk-u…6789"


def test_survives_graceful_restart(fresh_gateway: Gateway, fake_upstream: ServerThread) -> None:
    fresh_gateway.start()
    ids = configure(fresh_gateway, fake_upstream)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal so the exit status says why it ended.
    assert fresh_gateway.stop() in (0, -15)
    assert "Traceback" not in fresh_gateway.log()
    fresh_gateway.start()
    assert_serving(fresh_gateway, ids)


def test_survives_kill_9_right_after_the_admin_call(fresh_gateway: Gateway, fake_upstream: ServerThread) -> None:
    fresh_gateway.start()
    ids = configure(fresh_gateway, fake_upstream)
    # The very last change before the kill must be there too.
    last = fresh_gateway.admin_post("/provider-models", {"provider": "deepseek", "modelId": "added-last"})
    fresh_gateway.kill9()
    fresh_gateway.start()
    assert_serving(fresh_gateway, ids)
    with fresh_gateway.admin() as admin:
        models = admin.get("/provider-models").json()["models"]
    assert last["model"]["id"] in {m["id"] for m in models}


def test_data_dir_is_private_and_holds_no_plaintext_secret(fresh_gateway: Gateway, fake_upstream: ServerThread) -> None:
    fresh_gateway.start()
    ids = configure(fresh_gateway, fake_upstream)
    data = fresh_gateway.data_dir
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("config.json", "secret.key"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600
    snapshot = (data / "config.json").read_text()
    assert UPSTREAM_KEY not in snapshot
    assert ids["key"] not in snapshot
    assert UPSTREAM_KEY not in fresh_gateway.log() and ids["key"] not in fresh_gateway.log()
    records = json.loads(snapshot)["records"]
    assert {r["kind"] for r in records} == {"provider", "node", "model", "apikey", "settings", "prefix"}


def test_corrupt_snapshot_is_never_overwritten(fresh_gateway: Gateway) -> None:
    data: Path = fresh_gateway.data_dir
    data.mkdir(parents=True)
    (data / "config.json").write_text('{"format": "omniroute-config-snapshot", "records": [tru')
    before = (data / "config.json").read_bytes()
    with pytest.raises(RuntimeError, match="move it aside"):
        fresh_gateway.start(timeout=20)
    assert (data / "config.json").read_bytes() == before


def test_generated_admin_token_is_printed_once_and_stored_private(tmp_path: Path) -> None:
    gw = Gateway(data_dir=tmp_path / "data", env_extra={"OMNIROUTE_ADMIN_TOKEN": ""})
    gw.start()
    token = (gw.data_dir / "admin-token").read_text().strip()
    assert stat.S_IMODE((gw.data_dir / "admin-token").stat().st_mode) == 0o600
    assert token in gw.log()
    resp = httpx.get(gw.base_url + "/api/health", headers={"authorization": f"Bearer {token}"})
    assert resp.status_code == 200
    gw.stop()
    gw.start()
    assert gw.log().count(token) == 1  # not printed again on the second start
    gw.stop()


def test_a_second_serve_on_the_same_data_dir_is_refused(fresh_gateway: Gateway, fake_upstream: ServerThread) -> None:
    fresh_gateway.start()
    ids = configure(fresh_gateway, fake_upstream)
    second = Gateway(data_dir=fresh_gateway.data_dir)
    with pytest.raises(RuntimeError, match="in use by another `omniroute serve`"):
        second.start(timeout=20)
    assert_serving(fresh_gateway, ids)  # the first one is untouched and still owns its configuration


def test_lost_secret_key_is_never_silently_replaced(fresh_gateway: Gateway, fake_upstream: ServerThread) -> None:
    fresh_gateway.start()
    ids = configure(fresh_gateway, fake_upstream)
    fresh_gateway.stop()
    key_file = fresh_gateway.data_dir / "secret.key"
    key_file.rename(fresh_gateway.data_dir.parent / "secret.key.lost")
    snapshot_before = (fresh_gateway.data_dir / "config.json").read_bytes()

    with pytest.raises(RuntimeError, match=r"secret\.key is missing(.|\n)*--new-secret-key"):
        fresh_gateway.start(timeout=20)
    assert not key_file.exists()  # no new key was made behind the owner's back
    assert (fresh_gateway.data_dir / "config.json").read_bytes() == snapshot_before

    # The owner chooses to go on with a new key: everything else still works, the unreadable keys are named.
    fresh_gateway.start(args=("--new-secret-key",))
    assert ids["conn"] in fresh_gateway.log() and "cannot be decrypted" in fresh_gateway.log()
    with gateway_client(fresh_gateway, ids) as client:
        assert client.post("/chat/completions", json=chat("ds/deepseek-chat")).json()["error"]["code"] == (
            "credential_unreadable"
        )
    with fresh_gateway.admin() as admin:
        view = admin.get(f"/providers/{ids['conn']}").json()["connection"]
        assert view["apiKey"] is None and "cannot be decrypted" in view["credentialError"]
        assert admin.patch(f"/providers/{ids['conn']}", json={"apiKey": UPSTREAM_KEY}).status_code == 200
    with gateway_client(fresh_gateway, ids) as client:
        assert client.post("/chat/completions", json=chat("ds/deepseek-chat")).status_code == 200


def test_replaced_secret_key_keeps_serving_what_it_can(fresh_gateway: Gateway, fake_upstream: ServerThread) -> None:
    fresh_gateway.start()
    ids = configure(fresh_gateway, fake_upstream)
    fresh_gateway.stop()
    (fresh_gateway.data_dir / "secret.key").write_bytes(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    fresh_gateway.start()
    with gateway_client(fresh_gateway, ids) as client:
        assert client.get("/models").status_code == 200  # keys, nodes, settings all still work
        resp = client.post("/chat/completions", json=chat("fake/custom-1"))
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "credential_unreadable"


def chat(model: str) -> dict[str, object]:
    return {"model": model, "messages": MSG}


def gateway_client(gw: Gateway, ids: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=gw.v1, headers={"authorization": f"Bearer {ids['key']}"}, timeout=10)


def test_corrupt_secret_key_is_named_and_can_be_replaced_on_purpose(
    fresh_gateway: Gateway, fake_upstream: ServerThread
) -> None:
    fresh_gateway.start()
    ids = configure(fresh_gateway, fake_upstream)
    fresh_gateway.stop()
    key_file = fresh_gateway.data_dir / "secret.key"
    key_file.write_bytes(b"truncated")
    with pytest.raises(RuntimeError, match=r"does not hold a base64 256-bit key"):
        fresh_gateway.start(timeout=20)
    assert key_file.read_bytes() == b"truncated"
    fresh_gateway.start(args=("--new-secret-key",))
    assert [p.name for p in fresh_gateway.data_dir.glob("secret.key.unreadable-*")]  # kept, not deleted
    with gateway_client(fresh_gateway, ids) as client:
        assert client.get("/models").status_code == 200


def test_usage_and_budget_spend_survive_kill_9(fresh_gateway: Gateway, fake_upstream: ServerThread) -> None:
    """Usage events and budget spend live in the data dir's usage.sqlite3: a restart, even after `kill -9`,
    neither loses history nor resets a key's budget."""
    fresh_gateway.start()
    ids = configure(fresh_gateway, fake_upstream)
    with fresh_gateway.admin() as admin:
        key_id = next(k["id"] for k in admin.get("/keys").json()["keys"] if k["name"] == "persist")
        admin.patch("/pricing", json={"ds": {"deepseek-chat": {"input": 3000, "output": 12000}}}).raise_for_status()
        admin.put(f"/budgets/{key_id}", json={"dailyLimitUsd": 1000}).raise_for_status()
    with gateway_client(fresh_gateway, ids) as client:
        assert client.post("/chat/completions", json=chat("ds/deepseek-chat")).status_code == 200

    def recorded() -> tuple[list[dict[str, object]], float]:
        with fresh_gateway.admin() as admin:
            events = admin.get("/usage/history", params={"limit": 50}).json()["items"]
            budget = next(b for b in admin.get("/budgets").json()["budgets"] if b["keyId"] == key_id)
        return events, next(p["spentUsd"] for p in budget["periods"] if p["period"] == "daily")

    deadline = time.monotonic() + 10
    while not ((written := recorded())[0] and written[1] > 0) and time.monotonic() < deadline:
        time.sleep(0.05)  # written in the background, off the request's path
    events, spent = written
    assert len(events) == 1 and events[0]["model"] == "ds/deepseek-chat" and spent > 0
    fresh_gateway.kill9()
    fresh_gateway.start()
    assert recorded() == (events, spent)
    assert stat.S_IMODE((fresh_gateway.data_dir / "usage.sqlite3").stat().st_mode) == 0o600
