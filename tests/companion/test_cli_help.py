"""Every `omniroute` command and sub-command explains itself: `--help` answers with its usage and exit 0."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from companion.cli import app
from tests.companion.cli_runner import ISOLATED


def command_paths() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    paths: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:  # typer bundles its own click: duck-typed
        paths.append(path)
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, (*path, name))

    walk(root, ())
    return paths


PATHS = command_paths()


def test_the_companion_has_every_noun_of_the_issue() -> None:
    top = {p[0] for p in PATHS if len(p) == 1}
    nouns = {"serve", "target", "login", "accounts", "providers", "combos", "keys", "sync", "configure", "status"}
    assert nouns <= top
    assert {("sync", "push"), ("sync", "pull"), ("sync", "status")} <= set(PATHS)
    tools = {p[1] for p in PATHS if len(p) == 2 and p[0] == "configure"}
    assert tools >= {"claude-code", "codex", "opencode", "cline", "openclaw", "cursor"}


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "omniroute")
def test_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env=ISOLATED)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
