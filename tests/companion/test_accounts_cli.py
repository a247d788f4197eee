"""`omniroute accounts`, driven with CliRunner against a real local target (the admin API `omniroute serve` runs,
in-process on loopback), with accounts linked through POST /api/oauth/link as `omniroute login` links them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.providers.oauth import HOSTS_ENV, RefreshSpec, oauth_provider
from tests.companion.cli_runner import LocalTarget, local_target, run_command
from tests.fakes.server import ServerThread, free_port
from tests.fakes.token_server import TokenServerState
from tests.fakes.token_server import create_app as create_token_app

ACCESS = "sk-ant-oat01-access-token-never-printed"
REFRESH = "sk-ant-ort01-refresh-token-never-printed"
DAY = 86400.0


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[LocalTarget]:
    with local_target(tmp_path) as target:
        yield target


def link(gateway: LocalTarget, provider: str = "claude", **fields: Any) -> dict[str, Any]:
    """Link an account as `omniroute login` does. Its token expires in 30 days, so no refresh is ever due."""
    body = {
        "provider": provider,
        "tokens": {"accessToken": ACCESS, "refreshToken": REFRESH, "expiresAt": time.time() + 30 * DAY},
        "meta": {"email": "me@example.com", "plan": "max"},
        **fields,
    }
    account: dict[str, Any] = gateway.call("POST", "/api/oauth/link", body, status=201)["account"]
    return account


def rows(output: str) -> list[list[str]]:
    """The cells of every table body row Rich drew."""
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in output.splitlines() if line[:1] == "│"]


def assert_no_tokens(output: str) -> None:
    assert ACCESS not in output and REFRESH not in output


# --------------------------------------------------------------------------------------------
# list and show
# --------------------------------------------------------------------------------------------


def test_list_shows_each_linked_account_with_who_it_is_and_its_expiry(gateway: LocalTarget) -> None:
    claude = link(gateway)
    codex = link(gateway, "codex", meta={"accountId": "acct-42", "plan": "plus"}, name="work")
    gateway.call("POST", "/api/providers", {"provider": "openai", "apiKey": "sk-proj-" + "x" * 30}, status=201)
    result = gateway.run("accounts", "list")
    assert result.exit_code == 0, result.output
    assert_no_tokens(result.output)
    table = rows(result.stdout)
    assert len(table) == 2  # the API-key connection is not a linked account
    by_id = {row[0]: row for row in table}
    assert by_id[claude["id"]][1:6] == [
        "claude",
        "me@example.com",
        "me@example.com · max",
        "active",
        "expires in 29d 23h",
    ]
    assert by_id[codex["id"]][1:5] == ["codex", "work", "acct-42 · plus", "active"]


def test_list_says_when_nothing_is_linked(gateway: LocalTarget) -> None:
    result = gateway.run("accounts", "list")
    assert result.exit_code == 0, result.output
    assert "No linked accounts" in result.stdout and "omniroute login" in result.stdout


def test_list_json_is_the_api_payload(gateway: LocalTarget) -> None:
    claude = link(gateway)
    result = gateway.run("accounts", "list", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [a["id"] for a in payload["accounts"]] == [claude["id"]]
    assert payload["accounts"][0]["oauth"]["meta"] == {"email": "me@example.com", "plan": "max"}
    assert_no_tokens(result.output)


def test_show_lists_the_credential_fields_and_meta(gateway: LocalTarget) -> None:
    claude = link(gateway)
    result = gateway.run("accounts", "show", claude["id"])
    assert result.exit_code == 0, result.output
    assert_no_tokens(result.output)
    fields = {row[0]: row[1] for row in rows(result.stdout)}
    assert fields["ID"] == claude["id"]
    assert fields["Provider"] == "claude"
    assert fields["Status"] == "active"
    assert fields["Token version"] == "1"
    assert fields["Refreshed"] == "not yet"
    assert fields["meta.email"] == "me@example.com"
    assert fields["meta.plan"] == "max"


def test_show_of_an_unknown_id_exits_1_with_the_apis_message(gateway: LocalTarget) -> None:
    result = gateway.run("accounts", "show", "conn_missing")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "HTTP 404" in result.stderr and "No connection with id `conn_missing`." in result.stderr.replace("\n", "")


# --------------------------------------------------------------------------------------------
# enable, disable, remove
# --------------------------------------------------------------------------------------------


def test_disable_then_enable_flip_the_connection(gateway: LocalTarget) -> None:
    claude = link(gateway)
    result = gateway.run("accounts", "disable", claude["id"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Disabled claude account me@example.com ({claude['id']})."
    assert gateway.call("GET", f"/api/providers/{claude['id']}")["connection"]["enabled"] is False
    listed = gateway.run("accounts", "list")
    assert rows(listed.stdout)[0][4] == "disabled"

    result = gateway.run("accounts", "enable", claude["id"])
    assert result.exit_code == 0, result.output
    assert gateway.call("GET", f"/api/providers/{claude['id']}")["connection"]["enabled"] is True


def test_disable_of_an_unknown_id_exits_1(gateway: LocalTarget) -> None:
    result = gateway.run("accounts", "disable", "conn_missing")
    assert result.exit_code == 1
    assert "No provider with id `conn_missing`." in result.stderr.replace("\n", "")


def test_remove_asks_first_and_keeps_the_account_when_refused(gateway: LocalTarget) -> None:
    claude = link(gateway)
    result = gateway.run("accounts", "remove", claude["id"], input="n\n")
    assert result.exit_code == 1  # aborted
    assert f"Remove claude account me@example.com ({claude['id']})?" in result.output
    assert [a["id"] for a in gateway.call("GET", "/api/oauth/accounts")["accounts"]] == [claude["id"]]


def test_remove_deletes_the_account_and_its_tokens(gateway: LocalTarget) -> None:
    claude = link(gateway)
    result = gateway.run("accounts", "remove", claude["id"], input="y\n")
    assert result.exit_code == 0, result.output
    assert f"Removed claude account me@example.com ({claude['id']})." in result.stdout
    assert gateway.call("GET", "/api/oauth/accounts")["accounts"] == []
    gateway.call("GET", f"/api/oauth/accounts/{claude['id']}", status=404)


def test_remove_with_yes_does_not_ask(gateway: LocalTarget) -> None:
    claude = link(gateway)
    result = gateway.run("accounts", "remove", claude["id"], "--yes")
    assert result.exit_code == 0, result.output
    assert "?" not in result.stdout
    assert gateway.call("GET", "/api/oauth/accounts")["accounts"] == []


def test_remove_of_an_unknown_id_exits_1_without_asking(gateway: LocalTarget) -> None:
    result = gateway.run("accounts", "remove", "conn_missing")
    assert result.exit_code == 1
    assert "Remove" not in result.output
    assert "No connection with id `conn_missing`." in result.stderr.replace("\n", "")


# --------------------------------------------------------------------------------------------
# The target
# --------------------------------------------------------------------------------------------


def test_an_explicit_url_and_token_win_over_the_saved_target(gateway: LocalTarget) -> None:
    claude = link(gateway)
    moved = gateway.run("target", "local", "--url", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    assert moved.exit_code == 0, moved.output
    result = gateway.run("accounts", "list", "--url", gateway.url, "--token", gateway.token, "--json")
    assert result.exit_code == 0, result.output
    assert [a["id"] for a in json.loads(result.stdout)["accounts"]] == [claude["id"]]


def test_an_unreachable_target_exits_2(gateway: LocalTarget) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = gateway.run("target", "local", "--url", url)
    assert result.exit_code == 0, result.output
    result = gateway.run("accounts", "list")
    assert result.exit_code == 2
    assert f"no gateway answers at {url}" in result.stderr


# --------------------------------------------------------------------------------------------
# refresh: through the target's refresher, the provider's token endpoint a fake on loopback
# --------------------------------------------------------------------------------------------


def claude_refresh() -> RefreshSpec:
    spec = oauth_provider("claude")
    assert spec is not None
    return spec.refresh


@pytest.fixture
def token_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[TokenServerState]:
    """The fake token service, standing in for Claude's token endpoint (tests/fakes/token_server.py)."""
    parts = urlsplit(claude_refresh().url)
    with ServerThread(create_token_app()) as server:
        monkeypatch.setenv(HOSTS_ENV, json.dumps({f"{parts.scheme}://{parts.netloc}": server.base_url}))
        state: TokenServerState = server.app.state.fake
        yield state


