"""`omniroute providers`: the provider catalogue, the target's connections (API-key accounts) and its custom
provider nodes (any OpenAI-, Anthropic- or Gemini-compatible endpoint under a prefix of your choosing).

API keys go to the target once and are stored encrypted there; lists show them masked as the admin API
gives them. A key can come from `--api-key`, a hidden prompt, or standard input (`--api-key -`), so it need
not sit in the shell's history.
"""

from __future__ import annotations

import sys
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
    obj,
    path_segment,
)
from companion.render import admin_listing, admin_show, describe_record, echo_json, print_answer, safe, yes_no

app = typer.Typer(help="Provider catalogue, API-key connections and custom provider nodes.", no_args_is_help=True)

YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
ConnectionId = Annotated[str, typer.Argument(help="The connection's id (see `omniroute providers list`).")]
NODE_API_TYPES = ("openai", "anthropic", "gemini", "responses")


@app.command()
def catalog(as_json: Annotated[bool, typer.Option("--json", help="Print the catalogue as JSON.")] = False) -> None:
    """List the built-in providers: id, model prefix, how an account is added, and retired routes."""
    from shared.providers.catalog import PROVIDERS

    rows: list[dict[str, Any]] = [
        {
            "id": spec.id,
            "prefix": spec.alias,
            "aliases": list(spec.aliases),
            "name": spec.name,
            "auth": spec.auth.value,
            "format": spec.wire_format.value,
            "retiredNote": spec.retired_note or None,
        }
        for spec in PROVIDERS
    ]
    if as_json:
        echo_json({"providers": rows})
        return
    table = Table(title="Provider catalogue")
    for name in ("ID", "Prefix", "Name", "Auth", "Format"):
        table.add_column(name)
    table.add_column("Add with omniroute …", no_wrap=True)
    for row in rows:
        if row["retiredNote"]:
            how, style = "retired (see below)", "dim"
        elif row["auth"] == "oauth":
            how, style = f"login {row['id']}", None
        else:
            how, style = f"providers add {row['id']}", None
        prefixes = ", ".join([str(row["prefix"]), *spec_aliases(row)])
        table.add_row(
            *(safe(v) for v in (row["id"], prefixes, row["name"], row["auth"], row["format"], how)), style=style
        )
    out = Console()
    out.print(table)
    for row in rows:
        if row["retiredNote"]:
            out.print(f"{safe(row['id'])}: {safe(row['retiredNote'])}", soft_wrap=True, highlight=False)


@app.command("list")
@admin_listing("/api/providers", "connections", "No connections yet. Add one with `omniroute providers add PROVIDER`.")
def list_connections(found: list[dict[str, Any]]) -> None:
    """List the target's connections (accounts per provider), API keys masked."""
    Console().print(connections_table(found))


