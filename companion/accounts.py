"""`omniroute accounts`: the subscription accounts linked with `omniroute login`, as the target holds them.

The target owns their tokens (and refreshes them); these commands show what may be shown (status, expiry,
who the account is) and never a token.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from companion.admin_client import (
    AdminClient,
    AdminFailure,
    DataDirOption,
    JsonOption,
    TargetUrlOption,
    TokenOption,
    admin_call,
    obj,
    path_segment,
)

app = typer.Typer(
    help="Linked subscription (OAuth) accounts: list, inspect, enable, disable, refresh, remove.", no_args_is_help=True
)

IdArgument = Annotated[str, typer.Argument(help="The account's connection id (see `omniroute accounts list`).")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
_STATUS_STYLES = {"active": "green", "relink_needed": "bold red"}


@app.command("list")
def list_accounts(
    url: TargetUrlOption = None, token: TokenOption = None, data_dir: DataDirOption = None, as_json: JsonOption = False
) -> None:
    """List linked accounts: provider, who they are, status and when their access token expires."""
    payload = admin_call(url, token, data_dir, lambda c: c.get("/api/oauth/accounts"))
    if as_json:
        _echo_json(payload)
        return
    accounts = [a for a in payload.get("accounts") or [] if isinstance(a, dict)]
    if not accounts:
        Console().print("No linked accounts. Link one with `omniroute login <provider>`.")
        return
    out = Console()
    out.print(accounts_table(accounts, time.time()))
    for account in accounts:
        oauth = obj(account.get("oauth"))
        if oauth.get("status") == "relink_needed":
            out.print(
                f"{describe(account)} must be linked again: run {relink_command(account)} "
                "(its access token serves until it expires).",
                soft_wrap=True,
                highlight=False,
            )


@app.command()
def show(
    id: IdArgument,
    url: TargetUrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one linked account: its credential status, token expiry, refresh history and what it is."""
    payload = admin_call(url, token, data_dir, lambda c: c.get(f"/api/oauth/accounts/{path_segment(id)}"))
    if as_json:
        _echo_json(payload)
        return
    account = obj(payload.get("account"))
    Console().print(account_details(account, time.time()))


@app.command()
def remove(
    id: IdArgument,
    yes: YesOption = False,
    url: TargetUrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Remove a linked account: the connection and its stored tokens (link it again with `omniroute login`)."""

    def run(client: AdminClient) -> dict[str, Any]:
        account = _account(client, id)
        if not yes:
            typer.confirm(f"Remove {describe(account)}? Its tokens are deleted from the target.", abort=True)
        client.delete(f"/api/providers/{path_segment(id)}")
        return account

    account = admin_call(url, token, data_dir, run)
    Console().print(f"Removed {describe(account)}.", soft_wrap=True, highlight=False)


@app.command()
def enable(
    id: IdArgument, url: TargetUrlOption = None, token: TokenOption = None, data_dir: DataDirOption = None
) -> None:
    """Let the gateway route requests to this account again."""
    _set_enabled(id, True, url, token, data_dir)


@app.command()
def disable(
    id: IdArgument, url: TargetUrlOption = None, token: TokenOption = None, data_dir: DataDirOption = None
) -> None:
    """Keep the account (and its tokens) but stop routing requests to it."""
    _set_enabled(id, False, url, token, data_dir)


@app.command()
def refresh(
    id: IdArgument,
    url: TargetUrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Refresh the account's tokens now, instead of waiting for the target's scheduled refresh."""

    def run(client: AdminClient) -> dict[str, Any]:
        account = _account(client, id)  # a wrong id is the API's "no such account", not a missing route
        if account.get("oauth") is None:
            raise AdminFailure(f"{describe(account)} is not a linked OAuth account: it has no tokens to refresh", 1)
        try:
            return client.post(f"/api/oauth/accounts/{path_segment(id)}/refresh", {})
        except AdminFailure as failure:
            if failure.status in (404, 405):  # the account exists: it is the route that does not
                raise AdminFailure(
                    f"this target cannot refresh an account on demand yet (HTTP {failure.status}; update it); its "
                    "scheduled refresh keeps the token fresh meanwhile",
                    1,
                    status=failure.status,
                ) from failure
            raise

    payload = admin_call(url, token, data_dir, run)
    if as_json:
        _echo_json(payload)
    account = obj(payload.get("account")) or {"id": id}
    done = obj(payload.get("refresh"))
    outcome, detail = str(done.get("outcome") or "refreshed"), str(done.get("detail") or "")
    if as_json:
        raise typer.Exit(0 if outcome in ("refreshed", "skipped") else 1)
    oauth = obj(account.get("oauth"))
    expiry = expiry_text(oauth.get("expiresAt"), time.time())
    because = f" ({_safe(detail)})" if detail else ""
    if outcome == "refreshed":
        Console().print(f"Refreshed {describe(account)}: token {expiry}.", soft_wrap=True, highlight=False)
        return
    if outcome == "skipped":
        Console().print(f"Nothing to refresh for {describe(account)}{because}; token {expiry}.", highlight=False)
        return
    if outcome == "relink_needed":
        message = f"{describe(account)} must be linked again{because}: run {relink_command(account)}"
    elif outcome == "busy":
        message = f"another refresher is renewing {describe(account)} right now; its token {expiry}"
    else:
        message = f"refreshing {describe(account)} failed{because}; the target tries again on its schedule"
    Console(stderr=True).print(f"[red]error:[/red] {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(1)


# --------------------------------------------------------------------------------------------
# Helpers and rendering
# --------------------------------------------------------------------------------------------


def _account(client: AdminClient, id: str) -> dict[str, Any]:
    account = client.get(f"/api/oauth/accounts/{path_segment(id)}").get("account")
    return account if isinstance(account, dict) else {"id": id}


def _set_enabled(id: str, enabled: bool, url: str | None, token: str | None, data_dir: Path | None) -> None:
    payload = admin_call(
        url, token, data_dir, lambda c: c.patch(f"/api/providers/{path_segment(id)}", {"enabled": enabled})
    )
    connection = obj(payload.get("connection")) or {"id": id}
    state = "Enabled" if enabled else "Disabled"
    Console().print(f"{state} {describe(connection)}.", soft_wrap=True, highlight=False)


def _echo_json(payload: object) -> None:
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))


