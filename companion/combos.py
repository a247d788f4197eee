"""`omniroute combos`: named model lists the gateway falls back through (a subscription first, then API keys,
then cheap or free models), used as a model name by coding tools."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from companion.admin_client import (
    DataDirOption,
    JsonOption,
    TargetUrlOption,
    TokenOption,
    admin_call,
    obj,
    path_segment,
)

app = typer.Typer(help="Combos: one model name that falls back through a list of models.", no_args_is_help=True)

_PINNED = re.compile(r"^(.+)@(conn_[A-Za-z0-9_-]+)$")
NameArgument = Annotated[str, typer.Argument(help="The combo's name (what clients send as the model).")]


@app.command("list")
def list_combos(
    url: TargetUrlOption = None, token: TokenOption = None, data_dir: DataDirOption = None, as_json: JsonOption = False
) -> None:
    """List combos: strategy and models in order."""
    payload = admin_call(url, token, data_dir, lambda c: c.get("/api/combos"))
    if as_json:
        _echo_json(payload)
        return
    combos = [c for c in payload.get("combos") or [] if isinstance(c, dict)]
    if not combos:
        Console().print("No combos yet. Create one with `omniroute combos create NAME --model prefix/model ...`.")
        return
    table = Table(title="Combos")
    for name in ("Name", "Strategy", "Models", "Config"):
        table.add_column(name)
    for combo in combos:
        table.add_row(
            _safe(combo.get("name", "?")),
            _safe(combo.get("strategy") or "priority"),
            _safe(" → ".join(target_text(m) for m in combo.get("models") or [])),
            _safe(config_text(combo.get("config"))),
        )
    Console().print(table)


@app.command()
def show(
    name: NameArgument,
    url: TargetUrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one combo: its strategy, settings and each model it tries."""
    payload = admin_call(url, token, data_dir, lambda c: c.get(f"/api/combos/{_path(name)}"))
    if as_json:
        _echo_json(payload)
        return
    combo = obj(payload.get("combo"))
    print_combo(Console(), combo)


@app.command()
def create(
    name: NameArgument,
    model: Annotated[
        list[str],
        typer.Option(
            "--model",
            "-m",
            help=(
                "A target, in order: `prefix/model`, another combo's name, or `prefix/model@conn_…` "
                "(that connection only). Repeat."
            ),
            show_default=False,
        ),
    ],
    strategy: Annotated[
        str | None,
        typer.Option(help="How targets are chosen: priority (in order), round-robin, weighted, random, ..."),
    ] = None,
    url: TargetUrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a combo from models tried in the order given."""
    body: dict[str, Any] = {"name": name, "models": [model_entry(m) for m in model]}
    if strategy:
        body["strategy"] = strategy
    payload = admin_call(url, token, data_dir, lambda c: c.post("/api/combos", body))
    if as_json:
        _echo_json(payload)
        return
    combo = obj(payload.get("combo"))
    out = Console()
    out.print(f"Created combo {_safe(combo.get('name') or name)}.", highlight=False)
    print_combo(out, combo)


@app.command()
def delete(
    name: NameArgument, url: TargetUrlOption = None, token: TokenOption = None, data_dir: DataDirOption = None
) -> None:
    """Delete a combo (refused while another combo, alias or fallback chain uses it)."""
    admin_call(url, token, data_dir, lambda c: c.delete(f"/api/combos/{_path(name)}"))
    Console().print(f"Deleted combo {_safe(name)}.", highlight=False)


# --------------------------------------------------------------------------------------------
# Helpers and rendering
# --------------------------------------------------------------------------------------------


def _path(name: str) -> str:
    # Names may hold `/` (`team/fast`): the route takes the rest of the path; anything else is encoded.
    return path_segment(name, keep_slashes=True)


def model_entry(text: str) -> str | dict[str, str]:
    """`prefix/model` as is; `prefix/model@conn_…` pins the target to one connection (only a connection id
    after the `@`, so a model id that holds an `@` stays whole)."""
    pinned = _PINNED.match(text)
    if pinned:
        return {"model": pinned.group(1), "connectionId": pinned.group(2)}
    return text


def target_text(entry: object) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    text = str(entry.get("model", "?"))
    if entry.get("connectionId"):
        text += f"@{entry['connectionId']}"
    if entry.get("weight") not in (None, 1):
        text += f" ×{entry['weight']}"
    return text


def config_text(config: object) -> str:
    if not isinstance(config, dict) or not config:
        return "defaults"
    return ", ".join(f"{k}={v}" for k, v in sorted(config.items()))


def print_combo(console: Console, combo: dict[str, Any]) -> None:
    console.print(
        f"Combo {_safe(combo.get('name') or '?')} · strategy {_safe(combo.get('strategy') or 'priority')} · "
        f"config {_safe(config_text(combo.get('config')))}",
        soft_wrap=True,
        highlight=False,
    )
    table = Table()
    for name in ("#", "Model", "Weight", "Connection"):
        table.add_column(name, justify="right" if name in ("#", "Weight") else "left")
    for i, entry in enumerate(combo.get("models") or [], start=1):
        fields = entry if isinstance(entry, dict) else {"model": entry}
        table.add_row(
            str(i),
            _safe(fields.get("model", "?")),
            _safe(fields.get("weight", 1)),
            _safe(fields.get("connectionId") or "any"),
        )
    console.print(table)


def _echo_json(payload: object) -> None:
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))


def _safe(value: object) -> str:
    """A value from the target shown as text even if it looks like Rich markup."""
    return escape(str(value))
