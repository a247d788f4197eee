"""`omniroute combos`, driven with CliRunner against a real local target (the admin API `omniroute serve` runs,
in-process on loopback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def combo(gateway: LocalTarget, name: str) -> dict[str, Any]:
    found: dict[str, Any] = gateway.call("GET", f"/api/combos/{name}")["combo"]
    return found


def test_create_posts_the_models_in_order_with_the_strategy(gateway: LocalTarget) -> None:
    result = gateway.run(
        "combos", "create", "fast", "--model", "openai/gpt-5-mini", "-m", "groq/llama-3.3-70b-versatile",
        "--strategy", "round-robin",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    stored = combo(gateway, "fast")
    assert stored["models"] == ["openai/gpt-5-mini", "groq/llama-3.3-70b-versatile"]
    assert stored["strategy"] == "round-robin"
    assert result.stdout.splitlines()[0] == "Created combo fast."
    assert rows(result.stdout) == [
        ["1", "openai/gpt-5-mini", "1", "any"],
        ["2", "groq/llama-3.3-70b-versatile", "1", "any"],
    ]


def test_a_model_pinned_to_a_connection_is_sent_as_an_object(gateway: LocalTarget) -> None:
    conn = gateway.call("POST", "/api/providers", {"provider": "openai", "apiKey": "sk-" + "k" * 30}, status=201)
    conn_id = conn["connection"]["id"]
    result = gateway.run("combos", "create", "pinned", "--model", f"openai/gpt-5-mini@{conn_id}", "--model", "cc/x@y")
    assert result.exit_code == 0, result.output
    assert combo(gateway, "pinned")["models"] == [{"model": "openai/gpt-5-mini", "connectionId": conn_id}, "cc/x@y"]
    assert ["1", "openai/gpt-5-mini", "1", conn_id] in rows(result.stdout)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--model", "nosuch/model"], "`models[0]` is `nosuch/model`: not a combo"),
        (["--model", "openai/gpt-5-mini", "--strategy", "fastest"], "`strategy` must be one of"),
    ],
)
def test_create_refused_by_the_api_exits_1_with_its_message(gateway: LocalTarget, args: list[str], said: str) -> None:
    result = gateway.run("combos", "create", "bad", *args)
    assert result.exit_code == 1
    assert said in result.stderr.replace("\n", "")
    assert gateway.call("GET", "/api/combos")["combos"] == []


def test_create_twice_exits_1_saying_it_exists(gateway: LocalTarget) -> None:
    assert gateway.run("combos", "create", "fast", "--model", "openai/gpt-5-mini").exit_code == 0
    result = gateway.run("combos", "create", "fast", "--model", "openai/gpt-5")
    assert result.exit_code == 1
    assert "A combo named `fast` already exists" in result.stderr.replace("\n", "")


def test_create_needs_a_model(gateway: LocalTarget) -> None:
    result = gateway.run("combos", "create", "fast")
    assert result.exit_code == 2
    assert "--model" in result.output


def test_list_shows_each_combo_in_one_row(gateway: LocalTarget) -> None:
    empty = gateway.run("combos", "list")
    assert empty.exit_code == 0 and "No combos yet" in empty.stdout
    gateway.call("POST", "/api/combos", {"name": "fast", "models": ["openai/gpt-5-mini", "ds/deepseek-chat"]}, 201)
    gateway.call("POST", "/api/combos", {"name": "outer", "models": ["fast"], "strategy": "random"}, 201)
    result = gateway.run("combos", "list")
    assert result.exit_code == 0, result.output
    listed = rows(result.stdout)
    assert [row[:3] for row in listed] == [
        ["fast", "priority", "openai/gpt-5-mini → ds/deepseek-chat"],
        ["outer", "random", "fast"],
    ]
    as_json = gateway.run("combos", "list", "--json")
    assert [c["name"] for c in json.loads(as_json.stdout)["combos"]] == ["fast", "outer"]


def test_show_and_delete_a_name_with_a_slash(gateway: LocalTarget) -> None:
    gateway.call("POST", "/api/combos", {"name": "team/fast", "models": ["openai/gpt-5-mini"]}, 201)
    shown = gateway.run("combos", "show", "team/fast")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith("Combo team/fast · strategy priority · config ")
    assert rows(shown.stdout) == [["1", "openai/gpt-5-mini", "1", "any"]]
    as_json = gateway.run("combos", "show", "team/fast", "--json")
    assert json.loads(as_json.stdout)["combo"]["models"] == ["openai/gpt-5-mini"]

    deleted = gateway.run("combos", "delete", "team/fast")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.strip() == "Deleted combo team/fast."
    assert gateway.call("GET", "/api/combos")["combos"] == []


def test_show_of_an_unknown_combo_exits_1(gateway: LocalTarget) -> None:
    result = gateway.run("combos", "show", "nosuch")
    assert result.exit_code == 1
    assert "HTTP 404" in result.stderr


def test_delete_of_a_combo_in_use_exits_1_and_keeps_it(gateway: LocalTarget) -> None:
    gateway.call("POST", "/api/combos", {"name": "fast", "models": ["openai/gpt-5-mini"]}, 201)
    gateway.call("POST", "/api/combos", {"name": "outer", "models": ["fast"]}, 201)
    result = gateway.run("combos", "delete", "fast")
    assert result.exit_code == 1
    assert "still used by combo `outer`" in result.stderr.replace("\n", "")
    assert combo(gateway, "fast")["name"] == "fast"


def test_an_unreachable_target_exits_2(gateway: LocalTarget) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = gateway.run("combos", "list", "--url", url)
    assert result.exit_code == 2
    assert f"no gateway answers at {url}" in result.stderr


def test_help_lists_every_command(gateway: LocalTarget) -> None:
    result = gateway.run("combos", "--help")
    assert result.exit_code == 0
    for command in ("list", "show", "create", "delete"):
        assert command in result.stdout
    create_help = gateway.run("combos", "create", "--help")
    for option in ("--model", "--strategy", "--url", "--json"):
        assert option in create_help.stdout