@app.command()
def add(
    provider: Annotated[
        str, typer.Argument(help="A catalogue id or prefix (`providers catalog`), or a node's prefix.")
    ],
    api_key: Annotated[
        str | None,
        typer.Option(help="The API key; `-` reads it from standard input; left out, it is asked for (hidden)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A name to tell accounts apart.")] = None,
    base_url: Annotated[str | None, typer.Option(help="Another base URL for this account (a proxy or region).")] = None,
    priority: Annotated[int | None, typer.Option(help="Lower is tried first (default 0).")] = None,
    default_model: Annotated[str | None, typer.Option(help="The model used when a request names none.")] = None,
    url: TargetUrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add an API-key account for a provider; the key is stored encrypted on the target."""
    key = read_key(api_key, prompt=True)
    body: dict[str, Any] = {"provider": provider}
    optional = {"apiKey": key, "name": name, "baseUrl": base_url, "priority": priority, "defaultModel": default_model}
    body |= {k: v for k, v in optional.items() if v is not None and v != ""}
    payload = admin_call(url, token, data_dir, lambda c: c.post("/api/providers", body))
    _show_connection("Added", payload, as_json)


@app.command()
def update(
    id: ConnectionId,
    api_key: Annotated[str | None, typer.Option(help="A new API key; `-` reads it from standard input.")] = None,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    base_url: Annotated[str | None, typer.Option(help='A new base URL; "" goes back to the default.')] = None,
    priority: Annotated[int | None, typer.Option(help="A new priority (lower is tried first).")] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Route requests to it, or stop.", show_default=False)
    ] = None,
    default_model: Annotated[str | None, typer.Option(help='A new default model; "" removes it.')] = None,
    url: TargetUrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a connection: only the options given change."""
    body: dict[str, Any] = {}
    if api_key is not None:
        body["apiKey"] = read_key(api_key, prompt=False)
    for field, value in (("name", name), ("priority", priority), ("enabled", enabled)):
        if value is not None:
            body[field] = value
    for field, text in (("baseUrl", base_url), ("defaultModel", default_model)):
        if text is not None:
            body[field] = text or None  # "" clears it
    if not body:
        raise typer.BadParameter("nothing to change: give at least one option (see --help)", param_hint="ID")
    payload = admin_call(url, token, data_dir, lambda c: c.patch(f"/api/providers/{path_segment(id)}", body))
    _show_connection("Updated", payload, as_json)


@app.command()
def remove(
    id: ConnectionId,
    yes: YesOption = False,
    url: TargetUrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Remove a connection and its stored key (or a linked account's tokens)."""

    def run(client: AdminClient) -> dict[str, Any]:
        found = client.get(f"/api/providers/{path_segment(id)}").get("connection")
        connection = found if isinstance(found, dict) else {"id": id}
        if not yes:
            typer.confirm(f"Remove {describe(connection)}? Its stored credential is deleted.", abort=True)
        client.delete(f"/api/providers/{path_segment(id)}")
        return connection

    connection = admin_call(url, token, data_dir, run)
    Console().print(f"Removed {describe(connection)}.", soft_wrap=True, highlight=False)


@app.command()
@admin_listing(
    "/api/provider-nodes",
    "nodes",
    "No provider nodes. Add one with `omniroute providers add-node PREFIX --base-url URL`.",
)
def nodes(found: list[dict[str, Any]]) -> None:
    """List custom provider nodes (your own OpenAI/Anthropic/Gemini-compatible endpoints)."""
    table = Table(title="Provider nodes")
    for name in ("ID", "Prefix", "Name", "API type", "Base URL"):
        table.add_column(name)
    for node in found:
        table.add_row(*(safe(node.get(k) or "—") for k in ("id", "prefix", "name", "apiType", "baseUrl")))
    Console().print(table)


@app.command("add-node")
def add_node(
    prefix: Annotated[str, typer.Argument(help="The model prefix it answers to (`PREFIX/model`).")],
    base_url: Annotated[str, typer.Option(help="Its base URL, version path included (…/v1).", show_default=False)],
    api_type: Annotated[str, typer.Option(help=f"Its wire format: {', '.join(NODE_API_TYPES)}.")] = "openai",
    name: Annotated[str | None, typer.Option(help="A display name (default: the prefix).")] = None,
    url: TargetUrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a custom provider node; then add its key with `omniroute providers add PREFIX`."""
    body: dict[str, Any] = {"prefix": prefix, "baseUrl": base_url, "apiType": api_type}
    if name:
        body["name"] = name

    def added(payload: dict[str, Any]) -> None:
        node = obj(payload.get("node"))
        Console().print(
            f"Added node {safe(node.get('id') or '?')}: {safe(node.get('prefix') or prefix)}/… → "
            f"{safe(node.get('baseUrl') or base_url)} ({safe(node.get('apiType') or api_type)}).",
            soft_wrap=True,
            highlight=False,
        )

    admin_show(url, token, data_dir, as_json, lambda c: c.post("/api/provider-nodes", body), added)


@app.command("remove-node")
def remove_node(
    id: Annotated[str, typer.Argument(help="The node's id (see `omniroute providers nodes`).")],
    url: TargetUrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Remove a provider node (its connections and models must be removed first)."""
    admin_call(url, token, data_dir, lambda c: c.delete(f"/api/provider-nodes/{path_segment(id)}"))
    Console().print(f"Removed node {safe(id)}.", highlight=False)


# --------------------------------------------------------------------------------------------
# Helpers and rendering
# --------------------------------------------------------------------------------------------


def spec_aliases(row: dict[str, Any]) -> list[str]:
    aliases = row.get("aliases")
    return [str(a) for a in aliases] if isinstance(aliases, list) else []


def read_key(value: str | None, *, prompt: bool) -> str | None:
    """The API key from the option, standard input (`-`) or a hidden prompt; never echoed."""
    if value == "-":
        key = sys.stdin.readline().strip()
        if not key:
            raise typer.BadParameter("standard input held no key", param_hint="--api-key")
        return key
    if value is None and prompt:
        entered: str = typer.prompt(
            "API key (input hidden; empty for a keyless node)", default="", show_default=False, hide_input=True
        )
        return entered.strip() or None
    return value


def _show_connection(verb: str, payload: dict[str, Any], as_json: bool) -> None:
    def show(answer: dict[str, Any]) -> None:
        connection = obj(answer.get("connection"))
        Console().print(f"{verb} {describe(connection)}.", soft_wrap=True, highlight=False)
        Console().print(connections_table([connection]))

    print_answer(payload, as_json, show)


def describe(connection: dict[str, Any]) -> str:
    return describe_record(connection, "connection")


def credential(connection: dict[str, Any]) -> str:
    """What authenticates the account, as the API shows it (a masked key, never the key)."""
    if connection.get("credentialError"):
        return "unreadable key"
    oauth = connection.get("oauth")
    if connection.get("linked") or isinstance(oauth, dict):
        status = oauth.get("status") if isinstance(oauth, dict) else None
        return f"OAuth ({status or 'no credentials'})"
    key = connection.get("apiKey")
    return str(key) if key else "none"


def connections_table(connections: list[dict[str, Any]]) -> Table:
    table = Table(title="Connections")
    for name in ("ID", "Provider", "Name", "Priority", "Enabled", "Credential", "Base URL", "Default model"):
        table.add_column(name, justify="right" if name == "Priority" else "left")
    for c in connections:
        table.add_row(
            safe(c.get("id", "?")),
            safe(c.get("provider", "?")),
            safe(c.get("name") or "—"),
            safe(c.get("priority", 0)),
            yes_no(bool(c.get("enabled", True))),
            safe(credential(c)),
            safe(c.get("baseUrl") or "default"),
            safe(c.get("defaultModel") or "—"),
        )
    return table
