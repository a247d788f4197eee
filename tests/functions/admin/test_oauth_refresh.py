"""Token refresh through the local target, over real HTTP: `POST /api/oauth/accounts/{id}/refresh`, an
`invalid_grant` surfacing in `/api/health` as an account to relink, and `omniroute serve`'s own refresh loop
renewing a linked account whose token is about to expire. The local app runs in-process (`build_local` +
`create_local_app` under uvicorn, its lifespan starting the scheduled loops), the token endpoints are the
fake token service (tests/fakes/token_server.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from companion.local import LocalRuntime, build_local, create_local_app
from shared.providers.oauth import HOSTS_ENV, oauth_provider
from shared.settings import Settings
from tests.fakes.server import ServerThread
from tests.fakes.token_server import TokenServerState, create_app

TOKEN = "omni-admin-refresh-test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
CODEX_CLIENT = oauth_provider("codex").refresh.client_id  # type: ignore[union-attr]
CLAUDE_CLIENT = oauth_provider("claude").refresh.client_id  # type: ignore[union-attr]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[TokenServerState]:
    with ServerThread(create_app()) as server:
        hosts = {origin: server.base_url for origin in ("https://auth.openai.com", "https://platform.claude.com")}
        monkeypatch.setenv(HOSTS_ENV, json.dumps(hosts))
        yield server.app.state.fake


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalRuntime]:
    settings = Settings.from_env({"OMNIROUTE_DATA_DIR": str(tmp_path / "data"), "OMNIROUTE_ADMIN_TOKEN": TOKEN})
    runtime = build_local(settings)
    try:
        yield runtime
    finally:
        runtime.stop()


def _link(admin: httpx.Client, provider: str, refresh: str, expires_in: float) -> str:
    tokens = {"accessToken": f"at-{provider}-linked", "refreshToken": refresh, "expiresIn": expires_in}
    resp = admin.post("/api/oauth/link", json={"provider": provider, "tokens": tokens})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["account"]["id"])


def _served_token(runtime: LocalRuntime, conn_id: str) -> str | None:
    """The access token the gateway would send for this account now."""
    conn = next(c for c in runtime.services.config.snapshot.connections if c.id == conn_id)
    return conn.api_key


def test_the_admin_refresh_renews_a_linked_account_now(fake: TokenServerState, local: LocalRuntime) -> None:
    first = fake.family(client_id=CODEX_CLIENT, expires_in=864000)
    with (
        ServerThread(create_local_app(local.services)) as server,
        httpx.Client(base_url=server.base_url, headers=AUTH) as admin,
    ):
        conn = _link(admin, "codex", first, 864000)  # ten days left: not due, refreshed because asked
        assert _served_token(local, conn) == "at-codex-linked"

        resp = admin.post(f"/api/oauth/accounts/{conn}/refresh")

        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["refresh"]["outcome"] == "refreshed"
        assert (body["account"]["id"], body["account"]["oauth"]["tokenVersion"]) == (conn, 2)
        assert body["account"]["oauth"]["status"] == "active" and body["account"]["oauth"]["refreshedAt"]
        family = fake.family_of(first)
        assert _served_token(local, conn) == family.access_tokens[-1]  # the gateway sends the new token at once
        for token in (first, *family.refresh_tokens, *family.access_tokens):
            assert token not in resp.text

        assert admin.post("/api/oauth/accounts/conn_nope/refresh").status_code == 404
        assert (
            admin.post(f"/api/oauth/accounts/{conn}/refresh", headers={"authorization": "Bearer no"}).status_code == 401
        )


def test_invalid_grant_lists_the_account_in_health_as_needing_a_relink(
    fake: TokenServerState, local: LocalRuntime
) -> None:
    first = fake.family(client_id=CLAUDE_CLIENT)
    with (
        ServerThread(create_local_app(local.services)) as server,
        httpx.Client(base_url=server.base_url, headers=AUTH) as admin,
    ):
        conn = _link(admin, "claude", first, 8 * 3600)
        fake.fail_next({"status": 400, "error": "invalid_grant"})

        refreshed = admin.post(f"/api/oauth/accounts/{conn}/refresh").json()
        health = admin.get("/api/health").json()

    assert refreshed["refresh"]["outcome"] == "relink_needed"
    assert refreshed["account"]["oauth"]["status"] == "relink_needed"
    [listed] = health["relinkNeeded"]
    assert (listed["id"], listed["provider"]) == (conn, "claude")
    assert "invalid_grant" in listed["reason"] and first not in json.dumps(health)
    assert _served_token(local, conn) == "at-claude-linked"  # the access token in hand keeps serving


def test_serve_refreshes_an_account_about_to_expire_by_itself(fake: TokenServerState, local: LocalRuntime) -> None:
    first = fake.family(client_id=CODEX_CLIENT, expires_in=864000)
    tokens = {"accessToken": "at-codex-expiring", "refreshToken": first, "expiresIn": 600}
    conn = str(local.services.oauth.link({"provider": "codex", "tokens": tokens})["id"])  # before `serve` starts

    with ServerThread(create_local_app(local.services)):  # its lifespan starts the refresh loop
        deadline = time.monotonic() + 20
        while _record(local, conn)["tokenVersion"] == 1 and time.monotonic() < deadline:
            time.sleep(0.05)

    assert _record(local, conn)["tokenVersion"] == 2
    assert len(fake.refresh_calls()) == 1
    family = fake.family_of(first)
    assert _served_token(local, conn) == family.access_tokens[-1]
    assert _record(local, conn)["expiresAt"] > time.time() + 9 * 86400


def _record(runtime: LocalRuntime, conn_id: str) -> dict[str, Any]:
    """The account's credential view, as `GET /api/oauth/accounts/{id}` shows it."""
    view: dict[str, Any] = runtime.services.oauth.view(conn_id)["oauth"]
    return view
