"""How the admin commands (`accounts`, `providers`, `combos`, `keys`) show what the target answered: the JSON
itself with `--json`, else text and Rich tables in which every value from the target is escaped (a name may
look like Rich markup). Also the shell of their read commands: call, then print as JSON or render.

    @app.command("list")
    @admin_listing("/api/keys", "keys", "No API keys yet.")
    def list_keys(keys: list[dict[str, Any]]) -> None:  # its docstring is the command's help
        Console().print(keys_table(keys))
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from companion.admin_client import (
    AdminClient,
    DataDirOption,
    JsonOption,
    TargetUrlOption,
    TokenOption,
    admin_call,
)


def echo_json(payload: object) -> None:
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))


def safe(value: object) -> str:
    """A value from the target shown as text even if it looks like Rich markup."""
    return escape(str(value))


def yes_no(flag: bool) -> str:
    return "yes" if flag else "[dim]no[/dim]"


def describe_record(record: Mapping[str, Any], noun: str) -> str:
    """`claude account me@example.com (conn_ab12)`: a connection-like record's provider, `noun`, name and id."""
    return (
        f"{safe(record.get('provider') or '?')} {noun} {safe(record.get('name') or '?')} "
        f"({safe(record.get('id') or '?')})"
    )


def print_answer(payload: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], None]) -> None:
    """The target's answer as JSON with `--json`, else as `render` shows it."""
    if as_json:
        echo_json(payload)
        return
    render(payload)


def admin_show(
    url: str | None,
    token: str | None,
    data_dir: Path | None,
    as_json: bool,
    call: Callable[[AdminClient], dict[str, Any]],
    render: Callable[[dict[str, Any]], None],
) -> None:
    """Make the admin call (failures leave the command, see `admin_call`) and print its answer."""
    print_answer(admin_call(url, token, data_dir, call), as_json, render)


def admin_list(
    url: str | None,
    token: str | None,
    data_dir: Path | None,
    as_json: bool,
    path: str,
    key: str,
    empty: str,
    render: Callable[[list[dict[str, Any]]], None],
) -> None:
    """GET `path` and print the objects under `key` of its answer with `render`, or `empty` when there are
    none (the whole answer as JSON with `--json`)."""

    def render_items(payload: dict[str, Any]) -> None:
        items = [item for item in payload.get(key) or [] if isinstance(item, dict)]
        if not items:
            Console().print(empty)
            return
        render(items)

    admin_show(url, token, data_dir, as_json, lambda c: c.get(path), render_items)


def admin_listing(
    path: str, key: str, empty: str
) -> Callable[[Callable[[list[dict[str, Any]]], None]], Callable[..., None]]:
    """Make a function that renders a list into a list command (decorate it, then `@app.command`): it takes the
    target options and `--json`, and runs `admin_list` with the function as renderer; its docstring is the
    command's help."""

    def decorate(render: Callable[[list[dict[str, Any]]], None]) -> Callable[..., None]:
        def command(
            url: TargetUrlOption = None,
            token: TokenOption = None,
            data_dir: DataDirOption = None,
            as_json: JsonOption = False,
        ) -> None:
            admin_list(url, token, data_dir, as_json, path, key, empty, render)

        command.__name__, command.__doc__ = render.__name__, render.__doc__
        return command

    return decorate
