"""`omniroute combos`: named model lists the gateway falls back through (a subscription first, then API keys,
then cheap or free models), used as a model name by coding tools."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich.console import Console
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
from companion.render import admin_listing, admin_show, safe

app = typer.Typer(help="Combos: one model name that falls back through a list of models.", no_args_is_help=True)

_PINNED = re.compile(r"^(.+)@(conn_[A-Za-z0-9_-]+)$")
NameArgument = Annotated[str, typer.Argument(help="The combo's name (what clients send as the model).")]


@app.command("list")
@admin_listing(
    "/api/combos", "combos", "No combos yet. Create one with `omniroute combos create NAME --model prefix/model ...`."
)
def list_combos(combos: list[dict[str, Any]]) -> None:
    """List combos: strategy and models in order."""
    table = Table(title="Combos")
    for name in ("Name", "Strategy", "Models", "Config"):
        table.add_column(name)
    for combo in combos:
        table.add_row(
            safe(combo.get("name", "?")),
            safe(combo.get("strategy") or "priority"),
            safe(" → ".join(target_text(m) for m in combo.get("models") or [])),
            safe(config_text(combo.get("config"))),
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
    admin_show(
        url,
        token,
        data_dir,
        as_json,
        lambda c: c.get(f"/api/combos/{_path(name)}"),
        lambda payload: print_combo(Console(), obj(payload.get("combo"))),
    )


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

    def created(payload: dict[str, Any]) -> None:
        combo = obj(payload.get("combo"))
        out = Console()
        out.print(f"Created combo {safe(combo.get('name') or name)}.", highlight=False)
        print_combo(out, combo)

    admin_show(url, token, data_dir, as_json, lambda c: c.post("/api/combos", body), created)


@app.command()
def delete(
    name: NameArgument, url: TargetUrlOption = None, token: TokenOption = None, data_dir: DataDirOption = None
) -> None:
    """Delete a combo (refused while another combo, alias or fallback chain uses it)."""
    admin_call(url, token, data_dir, lambda c: c.delete(f"/api/combos/{_path(name)}"))
    Console().print(f"Deleted combo {safe(name)}.", highlight=False)


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
        f"Combo {safe(combo.get('name') or '?')} · strategy {safe(combo.get('strategy') or 'priority')} · "
        f"config {safe(config_text(combo.get('config')))}",
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
            safe(fields.get("model", "?")),
            safe(fields.get("weight", 1)),
            safe(fields.get("connectionId") or "any"),
        )
    console.print(table)
