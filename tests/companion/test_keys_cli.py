"""`omniroute keys`, driven with CliRunner against a real local target (the admin API `omniroute serve` runs,
in-process on loopback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.companion.cli_runner import LocalTarget, local_target
from tests.fakes.server import free_port


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[LocalTarget]:
    with local_target(tmp_path) as target:
        yield target


def rows(output: str) -> list[list[str]]:
    """The cells of every table body row Rich drew."""
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in output.splitlines() if line[:1] == "│"]


def keys(gateway: LocalTarget) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = gateway.call("GET", "/api/keys")["keys"]
    return found


def test_create_prints_the_key_once_on_stdout_and_warns_on_stderr(gateway: LocalTarget) -> None:
    result = gateway.run("keys", "create", "laptop")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("sk-") and "\n" not in key
    [stored] = keys(gateway)
    assert f"Created API key {stored['id']} (laptop)." in result.stderr
    assert "not shown again" in result.stderr
    # The key is real: the gateway accepts it once keys are required.
    gateway.call("PATCH", "/api/settings", {"requireApiKey": True})
    models = httpx.get(gateway.url + "/v1/models", headers={"authorization": f"Bearer {key}"}, trust_env=False)
    assert models.status_code == 200, models.text
    refused = httpx.get(gateway.url + "/v1/models", headers={"authorization": "Bearer sk-wrong"}, trust_env=False)
    assert refused.status_code == 401
    # ...and never shown again: the list has only its display form.
    listed = gateway.run("keys", "list")
    assert key not in listed.output
    assert rows(listed.stdout)[0][:4] == [stored["id"], "laptop", stored["key"], "yes"]
    assert stored["key"].startswith(key[:8]) and stored["key"].endswith(key[-4:])


def test_create_json_holds_the_key(gateway: LocalTarget) -> None:
    result = gateway.run("keys", "create", "ci", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["name"] == "ci" and payload["key"].startswith("sk-")
    assert [k["id"] for k in keys(gateway)] == [payload["id"]]


def test_list_says_when_there_are_none_and_json_is_the_payload(gateway: LocalTarget) -> None:
    empty = gateway.run("keys", "list")
    assert empty.exit_code == 0 and "No API keys yet" in empty.stdout
    gateway.call("POST", "/api/keys", {"name": "a"}, status=201)
    as_json = gateway.run("keys", "list", "--json")
    assert json.loads(as_json.stdout)["keys"] == keys(gateway)


def test_revoke_asks_then_deletes(gateway: LocalTarget) -> None:
    created = gateway.call("POST", "/api/keys", {"name": "old"}, status=201)
    refused = gateway.run("keys", "revoke", created["id"], input="n\n")
    assert refused.exit_code == 1
    assert f"Revoke key {created['id']} (old," in refused.output
    assert len(keys(gateway)) == 1
    result = gateway.run("keys", "revoke", created["id"], input="y\n")
    assert result.exit_code == 0, result.output
    assert f"Revoked key {created['id']} (old, " in result.stdout
    assert keys(gateway) == []


def test_revoke_with_yes_does_not_ask(gateway: LocalTarget) -> None:
    created = gateway.call("POST", "/api/keys", {"name": "old"}, status=201)
    result = gateway.run("keys", "revoke", created["id"], "--yes")
    assert result.exit_code == 0, result.output
    assert "?" not in result.output
    assert keys(gateway) == []


def test_revoke_of_an_unknown_id_exits_1_with_the_apis_message(gateway: LocalTarget) -> None:
    result = gateway.run("keys", "revoke", "key_missing")
    assert result.exit_code == 1
    assert "No apikey with id `key_missing`." in result.stderr.replace("\n", "")


def test_an_unreachable_target_exits_2(gateway: LocalTarget) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = gateway.run("keys", "create", "x", "--url", url)
    assert result.exit_code == 2
    assert f"no gateway answers at {url}" in result.stderr
    assert keys(gateway) == []


def test_help_lists_every_command(gateway: LocalTarget) -> None:
    result = gateway.run("keys", "--help")
    assert result.exit_code == 0
    for command in ("list", "create", "revoke"):
        assert command in result.stdout
