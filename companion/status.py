"""`omniroute status`: a running gateway's health (linked accounts to relink, breakers, cooldowns, cache, latency)
from its admin API."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from companion.admin_client import (
    DEFAULT_URL,
    AdminClient,
    AdminFailure,
    DataDirOption,
    TokenOption,
    UrlOption,
    exit_with,
)

_STATE_STYLES = {"open": "bold red", "half_open": "yellow", "half-open": "yellow"}


def status(
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON instead of tables.")] = False,
    reset: Annotated[
        bool, typer.Option("--reset", help="Close circuit breakers and clear cooldowns, then say how many.")
    ] = False,
    provider: Annotated[str | None, typer.Option(help="With --reset: only this provider's.")] = None,
    connection: Annotated[str | None, typer.Option(help="With --reset: only this connection's (its id).")] = None,
) -> None:
    """Show the gateway's health: linked accounts to relink, circuit breakers, cooldowns, cache and latency (or
    reset them)."""
    if (provider or connection) and not reset:
        raise typer.BadParameter("--provider and --connection only go with --reset", param_hint="--reset")
    out = Console()
    try:
        client = AdminClient.resolve(url, token, data_dir)
        if reset:
            body = {k: v for k, v in (("provider", provider), ("connectionId", connection)) if v is not None}
            result = client.post("/api/health/reset", body)
        else:
            result = client.get("/api/health")
    except AdminFailure as failure:
        raise exit_with(failure) from failure
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
    elif reset:
        out.print(reset_summary(result, provider, connection))
    else:
        render_health(out, url, result)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def render_health(console: Console, url: str, health: Mapping[str, Any]) -> None:
    """The summary line, linked accounts that need relinking (only when some do), then breakers, cooldowns,
    cache and latency."""
    console.print(summary_line(url, health), soft_wrap=True)
    relink = [a for a in health.get("relinkNeeded") or [] if isinstance(a, dict)]
    if relink:
        console.print(relink_table(relink))
        console.print("Link them again (the gateway keeps using each until its access token expires):")
        for account in relink:
            console.print(f"  {relink_command(account)}", soft_wrap=True)
    breakers = [b for b in health.get("breakers") or [] if isinstance(b, dict)]
    if any(b.get("state") != "closed" for b in breakers):
        console.print(breaker_table(breakers))
    else:
        tracked = f" ({_plural(len(breakers), 'provider')})" if breakers else ""
        console.print(f"Breakers: all closed{tracked}")
    cooldowns = [c for c in health.get("cooldowns") or [] if isinstance(c, dict)]
    console.print(cooldown_table(cooldowns) if cooldowns else "Cooldowns: none")
    console.print(cache_line(health.get("cache")))
    latency = health.get("latency")
    if isinstance(latency, dict) and latency:
        console.print(latency_table(latency))
    else:
        console.print("Latency: no requests measured yet")


def summary_line(url: str, health: Mapping[str, Any]) -> str:
    state = str(health.get("status", "unknown"))
    colour = "green" if state == "ok" else "yellow"
    providers = ", ".join(map(_safe, health.get("activeProviders") or [])) or "no providers"
    parts = [
        f"[{colour}]{_safe(state)}[/{colour}] {'cloud' if health.get('cloud') else 'local'} gateway at {_safe(url)}",
        f"{_plural(health.get('connections', 0), 'connection')} ({providers})",
        _plural(health.get("nodes", 0), "node"),
        _plural(health.get("apiKeys", 0), "API key"),
        _plural(health.get("models", 0), "model"),
    ]
    idempotency = health.get("idempotency")
    if isinstance(idempotency, dict) and "replayed" in idempotency:
        parts.append(_plural(idempotency["replayed"], "idempotent replay"))
    return " · ".join(parts)


def relink_table(accounts: list[dict[str, Any]]) -> Table:
    """Linked subscription accounts whose grant is gone (`invalid_grant`, a reused refresh token, ...)."""
    table = Table(title="Accounts to relink", title_style="bold red")
    for name in ("Connection", "Provider", "Name", "Why"):
        table.add_column(name)
    for account in accounts:
        table.add_row(
            _safe(account.get("id", "?")),
            _safe(account.get("provider", "?")),
            _safe(account.get("name") or "—"),
            _safe(account.get("reason") or "the provider refused the refresh token"),
        )
    return table


def relink_command(account: Mapping[str, Any]) -> str:
    """The command that links the account again, keeping its connection (id, priority, combos)."""
    return f"omniroute login {_safe(account.get('provider', '?'))} --relink {_safe(account.get('id', '?'))}"


def breaker_table(breakers: list[dict[str, Any]]) -> Table:
    """Every breaker, the ones not closed highlighted."""
    table = Table(title="Breakers")
    table.add_column("Provider")
    table.add_column("State")
    table.add_column("Failures", justify="right")
    table.add_column("Retry in", justify="right")
    for breaker in breakers:
        state = str(breaker.get("state", "unknown"))
        table.add_row(
            _safe(breaker.get("provider", "?")),
            _safe(state),
            f"{breaker.get('failures', '?')}/{breaker.get('threshold', '?')}",
            _seconds(breaker.get("retryInSeconds")),
            style=_STATE_STYLES.get(state, "bold" if state != "closed" else None),
        )
    return table


def cooldown_table(cooldowns: list[dict[str, Any]]) -> Table:
    table = Table(title="Cooldowns")
    for name in ("Connection", "Provider", "Model", "Reason"):
        table.add_column(name)
    table.add_column("Level", justify="right")
    table.add_column("Remaining", justify="right")
    for cooldown in cooldowns:
        table.add_row(
            _safe(cooldown.get("connectionId", "?")),
            _safe(cooldown.get("provider", "?")),
            _safe(cooldown.get("model") or "all models"),
            _safe(cooldown.get("reason", "?")),
            _safe(cooldown.get("level", "?")),
            _seconds(cooldown.get("remainingSeconds")),
        )
    return table


def cache_line(cache: object) -> str:
    if not isinstance(cache, dict):
        return "Cache: no data"
    rate = cache.get("hitRate")
    shown = f"{rate:.0%}" if isinstance(rate, int | float) else "n/a"
    return (
        f"Cache: {_plural(cache.get('hits', 0), 'hit')}, {_plural(cache.get('misses', 0), 'miss', 'misses')} "
        f"({shown} hit rate), {_plural(cache.get('entries', 0), 'entry', 'entries')}"
    )


def latency_table(latency: Mapping[str, Any]) -> Table:
    table = Table(title="Latency")
    table.add_column("Provider")
    for name in ("Requests", "p50", "p95", "p99"):
        table.add_column(name, justify="right")
    for provider, measured in sorted(latency.items()):
        numbers = measured if isinstance(measured, dict) else {}
        table.add_row(
            _safe(provider),
            _safe(numbers.get("count", "?")),
            *(_millis(numbers.get(key)) for key in ("p50Ms", "p95Ms", "p99Ms")),
        )
    return table


def reset_summary(result: Mapping[str, Any], provider: str | None, connection: str | None) -> str:
    filters = (("provider", provider), ("connection", connection))
    scope = ", ".join(f"{label} {_safe(value)}" for label, value in filters if value)
    where = f" ({scope})" if scope else ""
    breakers, cooldowns = _plural(result.get("breakers", 0), "breaker"), _plural(result.get("cooldowns", 0), "cooldown")
    return f"Reset {breakers} and {cooldowns}{where}."


def _safe(value: object) -> str:
    """A value from the gateway or the command line, shown as text even if it looks like Rich markup."""
    return escape(str(value))


def _plural(count: object, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def _seconds(value: object) -> str:
    return f"{value:.1f} s" if isinstance(value, int | float) and not isinstance(value, bool) else "—"


def _millis(value: object) -> str:
    return f"{value:.0f} ms" if isinstance(value, int | float) and not isinstance(value, bool) else "—"
