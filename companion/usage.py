"""`omniroute usage`: what the gateway served, per provider, model, key or connection, as a table and a daily
chart (in the terminal, or as a PNG), from the admin API's usage analytics and request history."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
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
from companion.charts import PALETTE, StackedBars, png_chart, terminal_chart

DEFAULT_DAYS = 7
HISTORY_PAGE = 100
ERROR_CHARS = 120
COUNTERS = (
    "requests",
    "errors",
    "inputTokens",
    "outputTokens",
    "cachedTokens",
    "cacheCreationTokens",
    "reasoningTokens",
    "costUsd",
    "estimatedRequests",
)
Counters = dict[str, float]
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # not %a: the PNG font is ASCII, locales are not


class GroupBy(StrEnum):
    provider = "provider"
    model = "model"
    key = "key"
    connection = "connection"


# The fields a group of each kind carries in the analytics answer: (what identifies it, what to call it).
_GROUP_FIELDS = {
    GroupBy.provider: ("provider", "provider"),
    GroupBy.model: ("model", "model"),
    GroupBy.key: ("keyId", "keyName"),
    GroupBy.connection: ("connectionId", "connectionName"),
}


def usage(
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    days: Annotated[
        int | None,
        typer.Option(
            min=1, metavar="N", help=f"How many days to show, up to --to (default {DEFAULT_DAYS}).", show_default=False
        ),
    ] = None,
    by: Annotated[GroupBy, typer.Option(help="Break usage down by this.")] = GroupBy.provider,
    start: Annotated[
        str | None, typer.Option("--from", metavar="DATE", help="First day to show (YYYY-MM-DD); instead of --days.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", metavar="DATE", help="Last day to show (YYYY-MM-DD, default today).")
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option(
            "--tz", metavar="ZONE", help="IANA time zone days are counted in (default: UTC).", show_default=False
        ),
    ] = None,
    history: Annotated[
        int, typer.Option(min=0, metavar="N", help="Also list this many of the most recent requests.")
    ] = 0,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print the raw analytics JSON instead of tables (with --history: {"analytics", "history"}).',
        ),
    ] = False,
    png: Annotated[Path | None, typer.Option(help="Also write the chart to this PNG file.", dir_okay=False)] = None,
) -> None:
    """Show requests, tokens and cost per provider, model, key or connection, with a daily chart."""
    zone = _zone(tz)
    first, last = _date_range(start, end, days, zone)
    params = {"from": first.isoformat(), "to": last.isoformat(), "groupBy": f"{by.value},day"}
    if tz:
        params["tz"] = tz
    out = Console()
    try:
        client = AdminClient.resolve(url, token, data_dir)
        analytics = client.get("/api/usage/analytics", params)
        recent = recent_requests(client, history) if history else []
        report = UsageReport.from_analytics(analytics, by, first, last)
        if png is not None and not report.empty:
            _write(png, png_chart(report.chart()))
    except AdminFailure as failure:
        raise exit_with(failure) from failure
    if as_json:
        document = {"analytics": analytics, "history": recent} if history else analytics
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
    elif report.empty:
        out.print(f"No usage recorded between {report.first} and {report.last} ({report.timezone}).")
    else:
        out.print(usage_table(report))
        out.print()
        monochrome = out.color_system is None or out.no_color  # piped, or NO_COLOR: series differ by fill
        out.print(terminal_chart(report.chart(), out.width, monochrome=monochrome))
    if history and not as_json:
        out.print()
        out.print(history_table(recent, zone) if recent else "No requests recorded yet.")
    if png is not None:
        said = f"Wrote the chart to {png}." if not report.empty else f"Nothing to chart: {png} was not written."
        Console(stderr=as_json).print(said, soft_wrap=True, highlight=False, markup=False)


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def _zone(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise typer.BadParameter(
            f"{tz!r} is not an IANA time zone (like Europe/Copenhagen)", param_hint="--tz"
        ) from exc


def _date_range(start: str | None, end: str | None, days: int | None, zone: ZoneInfo) -> tuple[date, date]:
    if start is not None and days is not None:
        raise typer.BadParameter("give either --from or --days, not both", param_hint="--days")
    last = _day(end, "--to") if end is not None else datetime.now(zone).date()
    first = _day(start, "--from") if start is not None else last - timedelta(days=(days or DEFAULT_DAYS) - 1)
    if first > last:
        raise typer.BadParameter(f"{first} is after --to {last}", param_hint="--from")
    return first, last


def _day(value: str, option: str) -> date:
    try:
        if len(value) == len("YYYY-MM-DD"):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise typer.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD", param_hint=option)


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise AdminFailure(f"cannot write the chart to {path}: {exc.strerror}", 1) from exc


# --------------------------------------------------------------------------------------------
# From the analytics answer to rows and a chart
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsageReport:
    """The analytics answer summed per group (`groups`, most costly first) and per (day, group) (`daily`)."""

    by: GroupBy
    first: date
    last: date
    timezone: str
    labels: dict[str, str]  # group id -> what to call it, in the order to show them
    groups: dict[str, Counters]
    daily: dict[tuple[str, str], Counters]  # (YYYY-MM-DD, group id)
    totals: Counters
    latency_ms: float | None
    ttft_ms: float | None

    @classmethod
    def from_analytics(cls, payload: dict[str, Any], by: GroupBy, first: date, last: date) -> UsageReport:
        id_field, name_field = _GROUP_FIELDS[by]
        groups: dict[str, Counters] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0.0))
        daily: dict[tuple[str, str], Counters] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0.0))
        names: dict[str, str] = {}
        for group in payload.get("groups") or []:
            if not isinstance(group, dict):
                continue
            ident = str(group.get(id_field) or "(none)")
            names[ident] = str(group.get(name_field) or ident)
            for counter in COUNTERS:
                value = _number(group.get(counter))
                groups[ident][counter] += value
                daily[str(group.get("day")), ident][counter] += value
        order = sorted(groups, key=lambda g: (-groups[g]["costUsd"], -groups[g]["requests"], names[g]))
        reported = payload.get("totals")
        raw_totals: dict[str, Any] = reported if isinstance(reported, dict) else {}
        totals = {c: _number(raw_totals.get(c)) for c in COUNTERS} if raw_totals else _sum(groups.values())
        return cls(
            by=by,
            first=_reported_day(payload.get("from"), first),
            last=_reported_day(payload.get("to"), last),
            timezone=str(payload.get("timezone") or "UTC"),
            labels=_distinct_labels({g: names[g] for g in order}),
            groups=dict(groups),
            daily=dict(daily),
            totals=totals,
            latency_ms=_optional_number(raw_totals.get("latencyMsAvg")),
            ttft_ms=_optional_number(raw_totals.get("ttftMsAvg")),
        )

    @property
    def empty(self) -> bool:
        return not self.groups or not any(g["requests"] or g["costUsd"] for g in self.groups.values())

    def chart(self, max_series: int = len(PALETTE)) -> StackedBars:
        """Daily cost per group, stacked; requests where nothing cost anything. Every day in the range has a row,
        and past `max_series` groups the smallest are drawn together as "other"."""
        by_cost = any(g["costUsd"] > 0 for g in self.groups.values())
        metric = "costUsd" if by_cost else "requests"
        ranked = sorted(self.labels, key=lambda g: -self.groups[g][metric])
        shown = ranked if len(ranked) <= max_series else ranked[: max_series - 1]
        rest = [g for g in ranked if g not in shown]
        days = [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]
        values = tuple(
            tuple(self.daily.get((day.isoformat(), g), {}).get(metric, 0.0) for g in shown)
            + ((sum(self.daily.get((day.isoformat(), g), {}).get(metric, 0.0) for g in rest),) if rest else ())
            for day in days
        )
        span = f"{self.first} to {self.last} ({self.timezone})"
        return StackedBars(
            title=f"Daily cost (USD) by {self.by.value}, {span}"
            if by_cost
            else f"Daily requests by {self.by.value}, {span}: every cost is $0, so requests are shown",
            rows=tuple(f"{_WEEKDAYS[day.weekday()]} {day.isoformat()}" for day in days),
            series=tuple(self.labels[g] for g in shown) + (("other",) if rest else ()),
            values=values,
            format_value=usd if by_cost else count,
        )


def _distinct_labels(names: dict[str, str]) -> dict[str, str]:
    """Names as the gateway gave them, with the id added to any that two groups share."""
    seen: dict[str, int] = defaultdict(int)
    for name in names.values():
        seen[name] += 1
    return {ident: name if seen[name] == 1 else f"{name} ({ident})" for ident, name in names.items()}


def _sum(groups: Iterable[Counters]) -> Counters:
    return {c: sum(g[c] for g in groups) for c in COUNTERS}


def _reported_day(value: object, fallback: date) -> date:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else fallback
    except ValueError:
        return fallback


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _optional_number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def usage_table(report: UsageReport) -> Table:
    """One row per group and a total: requests, errors, tokens, cost, and how many are estimates."""
    table = Table(title=f"Usage by {report.by.value}, {report.first} to {report.last} ({report.timezone})")
    table.add_column(report.by.value.capitalize())
    for name in ("Requests", "Errors", "Input", "Output", "Cached", "Reasoning", "Cost (USD)", "Est."):
        table.add_column(name, justify="right")
    for ident, label in report.labels.items():
        table.add_row(Text(label), *_counter_cells(report.groups[ident]))
    table.add_section()
    table.add_row(Text("Total"), *_counter_cells(report.totals), style="bold")
    notes = []
    if report.totals["estimatedRequests"]:
        notes.append("Est.: requests whose tokens and cost are estimated (the provider reported no usage)")
    averages = [
        f"{name} {value:,.0f} ms"
        for name, value in (("latency", report.latency_ms), ("time to first token", report.ttft_ms))
        if value is not None
    ]
    if averages:
        notes.append("average " + ", ".join(averages))
    table.caption = "\n".join(notes) or None
    return table


def _counter_cells(counters: Counters) -> list[Text]:
    errors, estimated = counters["errors"], counters["estimatedRequests"]
    return [
        Text(count(counters["requests"])),
        Text(count(errors), style="red" if errors else ""),
        *(Text(count(counters[c])) for c in ("inputTokens", "outputTokens", "cachedTokens", "reasoningTokens")),
        Text(usd(counters["costUsd"])),
        Text(f"~{count(estimated)}", style="yellow") if estimated else Text(""),
    ]


def history_table(items: list[dict[str, Any]], zone: ZoneInfo) -> Table:
    """The most recent requests, newest first; estimated token counts are marked with ~."""
    table = Table(title=f"Last {len(items)} {'request' if len(items) == 1 else 'requests'}")
    table.add_column(f"Time ({zone.key})", no_wrap=True)
    table.add_column("Model", no_wrap=True)
    table.add_column("Client", no_wrap=True)
    table.add_column("Status", justify="right")
    for name in ("Input", "Output", "Cost (USD)", "Latency"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("Error")  # the one column that wraps when the terminal is narrow
    for item in items:
        mark = "~" if item.get("estimated") else ""
        latency = _optional_number(item.get("latencyMs"))
        table.add_row(
            Text(_local_time(item.get("at"), zone)),
            Text(str(item.get("model") or item.get("requested") or "?")),  # the public id, prefix included
            Text(str(item.get("client") or "")),
            _status_cell(item.get("status"), item.get("error")),
            Text(mark + count(_number(item.get("inputTokens")))),
            Text(mark + count(_number(item.get("outputTokens")))),
            Text(usd(_number(item.get("costUsd")))),
            Text(f"{latency:,.0f} ms" if latency is not None else "—"),
            Text(_shortened(str(item.get("error") or ""), ERROR_CHARS), style="red"),
        )
    return table


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _status_cell(status: object, error: object) -> Text:
    failed = bool(error) or (isinstance(status, int) and not 200 <= status < 300)
    return Text(str(status if status is not None else "?"), style="red" if failed else "green")


def _local_time(value: object, zone: ZoneInfo) -> str:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def recent_requests(client: AdminClient, limit: int) -> list[dict[str, Any]]:
    """The `limit` newest requests, following the history's cursor over as many pages as that takes."""
    items: list[dict[str, Any]] = []
    cursor: object = None
    while len(items) < limit:
        params = {"limit": str(min(limit - len(items), HISTORY_PAGE))}
        if isinstance(cursor, str):
            params["cursor"] = cursor
        page = client.get("/api/usage/history", params)
        batch = [item for item in page.get("items") or [] if isinstance(item, dict)]
        items.extend(batch)
        cursor = page.get("nextCursor")
        if not batch or not isinstance(cursor, str) or not cursor:
            break
    return items[:limit]


def count(value: float) -> str:
    return f"{value:,.0f}"


def usd(value: float) -> str:
    return f"${value:,.4f}"
