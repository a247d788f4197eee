"""Linked accounts through the admin service against a real (moto) store: what a push stores, encrypted;
what a relink replaces; what the gateway's snapshot makes of it; what is never shown."""

import time
from pathlib import Path

import pytest

from shared.adapters.crypto import AesGcmCipher
from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model
from shared.domain.config import Kind
from shared.domain.oauth import RELINK_NEEDED
from shared.errors import InvalidRequest, NotFound
from shared.services.admin import ConfigService
from shared.services.oauth_accounts import OAuthAccountsService
from shared.services.snapshot import build_snapshot

ACCESS = "sk-ant-oat01-access-token-abcdef0123456789"
REFRESH = "sk-ant-ort01-refresh-token-abcdef0123456789"


@pytest.fixture
def parts(table_names: dict[str, str], dynamo_endpoint: str | None, tmp_path: Path):
    store = DynamoConfigStore(bind_config_model(table_names["ConfigTable"], "us-east-1", dynamo_endpoint))
    cipher = AesGcmCipher.from_key_file(tmp_path / "k")
    changes: list[int] = []
    accounts = OAuthAccountsService(store, cipher, on_change=lambda: changes.append(1))
    admin = ConfigService(store, cipher, on_change=lambda: changes.append(1))
    return accounts, admin, store, cipher, changes


def link_claude(accounts: OAuthAccountsService, **extra: object) -> dict:
    return accounts.link(
        {
            "provider": "claude",
            "tokens": {"accessToken": ACCESS, "refreshToken": REFRESH, "expiresIn": 28800},
            "meta": {"email": "owner@example.com", "organization": "Personal"},
            **extra,
        }
    )


def test_a_push_stores_the_tokens_encrypted_and_shows_none_of_them(parts) -> None:
    accounts, admin, store, _, changes = parts
    before = time.time()
    view = link_claude(accounts)
    assert view["provider"] == "claude" and view["name"] == "owner@example.com"
    assert view["oauth"]["status"] == "active" and view["oauth"]["tokenVersion"] == 1
    assert before + 28800 - 5 <= view["oauth"]["expiresAt"] <= time.time() + 28800
    assert view["oauth"]["meta"] == {"email": "owner@example.com", "organization": "Personal"}
    assert ACCESS not in str(view) and REFRESH not in str(view)
    cred = store.get(Kind.OAUTH, view["id"])
    assert cred is not None and ACCESS not in str(cred.data) and REFRESH not in str(cred.data)
    conn = store.get(Kind.PROVIDER, view["id"])
    assert conn is not None and conn.data["linked"] is True and "apiKey" not in conn.data
    # the admin's connection list shows the account with its credential status, no token
    listed = admin.list_connections()
    assert listed[0]["oauth"]["status"] == "active" and ACCESS not in str(listed)
    assert changes == [1]


def test_the_gateway_uses_the_access_token_and_knows_the_account(parts) -> None:
    accounts, _, store, cipher, _ = parts
    view = link_claude(accounts)
    conn = build_snapshot(store.list_all(), cipher).connections_by_id[view["id"]]
    assert conn.api_key == ACCESS and not conn.credential_error
    assert conn.oauth is not None and conn.oauth.tokens is not None
    assert conn.oauth.tokens.refresh_token == REFRESH
    assert conn.oauth.meta["email"] == "owner@example.com"
    assert ACCESS not in repr(conn.oauth) and ACCESS not in repr(conn.oauth.tokens)


def test_credentials_moved_to_another_account_do_not_decrypt(parts) -> None:
    accounts, _, store, cipher, _ = parts
    first = link_claude(accounts)
    second = link_claude(accounts, name="second")
    stolen = store.get(Kind.OAUTH, first["id"])
    target = store.get(Kind.OAUTH, second["id"])
    assert stolen is not None and target is not None
    store.update(Kind.OAUTH, second["id"], {**target.data, "secret": stolen.data["secret"]}, target.version)
    snap = build_snapshot(store.list_all(), cipher)
    assert snap.connections_by_id[second["id"]].credential_error  # the context names the account
    assert second["id"] not in {c.id for c in snap.connections_by_provider.get("claude", ())}
    assert snap.connections_by_id[first["id"]].api_key == ACCESS


def test_relink_replaces_the_tokens_of_the_same_connection(parts) -> None:
    accounts, _, store, cipher, _ = parts
    view = link_claude(accounts)
    cred = store.get(Kind.OAUTH, view["id"])
    assert cred is not None
    gone = {**cred.data, "status": RELINK_NEEDED, "relinkReason": "invalid_grant"}
    store.update(Kind.OAUTH, view["id"], gone, cred.version)
    assert [a["id"] for a in accounts.relink_needed()] == [view["id"]]
    again = accounts.link({"provider": "cc", "connectionId": view["id"], "tokens": {"accessToken": "new-access-0001"}})
    assert again["id"] == view["id"] and again["oauth"]["status"] == "active"
    assert again["oauth"]["tokenVersion"] == 2 and again["oauth"]["relinkReason"] is None
    assert accounts.relink_needed() == []
    conn = build_snapshot(store.list_all(), cipher).connections_by_id[view["id"]]
    assert conn.api_key == "new-access-0001"
    assert len(store.list(Kind.PROVIDER)) == 1


