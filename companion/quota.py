"""`omniroute quota`: how much of each account's quota windows is used and when they reset, which accounts
are blocked until when, and where each key stands against its budgets."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from companion.admin_client import (
    DEFAULT_URL,
    AdminClient,
    AdminFailure,
    DataDirOption,
    TokenOption,
    UrlOption,
    exit_with,
)

BAR_CELLS = 10
WARN_PERCENT = 70.0
CRITICAL_PERCENT = 90.0
_BUDGET_STYLES = {"ok": "green", "warning": "yellow", "exceeded": "bold red"}


def quota(
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print the raw JSON ({"quota", "budgets"}) instead of tables.')
    ] = False,
) -> None:
    """Show each account's quota windows (used, limits, resets, blocked) and each key's budgets."""
    try:
        client = AdminClient.resolve(url, token, data_dir)
        windows = client.get("/api/usage/quota")
        budgets = client.get("/api/budgets")
    except AdminFailure as failure:
        raise exit_with(failure) from failure
    if as_json:
        typer.echo(json.dumps({"quota": windows, "budgets": budgets}, indent=2, ensure_ascii=False))
        return
    out, now = Console(), datetime.now(UTC)
    accounts = [a for a in windows.get("accounts") or [] if isinstance(a, dict)]
    if not accounts:
        out.print("Quota: no account has reported a quota window yet.")
    for account in accounts:
        out.print(account_table(account, now))
        out.print()
    keys = [b for b in budgets.get("budgets") or [] if isinstance(b, dict)]
    out.print(budget_table(keys, now) if keys else "Budgets: none set.")


def account_table(account: dict[str, Any], now: datetime) -> Group:
    """A line naming the account (and until when it is BLOCKED), then its windows: used (a bar coloured by how
    full), counts, and when each resets. The line is not the table's title, which would wrap at its width."""
    title = Text(f"{account.get('provider') or '?'} · {account.get('name') or account.get('connectionId') or '?'}")
    title.append(f" ({account.get('connectionId') or '?'})", style="dim")
    if account.get("blocked"):
        title.append("  BLOCKED " + blocked_until(account.get("blockedUntil"), now), style="bold red")
    windows = [w for w in account.get("windows") or [] if isinstance(w, dict)]
    if not windows:
        return Group(title, Text("  no quota windows reported", style="dim"))
    table = Table()
    table.add_column("Window")
    table.add_column("Source")
    table.add_column("Used", no_wrap=True)
    table.add_column("Used / limit", justify="right")
    table.add_column("Remaining", justify="right")
    table.add_column("Resets", justify="right", no_wrap=True)
    for window in windows:
        unit = window.get("unit")
        used, limit = _number(window.get("used")), _number(window.get("limit"))
        percent = _number(window.get("usedPercent"))
        if percent is None and used is not None and limit:
            percent = 100.0 * used / limit
        table.add_row(
            Text(str(window.get("label") or window.get("name") or "?")),
            Text(str(window.get("source") or "?")),
            usage_bar(percent, limited=bool(window.get("limited"))),
            Text(_of(used, limit, unit)),
            Text(_amount(_number(window.get("remaining")), unit)),
            Text(countdown(_seconds_left(window, now))),
            style="red" if window.get("limited") else None,
        )
    updated = _moment(account.get("updatedAt"))
    if updated is not None:
        table.caption = f"read {_ago((now - updated).total_seconds())}"
    return Group(title, table)


def budget_table(budgets: list[dict[str, Any]], now: datetime) -> Table:
    """Each key's budget periods: spent of the limit, status, and when the period starts over."""
    table = Table(title="Budgets", title_justify="left")
    table.add_column("Key")
    table.add_column("Period")
    table.add_column("Spent / limit", justify="right")
    table.add_column("Used", no_wrap=True)
    table.add_column("Remaining", justify="right")
    table.add_column("Status")
    table.add_column("Resets", justify="right", no_wrap=True)
    for budget in budgets:
        name = str(budget.get("keyName") or budget.get("keyId") or "?")
        warning = _number(budget.get("warningThreshold"))
        for index, period in enumerate(p for p in budget.get("periods") or [] if isinstance(p, dict)):
            spent, limit = _number(period.get("spentUsd")) or 0.0, _number(period.get("limitUsd"))
            status = str(period.get("status") or "?")
            table.add_row(
                Text("" if index else name),
                Text(str(period.get("period") or "?")),
                Text(f"{usd(spent)} / {usd(limit) if limit is not None else '—'}"),
                usage_bar(
                    100.0 * spent / limit if limit else None, warn_at=100.0 * (warning or 0.8), critical_at=100.0
                ),
                Text(usd(_number(period.get("remainingUsd")))),
                Text(status, style=_BUDGET_STYLES.get(status, "")),
                Text(countdown(_seconds_left(period, now))),
            )
    return table