def _safe(value: object) -> str:
    """A value from the target shown as text even if it looks like Rich markup."""
    return escape(str(value))


def describe(account: dict[str, Any]) -> str:
    """`claude account me@example.com (conn_ab12)`."""
    return (
        f"{_safe(account.get('provider') or '?')} account {_safe(account.get('name') or '?')} "
        f"({_safe(account.get('id') or '?')})"
    )


def relink_command(account: dict[str, Any]) -> str:
    return f"`omniroute login {_safe(account.get('provider') or '?')} --relink {_safe(account.get('id') or '?')}`"


def who(meta: dict[str, Any]) -> str:
    """What the account is: email (or account id) and plan."""
    parts = [str(meta[k]) for k in ("email", "accountId") if meta.get(k)][:1]
    if meta.get("plan"):
        parts.append(str(meta["plan"]))
    return " · ".join(parts) or "—"


def expiry_text(expires_at: object, now: float) -> str:
    """`expires in 3h 12m`, `expired 5m ago`, or `no expiry` when the provider gave none."""
    if not isinstance(expires_at, int | float) or isinstance(expires_at, bool) or expires_at <= 0:
        return "no expiry"
    left = expires_at - now
    return f"expires in {duration(left)}" if left > 0 else f"expired {duration(-left)} ago"


def duration(seconds: float) -> str:
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def _status(account: dict[str, Any], oauth: dict[str, Any]) -> tuple[str, str | None]:
    if account.get("oauth") is None:
        return "not linked (no OAuth credentials)", "dim"
    if not account.get("enabled", True):
        return "disabled", "dim"
    status = str(oauth.get("status") or "unknown")
    return status, _STATUS_STYLES.get(status, "yellow")


def accounts_table(accounts: list[dict[str, Any]], now: float) -> Table:
    table = Table(title="Linked accounts")
    for name in ("ID", "Provider", "Name", "Account", "Status", "Token", "Note"):
        table.add_column(name)
    for account in accounts:
        oauth = obj(account.get("oauth"))
        meta = obj(oauth.get("meta"))
        status, style = _status(account, oauth)
        note = oauth.get("relinkReason") or oauth.get("lastError") or ""
        table.add_row(
            _safe(account.get("id", "?")),
            _safe(account.get("provider", "?")),
            _safe(account.get("name") or "—"),
            _safe(who(meta)),
            f"[{style}]{_safe(status)}[/{style}]" if style else _safe(status),
            _safe(expiry_text(oauth.get("expiresAt"), now)),
            _safe(note),
        )
    return table


def account_details(account: dict[str, Any], now: float) -> Table:
    oauth = obj(account.get("oauth"))
    meta = obj(oauth.get("meta"))
    status, _ = _status(account, oauth)
    rows: list[tuple[str, object]] = [
        ("ID", account.get("id")),
        ("Provider", account.get("provider")),
        ("Name", account.get("name")),
        ("Status", status),
        ("Token", expiry_text(oauth.get("expiresAt"), now)),
        ("Token version", oauth.get("tokenVersion")),
        ("Linked", oauth.get("linkedAt")),
        ("Refreshed", oauth.get("refreshedAt") or "not yet"),
        ("Failures", oauth.get("failures", 0)),
        ("Last error", oauth.get("lastError")),
        ("Retry at", oauth.get("retryAt")),
        ("Relink reason", oauth.get("relinkReason")),
        ("Priority", account.get("priority")),
        ("Base URL", account.get("baseUrl")),
    ]
    rows += [(f"meta.{key}", value) for key, value in sorted(meta.items())]
    table = Table(show_header=False, title=f"Account {_safe(account.get('id') or '?')}")
    table.add_column("Field", style="bold")
    table.add_column("Value")
    for label, value in rows:
        if value is not None and value != "":
            table.add_row(label, _safe(value))
    return table