def test_relink_must_name_an_account_of_the_same_provider(parts) -> None:
    accounts, *_ = parts
    view = link_claude(accounts)
    with pytest.raises(InvalidRequest, match="belongs to claude"):
        accounts.link({"provider": "codex", "connectionId": view["id"], "tokens": {"accessToken": "x"}})
    with pytest.raises(NotFound):
        accounts.link({"provider": "claude", "connectionId": "conn_missing", "tokens": {"accessToken": "x"}})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"provider": "groq", "tokens": {"accessToken": "x"}}, "linkable subscription provider"),
        ({"provider": "qwen", "tokens": {"accessToken": "x"}}, "ended on 2026-04-15"),
        ({"provider": "gemini-cli", "tokens": {"accessToken": "x"}}, "ended on 2026-06-18"),
        ({"provider": "claude", "tokens": {}}, "tokens.accessToken"),
        ({"provider": "claude", "tokens": "abc"}, "`tokens` must be an object"),
        ({"provider": "claude", "tokens": {"accessToken": "two words"}}, "visible ASCII"),
        ({"provider": "claude", "tokens": {"accessToken": "a", "refreshToken": "b\nc"}}, "tokens.refreshToken"),
        ({"provider": "claude", "tokens": {"accessToken": "a"}, "meta": {"refreshToken": "b"}}, "looks like a secret"),
        ({"provider": "claude", "tokens": {"accessToken": "a"}, "meta": {"nested": {"a": 1}}}, "meta.nested"),
        ({"provider": "codex", "tokens": {"accessToken": "a"}, "meta": {"accountId": "a\r\nx-evil: 1"}}, "control"),
        ({"provider": "github", "tokens": {"accessToken": "a"}, "baseUrl": "ftp://x"}, "http"),
    ],
)
def test_bad_pushes_are_refused_and_store_nothing(parts, fields: dict, message: str) -> None:
    accounts, _, store, *_ = parts
    with pytest.raises(InvalidRequest, match=message):
        accounts.link(fields)
    assert store.list(Kind.PROVIDER) == [] and store.list(Kind.OAUTH) == []


def test_deleting_the_connection_deletes_its_tokens(parts) -> None:
    accounts, admin, store, *_ = parts
    view = link_claude(accounts)
    admin.delete_connection(view["id"])
    assert store.get(Kind.OAUTH, view["id"]) is None and store.list(Kind.PROVIDER) == []


def test_a_linked_account_takes_no_api_key(parts) -> None:
    accounts, admin, *_ = parts
    view = link_claude(accounts)
    with pytest.raises(InvalidRequest, match="linked with OAuth"):
        admin.update_connection(view["id"], {"apiKey": "sk-something"})
    renamed = admin.update_connection(view["id"], {"name": "work", "priority": 2})
    assert renamed["name"] == "work" and renamed["oauth"]["status"] == "active"


def test_providers_lists_methods_terms_and_retired_rows(parts) -> None:
    accounts, *_ = parts
    rows = {r["id"]: r for r in accounts.providers()}
    assert [m["name"] for m in rows["codex"]["methods"]] == ["browser", "device"]
    assert [m["name"] for m in rows["kiro"]["methods"]] == ["builder-id", "google", "github"]
    assert "Claude Code" in rows["claude"]["termsNote"]
    assert rows["iflow"]["retired"] and "2026-04-17" in rows["iflow"]["retiredNote"]
    assert rows["codex"]["rotatesRefreshToken"] and not rows["github"]["rotatesRefreshToken"]


def test_in_the_cloud_a_linked_accounts_base_url_must_be_https(table_names, dynamo_endpoint, tmp_path: Path) -> None:
    """Every request to it carries the subscription's token: plain http to a public host is refused too."""
    store = DynamoConfigStore(bind_config_model(table_names["ConfigTable"], "us-east-1", dynamo_endpoint))
    cipher = AesGcmCipher.from_key_file(tmp_path / "k")
    accounts = OAuthAccountsService(store, cipher, lambda: None, public_urls_only=True)
    admin = ConfigService(store, cipher, lambda: None, public_urls_only=True)
    with pytest.raises(InvalidRequest, match="must be https"):
        link_claude(accounts, baseUrl="http://relay.example.com/v1")
    view = link_claude(accounts, baseUrl="https://relay.example.com/v1")
    with pytest.raises(InvalidRequest, match="must be https"):
        admin.update_connection(view["id"], {"baseUrl": "http://relay.example.com/v1"})
    with pytest.raises(InvalidRequest, match="public"):
        accounts.link({"provider": "claude", "connectionId": view["id"], "tokens": {"accessToken": "a"},
                       "baseUrl": "https://169.254.169.254/latest"})  # fmt: skip
    # an API-key connection keeps its own rules (http to a public host is allowed there)
    plain = admin.create_connection({"provider": "groq", "apiKey": "gsk-1", "baseUrl": "http://proxy.example.com/v1"})
    assert plain["baseUrl"] == "http://proxy.example.com/v1"


def test_a_relink_with_a_new_base_url_survives_a_concurrent_change_of_the_connection(parts) -> None:
    accounts, admin, store, *_ = parts
    view = link_claude(accounts)
    stale = store.get(Kind.PROVIDER, view["id"])
    admin.update_connection(view["id"], {"name": "renamed meanwhile"})
    assert stale is not None
    accounts._set_base_url(stale, "https://relay.example.com/v1")  # what a relink does with the copy it read
    conn = store.get(Kind.PROVIDER, view["id"])
    assert conn is not None and conn.data["baseUrl"] == "https://relay.example.com/v1"
    assert conn.data["name"] == "renamed meanwhile"
