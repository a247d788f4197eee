"""`omniroute accounts`: the subscription accounts linked with `omniroute login`, as the target holds them.

The target owns their tokens (and refreshes them); these commands show what may be shown (status, expiry,
who the account is) and never a token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
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
from companion.render import admin_listing, admin_show, describe_record, echo_json, safe

app = typer.Typer(
    help="Linked subscription (OAuth) accounts: list, inspect, enable, disable, refresh, remove.", no_args_is_help=True
)

IdArgument = Annotated[str, typer.Argument(help="The account's connection id (see `omniroute accounts list`).")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
_STATUS_STYLES = {"active": "green", "relink_needed": "bold red"}


@app.command("list")
@admin_listing("/api/oauth/accounts", "accounts", "No linked accounts. Link one with `omniroute login <provider>`.")
def list_accounts(accounts: list[dict[str, Any]]) -> None:
    """List linked accounts: provider, who they are, status and when their access token expires."""
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
    admin_show(
        url,
        token,
        data_dir,
        as_json,
        lambda c: c.get(f"/api/oauth/accounts/{path_segment(id)}"),
        lambda payload: Console().print(account_details(obj(payload.get("account")), time.time())),
    )


@app.command()
def remove(
    id: IdArgument,
    yes: YesOption = False,
    url: TargetUrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Remove a linked account: the connection and its stored tokens (link it again with `omniroute login`)."""

    def delete(client: AdminClient, account: dict[str, Any]) -> dict[str, Any]:
        if not yes:
            typer.confirm(f"Remove {describe(account)}? Its tokens are deleted from the target.", abort=True)
        client.delete(f"/api/providers/{path_segment(id)}")
        return account

    account = _with_account(id, url, token, data_dir, delete)
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

    def renew(client: AdminClient, account: dict[str, Any]) -> dict[str, Any]:
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

    payload = _with_account(id, url, token, data_dir, renew)
    if as_json:
        echo_json(payload)
    account = obj(payload.get("account")) or {"id": id}
    done = obj(payload.get("refresh"))
    outcome, detail = str(done.get("outcome") or "refreshed"), str(done.get("detail") or "")
    if as_json:
        raise typer.Exit(0 if outcome in ("refreshed", "skipped") else 1)
    oauth = obj(account.get("oauth"))
    expiry = expiry_text(oauth.get("expiresAt"), time.time())
    because = f" ({safe(detail)})" if detail else ""
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


def _with_account(
    id: str,
    url: str | None,
    token: str | None,
    data_dir: Path | None,
    act: Callable[[AdminClient, dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """Look the account up first (so a wrong id is the API's "no such account", not a missing route), then
    `act` on it with the same client; any AdminFailure leaves the command."""

    def run(client: AdminClient) -> dict[str, Any]:
        found = client.get(f"/api/oauth/accounts/{path_segment(id)}").get("account")
        return act(client, found if isinstance(found, dict) else {"id": id})

    return admin_call(url, token, data_dir, run)


def _set_enabled(id: str, enabled: bool, url: str | None, token: str | None, data_dir: Path | None) -> None:
    payload = admin_call(
        url, token, data_dir, lambda c: c.patch(f"/api/providers/{path_segment(id)}", {"enabled": enabled})
    )
    connection = obj(payload.get("connection")) or {"id": id}
    state = "Enabled" if enabled else "Disabled"
    Console().print(f"{state} {describe(connection)}.", soft_wrap=True, highlight=False)


def describe(account: dict[str, Any]) -> str:
    """`claude account me@example.com (conn_ab12)`."""
    return describe_record(account, "account")


def relink_command(account: dict[str, Any]) -> str:
    return f"`omniroute login {safe(account.get('provider') or '?')} --relink {safe(account.get('id') or '?')}`"


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
            safe(account.get("id", "?")),
            safe(account.get("provider", "?")),
            safe(account.get("name") or "—"),
            safe(who(meta)),
            f"[{style}]{safe(status)}[/{style}]" if style else safe(status),
            safe(expiry_text(oauth.get("expiresAt"), now)),
            safe(note),
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
    table = Table(show_header=False, title=f"Account {safe(account.get('id') or '?')}")
    table.add_column("Field", style="bold")
    table.add_column("Value")
    for label, value in rows:
        if value is not None and value != "":
            table.add_row(label, safe(value))
    return table