def link_fake(gateway: LocalTarget, service: TokenServerState) -> tuple[str, str]:
    """A claude account whose refresh token the fake service issued: (connection id, refresh token)."""
    refresh = service.family(client_id=claude_refresh().client_id, expires_in=8 * 3600)
    body = {
        "provider": "claude",
        "tokens": {"accessToken": ACCESS, "refreshToken": refresh, "expiresAt": time.time() + 30 * DAY},
        "meta": {"email": "me@example.com"},
    }
    return str(gateway.call("POST", "/api/oauth/link", body, status=201)["account"]["id"]), refresh


def test_refresh_renews_the_tokens_now(gateway: LocalTarget, token_service: TokenServerState) -> None:
    conn, refresh = link_fake(gateway, token_service)
    result = gateway.run("accounts", "refresh", conn)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Refreshed claude account me@example.com ({conn}): token expires in 7h 59m."
    assert len(token_service.refresh_calls()) == 1
    family = token_service.family_of(refresh)
    for secret in (refresh, *family.refresh_tokens, *family.access_tokens):
        assert secret not in result.output
    assert gateway.call("GET", f"/api/oauth/accounts/{conn}")["account"]["oauth"]["tokenVersion"] == 2


def test_a_revoked_grant_says_how_to_relink_and_shows_in_the_list(
    gateway: LocalTarget, token_service: TokenServerState
) -> None:
    conn, _ = link_fake(gateway, token_service)
    token_service.fail_next({"status": 400, "error": "invalid_grant"})
    result = gateway.run("accounts", "refresh", conn)
    assert result.exit_code == 1
    message = result.stderr.replace("\n", "")
    assert f"claude account me@example.com ({conn}) must be linked again" in message
    assert f"`omniroute login claude --relink {conn}`" in message

    listed = gateway.run("accounts", "list")
    assert listed.exit_code == 0, listed.output
    row = rows(listed.stdout)[0]  # a long reason wraps onto more lines
    assert row[4] == "relink_needed" and row[6].startswith("invalid_grant")
    assert f"run `omniroute login claude --relink {conn}`" in listed.stdout.replace("\n", " ")


