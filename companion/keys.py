"""`omniroute keys`: the gateway's own API keys, which coding tools present. The target keeps only a hash of
each key, so a new key is shown once, when it is created."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from companion.admin_client import (
    AdminClient,
    DataDirOption,
    JsonOption,
    TargetUrlOption,
    TokenOption,
    admin_call,
    path_segment,
)
from companion.render import admin_listing, echo_json, safe, yes_no

app = typer.Typer(help="Gateway API keys: list, create (shown once), revoke.", no_args_is_help=True)


@app.command("list")
@admin_listing("/api/keys", "keys", "No API keys yet. Create one with `omniroute keys create NAME`.")
def list_keys(keys: list[dict[str, Any]]) -> None:
    """List API keys (only a recognisable part of each is kept)."""
    table = Table(title="API keys")
    for name in ("ID", "Name", "Key", "Enabled", "Created", "Budget"):
        table.add_column(name)
    for key in keys:
        table.add_row(
            safe(key.get("id", "?")),
            safe(key.get("name") or "—"),
            safe(key.get("key") or "—"),
            yes_no(bool(key.get("enabled", True))),
            safe(key.get("createdAt") or "—"),
            "set" if key.get("budget") else "none",
        )
    Console().print(table)


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="What the key is for (`laptop`, `ci`).")],
    url: TargetUrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key and print it once: it cannot be shown again."""
    payload = admin_call(url, token, data_dir, lambda c: c.post("/api/keys", {"name": name}))
    if as_json:
        echo_json(payload)  # the caller asked for the key in machine form
        return
    err = Console(stderr=True)
    err.print(
        f"Created API key {safe(payload.get('id') or '?')} ({safe(payload.get('name') or name)}). "
        "[bold yellow]Copy it now: it is not shown again.[/bold yellow]",
        soft_wrap=True,
        highlight=False,
    )
    # The key alone on standard output, so `KEY=$(omniroute keys create ci)` captures just the key.
    typer.echo(str(payload.get("key") or ""))


@app.command()
def revoke(
    id: Annotated[str, typer.Argument(help="The key's id (see `omniroute keys list`).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: TargetUrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Revoke an API key: clients using it are refused from then on."""

    def run(client: AdminClient) -> dict[str, Any]:
        keys = client.get("/api/keys").get("keys") or []
        found = next((k for k in keys if isinstance(k, dict) and k.get("id") == id), None)
        if found is None:  # nothing to confirm: the API says there is no such key
            client.delete(f"/api/keys/{path_segment(id)}")
            return {"id": id}
        if not yes:
            typer.confirm(f"Revoke {describe(found)}? Clients using it stop working.", abort=True)
        client.delete(f"/api/keys/{path_segment(id)}")
        return found

    revoked = admin_call(url, token, data_dir, run)
    Console().print(f"Revoked {describe(revoked)}.", highlight=False)


def describe(key: dict[str, Any]) -> str:
    name = f" ({safe(key['name'])}, {safe(key.get('key') or '…')})" if key.get("name") else ""
    return f"key {safe(key.get('id') or '?')}{name}"
