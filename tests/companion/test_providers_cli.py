"""`omniroute providers`, driven with CliRunner against a real local target (the admin API `omniroute serve`
runs, in-process on loopback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.providers.catalog import PROVIDERS
from tests.companion.cli_runner import LocalTarget, local_target
from tests.fakes.server import free_port

API_KEY = "sk-proj-upstream-key-never-printed-0123456789"
MASKED = "sk-p…6789"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[LocalTarget]:
    with local_target(tmp_path) as target:
        yield target


def rows(output: str) -> list[list[str]]:
    """The cells of every table body row Rich drew."""
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in output.splitlines() if line[:1] == "│"]


def connections(gateway: LocalTarget) -> list[dict[str, object]]:
    found: list[dict[str, object]] = gateway.call("GET", "/api/providers")["connections"]
    return found


# --------------------------------------------------------------------------------------------
# catalog
# --------------------------------------------------------------------------------------------


def test_catalog_shows_each_provider_with_how_to_add_it(gateway: LocalTarget) -> None:
    result = gateway.run("providers", "catalog")
    assert result.exit_code == 0, result.output
    by_id = {row[0]: row for row in rows(result.stdout) if row[0]}
    assert by_id["openai"][1:5] == ["openai", "OpenAI", "apikey", "openai"]
    assert by_id["openai"][5] == "providers add openai"
    assert by_id["claude"][3] == "oauth" and by_id["claude"][5] == "login claude"
    assert by_id["qwen"][5] == "retired (see below)"
    assert "qwen: The Qwen OAuth free tier ended" in result.stdout


def test_catalog_json_holds_every_catalogue_row() -> None:
    from tests.companion.cli_runner import run_command

    result = run_command("providers", ("catalog", "--json"), "unused-token")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)["providers"]
    assert [p["id"] for p in listed] == [spec.id for spec in PROVIDERS]
    retired = {p["id"]: p["retiredNote"] for p in listed if p["retiredNote"]}
    assert set(retired) >= {"qwen", "iflow"}


# --------------------------------------------------------------------------------------------
# add, list
# --------------------------------------------------------------------------------------------


def test_add_with_the_key_as_an_option_shows_it_masked(gateway: LocalTarget) -> None:
    result = gateway.run(
        "providers", "add", "openai", "--api-key", API_KEY, "--name", "personal", "--priority", "2",
        "--default-model", "gpt-5-mini",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert API_KEY not in result.output
    [stored] = connections(gateway)
    assert result.stdout.splitlines()[0] == f"Added openai connection personal ({stored['id']})."
    assert (stored["name"], stored["priority"], stored["apiKey"], stored["defaultModel"]) == (
        "personal", 2, MASKED, "gpt-5-mini",
    )  # fmt: skip
    listed = gateway.run("providers", "list")
    assert listed.exit_code == 0, listed.output
    assert rows(listed.stdout) == [
        [str(stored["id"]), "openai", "personal", "2", "yes", MASKED, "default", "gpt-5-mini"]
    ]
    assert API_KEY not in listed.output


def test_add_asks_for_the_key_without_echoing_it(gateway: LocalTarget) -> None:
    result = gateway.run("providers", "add", "groq", input=API_KEY + "\n")
    assert result.exit_code == 0, result.output
    assert "API key (input hidden" in result.output
    assert API_KEY not in result.output
    [stored] = connections(gateway)
    assert (stored["provider"], stored["apiKey"]) == ("groq", MASKED)


def test_add_reads_the_key_from_standard_input(gateway: LocalTarget) -> None:
    result = gateway.run("providers", "add", "openai", "--api-key", "-", input=API_KEY + "\n")
    assert result.exit_code == 0, result.output
    assert API_KEY not in result.output
    assert [c["apiKey"] for c in connections(gateway)] == [MASKED]


def test_add_with_an_empty_standard_input_is_a_usage_error(gateway: LocalTarget) -> None:
    result = gateway.run("providers", "add", "openai", "--api-key", "-", input="")
    assert result.exit_code == 2
    assert "standard input held no key" in result.output
    assert connections(gateway) == []


@pytest.mark.parametrize(
    ("provider", "said"),
    [
        ("nosuch", "Unknown provider 'nosuch'."),
        ("claude", "omniroute login claude"),  # subscription accounts are linked, not keyed
    ],
)
def test_add_refused_by_the_api_exits_1_with_its_message(gateway: LocalTarget, provider: str, said: str) -> None:
    result = gateway.run("providers", "add", provider, "--api-key", API_KEY)
    assert result.exit_code == 1
    assert said in result.stderr.replace("\n", "")
    assert API_KEY not in result.output
    assert connections(gateway) == []


def test_add_without_a_key_for_a_keyed_provider_exits_1(gateway: LocalTarget) -> None:
    result = gateway.run("providers", "add", "openai", input="\n")
    assert result.exit_code == 1
    assert "`apiKey` is required for openai." in result.stderr.replace("\n", "")


def test_list_json_is_the_api_payload(gateway: LocalTarget) -> None:
    gateway.call("POST", "/api/providers", {"provider": "openai", "apiKey": API_KEY}, status=201)
    result = gateway.run("providers", "list", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["connections"] == connections(gateway)
    assert API_KEY not in result.output


def test_list_says_when_there_are_none(gateway: LocalTarget) -> None:
    result = gateway.run("providers", "list")
    assert result.exit_code == 0, result.output
    assert "No connections yet" in result.stdout


# --------------------------------------------------------------------------------------------
# update, remove
# --------------------------------------------------------------------------------------------


def test_update_changes_only_what_is_given(gateway: LocalTarget) -> None:
    created = gateway.call(
        "POST", "/api/providers",
        {"provider": "openai", "apiKey": API_KEY, "name": "a", "baseUrl": "https://proxy.example.com/v1"},
        status=201,
    )["connection"]  # fmt: skip
    new_key = "sk-proj-rotated-key-never-printed-abcdefghij"
    result = gateway.run(
        "providers", "update", created["id"], "--name", "b", "--priority", "5", "--disable", "--base-url", "",
        "--api-key", "-", input=new_key + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"Updated openai connection b ({created['id']})."
    assert new_key not in result.output
    [stored] = connections(gateway)
    assert (stored["name"], stored["priority"], stored["enabled"], stored["baseUrl"]) == ("b", 5, False, None)
    assert stored["apiKey"] == "sk-p…ghij"


def test_update_with_nothing_to_change_is_a_usage_error(gateway: LocalTarget) -> None:
    created = gateway.call("POST", "/api/providers", {"provider": "openai", "apiKey": API_KEY}, status=201)
    result = gateway.run("providers", "update", created["connection"]["id"])
    assert result.exit_code == 2
    assert "nothing to change" in result.output


def test_update_of_an_unknown_id_exits_1(gateway: LocalTarget) -> None:
    result = gateway.run("providers", "update", "conn_missing", "--name", "x")
    assert result.exit_code == 1
    assert "No provider with id `conn_missing`." in result.stderr.replace("\n", "")


def test_remove_asks_then_deletes(gateway: LocalTarget) -> None:
    created = gateway.call("POST", "/api/providers", {"provider": "openai", "apiKey": API_KEY}, status=201)
    conn_id = created["connection"]["id"]
    refused = gateway.run("providers", "remove", conn_id, input="n\n")
    assert refused.exit_code == 1
    assert len(connections(gateway)) == 1
    result = gateway.run("providers", "remove", conn_id, input="y\n")
    assert result.exit_code == 0, result.output
    assert f"Removed openai connection openai ({conn_id})." in result.stdout
    assert connections(gateway) == []


def test_remove_of_an_unknown_id_exits_1(gateway: LocalTarget) -> None:
    result = gateway.run("providers", "remove", "conn_missing", "--yes")
    assert result.exit_code == 1
    assert "No provider with id `conn_missing`." in result.stderr.replace("\n", "")


# --------------------------------------------------------------------------------------------
# provider nodes
# --------------------------------------------------------------------------------------------


def test_nodes_add_list_use_and_remove(gateway: LocalTarget) -> None:
    empty = gateway.run("providers", "nodes")
    assert empty.exit_code == 0 and "No provider nodes" in empty.stdout

    added = gateway.run("providers", "add-node", "lm", "--base-url", "http://127.0.0.1:1234/v1", "--name", "LM Studio")
    assert added.exit_code == 0, added.output
    [node] = gateway.call("GET", "/api/provider-nodes")["nodes"]
    assert added.stdout.strip() == f"Added node {node['id']}: lm/… → http://127.0.0.1:1234/v1 (openai)."
    listed = gateway.run("providers", "nodes")
    assert rows(listed.stdout) == [[node["id"], "lm", "LM Studio", "openai", "http://127.0.0.1:1234/v1"]]

    keyless = gateway.run("providers", "add", "lm", input="\n")  # a local server needs no key
    assert keyless.exit_code == 0, keyless.output
    [connection] = connections(gateway)
    assert (connection["provider"], connection["apiKey"]) == (node["id"], None)

    in_use = gateway.run("providers", "remove-node", node["id"])
    assert in_use.exit_code == 1
    assert "still has connections or models" in in_use.stderr.replace("\n", "")

    gateway.call("DELETE", f"/api/providers/{connection['id']}", status=204)
    removed = gateway.run("providers", "remove-node", node["id"])
    assert removed.exit_code == 0, removed.output
    assert gateway.call("GET", "/api/provider-nodes")["nodes"] == []


def test_add_node_with_a_bad_api_type_exits_1(gateway: LocalTarget) -> None:
    result = gateway.run("providers", "add-node", "lm", "--base-url", "http://127.0.0.1:1234/v1", "--api-type", "soap")
    assert result.exit_code == 1
    assert "`apiType` must be one of" in result.stderr.replace("\n", "")


def test_an_unreachable_target_exits_2(gateway: LocalTarget) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = gateway.run("providers", "list", "--url", url)
    assert result.exit_code == 2
    assert f"no gateway answers at {url}" in result.stderr


def test_help_lists_every_command(gateway: LocalTarget) -> None:
    result = gateway.run("providers", "--help")
    assert result.exit_code == 0
    for command in ("catalog", "list", "add", "update", "remove", "nodes", "add-node", "remove-node"):
        assert command in result.stdout
    add_help = gateway.run("providers", "add", "--help")
    for option in ("--api-key", "--name", "--base-url", "--priority", "--url", "--json"):
        assert option in add_help.stdout