def test_refresh_of_an_api_key_connection_says_it_has_no_tokens(gateway: LocalTarget) -> None:
    created = gateway.call("POST", "/api/providers", {"provider": "openai", "apiKey": "sk-" + "k" * 30}, status=201)
    conn = created["connection"]["id"]
    result = gateway.run("accounts", "refresh", conn)
    assert result.exit_code == 1
    assert "is not a linked OAuth account" in result.stderr.replace("\n", "")


def test_refresh_of_an_unknown_id_is_the_apis_not_found(gateway: LocalTarget) -> None:
    result = gateway.run("accounts", "refresh", "conn_missing")
    assert result.exit_code == 1
    assert "No connection with id `conn_missing`." in result.stderr.replace("\n", "")
    assert "on demand" not in result.stderr


# A target deployed before on-demand refresh existed: the account is there, the route is not.
TOKEN = "omni-admin-canned-token"


async def _old_account(request: Request) -> JSONResponse:
    account = {"id": request.path_params["id"], "provider": "codex", "name": "work", "oauth": {"status": "active"}}
    return JSONResponse({"account": account})


def test_refresh_on_a_target_without_the_route_says_so() -> None:
    with ServerThread(Starlette(routes=[Route("/api/oauth/accounts/{id}", _old_account)])) as server:
        result = run_command("accounts", ("refresh", "conn_x", "--url", server.base_url, "--token", TOKEN), TOKEN)
    assert result.exit_code == 1
    assert "cannot refresh an account on demand yet" in result.stderr.replace("\n", "")


def test_help_lists_every_command() -> None:
    result = run_command("accounts", ("--help",), TOKEN)
    assert result.exit_code == 0
    for command in ("list", "show", "remove", "enable", "disable", "refresh"):
        assert command in result.stdout