# --------------------------------------------------------------------------------------------
# Cells
# --------------------------------------------------------------------------------------------


def usage_bar(
    percent: float | None,
    *,
    limited: bool = False,
    warn_at: float = WARN_PERCENT,
    critical_at: float = CRITICAL_PERCENT,
    cells: int = BAR_CELLS,
) -> Text:
    """`██████░░░░  60%`: green, yellow from `warn_at`, red from `critical_at` or when `limited`."""
    if percent is None:
        return Text("—")
    filled = round(min(max(percent, 0.0), 100.0) / 100.0 * cells)
    style = "red" if limited or percent >= critical_at else "yellow" if percent >= warn_at else "green"
    bar = Text()
    bar.append("█" * filled, style=style)
    bar.append("░" * (cells - filled), style="dim")
    bar.append(f" {percent:3.0f}%")
    return bar


def countdown(seconds: float | None) -> str:
    """ "in 2 h 13 min" (whole minutes, rounded down), "in 45 s", "in 3 d 4 h"; "reset" once it has passed."""
    if seconds is None:
        return "—"
    if seconds <= 0:
        return "reset"
    whole = int(seconds)
    days, hours, minutes = whole // 86400, whole % 86400 // 3600, whole % 3600 // 60
    if days:
        return f"in {days} d {hours} h"
    if hours:
        return f"in {hours} h {minutes} min"
    return f"in {minutes} min" if minutes else f"in {whole} s"


def blocked_until(value: object, now: datetime) -> str:
    """ "until 2026-11-22 16:00 CET (in 1 h 0 min)", in this machine's time zone."""
    moment = _moment(value)
    if moment is None:
        return "(no reset time known)"
    return f"until {moment.astimezone():%Y-%m-%d %H:%M %Z} ({countdown((moment - now).total_seconds())})"


def _seconds_left(entry: dict[str, Any], now: datetime) -> float | None:
    # The gateway's own count is preferred: it does not depend on this machine's clock being right.
    seconds = _number(entry.get("resetsInSeconds"))
    if seconds is not None:
        return seconds
    moment = _moment(entry.get("resetsAt"))
    return (moment - now).total_seconds() if moment is not None else None


def _ago(seconds: float) -> str:
    return "just now" if seconds < 60 else countdown(seconds).replace("in ", "", 1) + " ago"


def _of(used: float | None, limit: float | None, unit: object) -> str:
    if used is None:
        return "—"
    return _amount(used, unit) if limit is None else f"{_amount(used, None)} / {_amount(limit, unit)}"


def _amount(value: float | None, unit: object) -> str:
    if value is None:
        return "—"
    shown = compact(value)
    return f"{shown} {unit}" if unit else shown


def compact(value: float) -> str:
    """`1,234` up to 9,999, then three significant digits: `12.3k`, `420k`, `1M`, `1.5M`, `2.1B`."""
    if abs(value) < 10_000:
        return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"
    for divisor, suffix in ((1e3, "k"), (1e6, "M")):
        if abs(value / divisor) < 999.5:  # 999,999 is 1M, not 1e+03k
            return f"{value / divisor:.3g}{suffix}"
    return f"{value / 1e9:,.3g}B"


def _moment(value: object) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def usd(value: float | None) -> str:
    """Dollars with cents; four decimals below a cent, so small spending does not show as $0.00."""
    if value is None:
        return "—"
    return f"${value:,.2f}" if value == 0 or abs(value) >= 0.01 else f"${value:.4f}"
