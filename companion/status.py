"""`omniroute status`: a running gateway's health (breakers, cooldowns, cache, latency) from its admin API."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

DEFAULT_URL = "http://127.0.0.1:20128"
# The file `omniroute serve` keeps the admin token in (companion.local.ADMIN_TOKEN_FILE; not imported
# from there because that module loads the whole embedded store).
ADMIN_TOKEN_FILE = "admin-token"
TIMEOUT_SECONDS = 10.0
_STATE_STYLES = {"open": "bold red", "half_open": "yellow", "half-open": "yellow"}


class StatusFailure(Exception):
    """Why the command cannot show anything: a one-line message and the exit code to leave with."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def status(
    url: Annotated[str, typer.Option(help="The gateway's base URL.", envvar="OMNIROUTE_URL")] = DEFAULT_URL,
    token: Annotated[
        str | None,
        typer.Option(
            help="Admin token (default: the admin-token file in the data dir).",
            envvar="OMNIROUTE_ADMIN_TOKEN",
            show_default=False,
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where `omniroute serve` keeps its admin token (default: ~/.omniroute).", envvar="OMNIROUTE_DATA_DIR"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON instead of tables.")] = False,
    reset: Annotated[
        bool, typer.Option("--reset", help="Close circuit breakers and clear cooldowns, then say how many.")
    ] = False,
    provider: Annotated[str | None, typer.Option(help="With --reset: only this provider's.")] = None,
    connection: Annotated[str | None, typer.Option(help="With --reset: only this connection's (its id).")] = None,
) -> None:
    """Show the gateway's health: circuit breakers, cooldowns, cache and latency (or reset them)."""
    if (provider or connection) and not reset:
        raise typer.BadParameter("--provider and --connection only go with --reset", param_hint="--reset")
    out, err = Console(), Console(stderr=True)
    try:
        key, source = _admin_token(token, data_dir)
        if reset:
            body = {k: v for k, v in (("provider", provider), ("connectionId", connection)) if v is not None}
            result = _call("POST", url, "/api/health/reset", key, source, body)
        else:
            result = _call("GET", url, "/api/health", key, source)
    except StatusFailure as failure:
        err.print(f"[red]error:[/red] {escape(failure.message)}", soft_wrap=True, highlight=False)
        raise typer.Exit(failure.exit_code) from failure
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
    elif reset:
        out.print(reset_summary(result, provider, connection))
    else:
        render_health(out, url, result)


# --------------------------------------------------------------------------------------------
# Talking to the admin API
# --------------------------------------------------------------------------------------------


def _admin_token(token: str | None, data_dir: Path | None) -> tuple[str, str]:
    """(token, where it came from, for messages). The token itself is never printed."""
    if token:
        return token, "--token / OMNIROUTE_ADMIN_TOKEN"
    from shared.settings import Settings

    # Resolved as `omniroute serve` resolves it, so both agree on where the token lives.
    directory = Settings.from_env({"OMNIROUTE_DATA_DIR": str(data_dir)} if data_dir else {}).data_dir
    path = directory / ADMIN_TOKEN_FILE
    try:
        stored = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        stored = ""
    except OSError as exc:
        raise StatusFailure(f"cannot read the admin token from {path}: {exc.strerror}") from exc
    if not stored:
        raise StatusFailure(
            f"no admin token: pass --token, set OMNIROUTE_ADMIN_TOKEN, or point --data-dir at the directory "
            f"where `omniroute serve` wrote it (looked in {path})"
        )
    return stored, str(path)


def _call(method: str, url: str, path: str, token: str, source: str, body: object = None) -> Any:
    target = url.rstrip("/") + path
    try:
        # trust_env=False: the admin token goes straight to the gateway, never through a proxy set for other traffic.
        with httpx.Client(timeout=TIMEOUT_SECONDS, trust_env=False) as client:
            response = client.request(method, target, json=body, headers={"authorization": f"Bearer {token}"})
    except httpx.InvalidURL as exc:
        raise StatusFailure(f"--url {url!r} is not a URL ({exc})") from exc
    except httpx.ConnectError as exc:
        raise StatusFailure(f"no gateway answers at {url}; start one with `omniroute serve`") from exc
    except httpx.TransportError as exc:
        raise StatusFailure(
            f"the gateway at {url} did not answer ({type(exc).__name__}); is `omniroute serve` running there?"
        ) from exc
    if response.status_code == 401:
        raise StatusFailure(f"the gateway at {url} refused the admin token (from {source}): it is wrong")
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.is_error:
        raise StatusFailure(f"{method} {target} answered HTTP {response.status_code}: {_message(payload)}", 1)
    if not isinstance(payload, dict):
        raise StatusFailure(f"{method} {target} did not answer with a JSON object", 1)
    return payload


def _message(payload: object) -> str:
    error = payload.get("error") if isinstance(payload, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else "(no error message)"


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def render_health(console: Console, url: str, health: Mapping[str, Any]) -> None:
    """The summary line, then breakers, cooldowns, cache and latency."""
    console.print(summary_line(url, health), soft_wrap=True)
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
