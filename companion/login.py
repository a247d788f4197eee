"""`omniroute login <provider>`: link a subscription account on this machine and hand it to the target.

The flow (browser + PKCE on the provider's registered loopback port, a pasted code on a headless machine, or
a device code) runs here, where the owner's browser is; the tokens go once to the target's admin API, which
encrypts them (KMS in the cloud, the data dir's key locally) and refreshes them from then on. Nothing with a
token is written on this machine, and nothing is printed but the account's id, email, plan and expiry.
"""

from __future__ import annotations

import os
import sys
import webbrowser
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from companion.admin_client import (
    DEFAULT_URL,
    AdminClient,
    AdminFailure,
    DataDirOption,
    TokenOption,
    UrlOption,
    exit_with,
)
from companion.oauth.flows import check, obtain
from companion.oauth.push import push
from companion.oauth.session import FlowOptions, LinkContext, LinkError, new_http_client
from shared.providers.catalog import get_provider
from shared.providers.oauth import OAUTH_PROVIDERS, RETIRED_OAUTH, LoginMethod, OAuthProvider, oauth_provider

_LINKABLE = ", ".join(p.id for p in OAUTH_PROVIDERS)
_METHODS = "; ".join(f"{p.id}: {', '.join(m.name for m in p.methods)}" for p in OAUTH_PROVIDERS)


def login(
    provider: Annotated[
        str,
        typer.Argument(
            help=f"The provider to link: {_LINKABLE} (or its model prefix, e.g. cc, cx, gh).", show_default=False
        ),
    ],
    method: Annotated[
        str | None,
        typer.Option(help=f"How to sign in (the first is the default). {_METHODS}.", show_default=False),
    ] = None,
    paste: Annotated[
        bool,
        typer.Option(
            "--paste", help="Headless: finish by pasting the code (or the address the browser ended on) here."
        ),
    ] = False,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the sign-in address instead of opening a browser.")
    ] = False,
    port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Callback port instead of the provider's registered one. Providers accept only their registered "
            "ports, so this is for tests and relays that forward the registered port here.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Name of the account on the target (default: its email).", show_default=False)
    ] = None,
    relink: Annotated[
        str | None,
        typer.Option(
            metavar="CONNECTION_ID",
            help="Replace the credentials of this existing account (after `relink needed`).",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="Seconds to wait for the browser (default 300) or a device code's approval (default: its life).",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Link a subscription account (OAuth) and store it, encrypted, on the target."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    row = _provider_row(provider, err)
    try:
        chosen = row.method(method)
    except KeyError:
        err.print(f"[red]error:[/red] {escape(row.id)} has no method {escape(str(method))!r}; use {_names(row)}")
        raise typer.Exit(2) from None
    options = FlowOptions(paste=paste, open_browser=not no_browser, port=port, timeout=timeout)
    try:
        check(row, chosen, options)
        client = AdminClient.resolve(url, token, data_dir)
        _target_links(client, row)
    except LinkError as failure:
        err.print(f"[red]error:[/red] {escape(failure.message)}")
        raise typer.Exit(failure.exit_code) from failure
    except AdminFailure as failure:
        raise exit_with(failure) from failure
    if row.terms_note:
        err.print(escape(row.terms_note), style="dim")
    account = _link(client, row, chosen, options, err, name=name, relink=relink)
    Console(highlight=False, soft_wrap=True).print(escape(summary(row, account, relinked=relink is not None)))


def _names(row: OAuthProvider) -> str:
    return ", ".join(m.name for m in row.methods)


def _provider_row(name: str, err: Console) -> OAuthProvider:
    """The row to link, or exit: 1 for a provider whose login ended upstream, 2 for one that has none."""
    spec = get_provider(name)
    pid = spec.id if spec is not None else name.strip().lower()
    if pid in RETIRED_OAUTH and spec is not None:
        err.print(f"[red]error:[/red] {escape(spec.name)} can no longer be linked: {escape(spec.retired_note)}")
        raise typer.Exit(1)
    row = oauth_provider(pid)
    if row is None:
        what = f"{spec.name} takes an API key, not a login" if spec is not None else f"no provider is called {name!r}"
        err.print(f"[red]error:[/red] {escape(what)}. Linkable by login: {_LINKABLE}.")
        raise typer.Exit(2)
    return row


def _target_links(client: AdminClient, row: OAuthProvider) -> None:
    """Ask the target before the user signs in: a login whose result could not be stored is wasted."""
    listed = client.get("/api/oauth/providers").get("providers")
    ids = {p.get("id") for p in listed or [] if isinstance(p, dict) and not p.get("retired")}
    if row.id not in ids:
        raise LinkError(f"the target at {client.url} cannot link {row.id} (is it an older version?)")


def _link(
    client: AdminClient,
    row: OAuthProvider,
    method: LoginMethod,
    options: FlowOptions,
    err: Console,
    *,
    name: str | None,
    relink: str | None,
) -> dict[str, Any]:
    with new_http_client() as http:
        ctx = LinkContext(
            http=http,
            say=lambda text: err.print(escape(text)),
            ask=lambda prompt: str(typer.prompt(prompt, err=True)),
            browser=system_browser(),
        )
        try:
            grant = obtain(ctx, row, method, options)
        except LinkError as failure:
            err.print(f"[red]error:[/red] {escape(failure.message)}")
            raise typer.Exit(failure.exit_code) from failure
        except typer.Abort:  # end of input, or Ctrl-C at the paste prompt
            err.print("[red]error:[/red] stopped; nothing was linked")
            raise typer.Exit(1) from None
    try:
        return push(client, row, grant, name=name, relink=relink)
    except AdminFailure as failure:
        message = (
            f"{row.name} signed you in, but the target did not store the account: {failure.message}. Nothing was "
            "kept on this machine; run the login again."
        )
        raise exit_with(AdminFailure(message, failure.exit_code)) from failure


def system_browser() -> Callable[[str], bool] | None:
    """Opens a URL in the owner's graphical browser; None where there is none (an SSH session, a container):
    console browsers (lynx, w3m) cannot complete a provider's sign-in page."""
    graphical = sys.platform in ("darwin", "win32") or any(
        os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")
    )
    if not graphical:
        return None
    try:
        controller = webbrowser.get()
    except webbrowser.Error:
        return None

    def open_url(url: str) -> bool:
        try:
            return bool(controller.open(url, new=2))
        except (webbrowser.Error, OSError):
            return False

    return open_url


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def summary(row: OAuthProvider, account: dict[str, Any], *, relinked: bool) -> str:
    """One line about the stored account: never a token."""
    oauth = _object(account.get("oauth"))
    meta = _object(oauth.get("meta"))
    who = [str(v) for v in (meta.get("email") or meta.get("login"), meta.get("plan") and f"plan {meta['plan']}") if v]
    expires = oauth.get("expiresAt")
    when = (
        f"access token valid until {datetime.fromtimestamp(float(expires)).astimezone():%Y-%m-%d %H:%M %Z}"
        if isinstance(expires, int | float) and expires > 0
        else "access token expiry not given"
    )
    verb = "Relinked" if relinked else "Linked"
    details = " · ".join([*who, when])
    return f"{verb} {row.name} as {account.get('id')} ({details}); the target keeps it fresh from now on."
