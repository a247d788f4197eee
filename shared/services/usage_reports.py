"""What the admin API reports about usage: request history, analytics, quota windows, budgets, logs.

Analytics reads the cheapest complete source per UTC day: the day's rollup once the day has closed and
been rolled up; otherwise its hour rollups (one Query for all of them) plus the raw requests of hours not
rolled up yet (the current hour always), so today's numbers are live. Grouping by day in a time zone
other than UTC regroups hours by the local day their start falls on (zones with half-hour offsets are
attributed to whole hours). Ranges are inclusive and at most `MAX_DAYS` long.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.domain.budgets import current_periods, with_spend
from shared.domain.config import ConfigSnapshot
from shared.domain.quota import NEVER_BLOCKS, LiveWindow, counted_window, window_scope
from shared.domain.routing import RoutingView
from shared.domain.usage import UsageEvent, UsageTotals, merge, summarise
from shared.errors import InvalidRequest
from shared.ports import SpendStore, UsageStore

T = TypeVar("T")

MAX_DAYS = 92
MAX_PAGE = 200
GROUPS = ("provider", "model", "key", "connection", "day")


def _iso(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _counters(t: UsageTotals) -> dict[str, Any]:
    return {
        "requests": t.requests,
        "errors": t.errors,
        "inputTokens": t.input,
        "outputTokens": t.output,
        "cachedTokens": t.cached,
        "cacheCreationTokens": t.cache_creation,
        "reasoningTokens": t.reasoning,
        "costUsd": round(t.cost, 6),
        "estimatedRequests": t.estimated,
        "latencyMsAvg": round(t.latency_ms / t.requests, 1) if t.requests else None,
        "ttftMsAvg": round(t.ttft_ms / t.ttft_count, 1) if t.ttft_count else None,
    }


def event_view(e: UsageEvent) -> dict[str, Any]:
    u = e.usage
    return {
        "requestId": e.request_id, "at": _iso(e.at), "provider": e.provider, "model": e.model,
        "requested": e.requested, "connectionId": e.connection_id, "keyId": e.key_id, "combo": e.combo,
        "client": e.client, "stream": e.stream, "status": e.status, "inputTokens": u.input,
        "outputTokens": u.output, "cachedTokens": u.cached, "cacheCreationTokens": u.cache_creation,
        "reasoningTokens": u.reasoning, "estimated": e.estimated, "costUsd": round(e.cost, 6),
        "latencyMs": round(e.latency_ms, 1), "ttftMs": round(e.ttft_ms, 1) if e.ttft_ms is not None else None,
        "attempts": e.attempts, "error": e.error,
    }  # fmt: skip


def window_view(w: LiveWindow, now: float, label: str | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": w.name,
        "source": w.source,
        "usedPercent": w.used_percent,
        "used": w.used,
        "limit": w.limit,
        "remaining": w.remaining,
        "unit": w.unit,
        "resetsAt": _iso(w.resets_at),
        "resetsInSeconds": round(max(w.resets_at - now, 0.0), 1) if w.resets_at is not None else None,
        "limited": w.limited and (w.resets_at is None or w.resets_at > now),
        "scope": _scope_view(window_scope(w.name)),
        "label": label,
    }
    return view


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(
            f"Unknown time zone `{name}` (use an IANA name such as Europe/Copenhagen).", param="tz"
        ) from None


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"`{name}` must be a date as YYYY-MM-DD, got `{value}`.", param=name) from None


class UsageReports:
    def __init__(
        self, usage: UsageStore | None, spend: SpendStore | None, clock: Callable[[], float] = time.time
    ) -> None:
        self._usage = usage
        self._spend = spend
        self._clock = clock

    def _store(self) -> UsageStore:
        if self._usage is None:
            raise InvalidRequest("This gateway records no usage (no Usage table is configured).")
        return self._usage

    # ----- history --------------------------------------------------------------------------------

    def history(self, limit: int, cursor: str | None, *, days_back: int = 31) -> dict[str, Any]:
        """Requests newest first. The cursor is `<day>|<position>`; pages walk back day by day."""
        store = self._store()
        items, next_cursor = self._newest_first(store.recent_events, limit, cursor, days_back)
        return {"items": [event_view(e) for e in items], "nextCursor": next_cursor}

    def _newest_first(
        self,
        page: Callable[[str, int, str | None], tuple[list[T], str | None]],
        limit: int,
        cursor: str | None,
        days_back: int,
    ) -> tuple[list[T], str | None]:
        """Up to `limit` items of day partitions, newest first, walking back at most `days_back` days from
        today (UTC); a cursor `<day>|<position>` resumes where the previous page ended."""
        limit = max(1, min(limit, MAX_PAGE))
        today = datetime.fromtimestamp(self._clock(), UTC).date()
        day, before = today, None
        if cursor:
            day_text, _, position = cursor.partition("|")
            day, before = _day(day_text, "cursor"), position or None
        items: list[T] = []
        oldest = today - timedelta(days=days_back)
        while len(items) < limit and day >= oldest:
            found, more = page(day.isoformat(), limit - len(items), before)
            items.extend(found)
            if more is not None:
                return items, f"{day.isoformat()}|{more}"
            day, before = day - timedelta(days=1), None
        return items, (f"{day.isoformat()}|" if len(items) >= limit and day >= oldest else None)

    # ----- analytics ------------------------------------------------------------------------------

    def _hours(self, day: date, now: datetime) -> dict[str, list[UsageTotals]]:
        """Every hour of a UTC day up to now: its rollup, or its raw requests summed."""
        store = self._store()
        rolled = store.hour_rollups(day.isoformat())
        missing = [f"{h:02d}" for h in range(24) if f"{h:02d}" not in rolled]
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        missing = [h for h in missing if start + timedelta(hours=int(h)) <= now]
        hours = dict(rolled)
        if missing:
            by_hour: dict[str, list[UsageEvent]] = {}
            for event in store.events(day.isoformat()):
                by_hour.setdefault(datetime.fromtimestamp(event.at, UTC).strftime("%H"), []).append(event)
            for h in missing:
                hours[h] = summarise(by_hour.get(h, []))
        return hours

    def _utc_day(self, day: date, now: datetime) -> list[UsageTotals]:
        if day < now.date():
            rolled = self._store().rollup("D", day.isoformat())
            if rolled is not None:
                return rolled
        return merge(t for ts in self._hours(day, now).values() for t in ts)

    def analytics(
        self,
        snapshot: ConfigSnapshot,
        start: str | None,
        end: str | None,
        group_by: Sequence[str],
        tz: str = "UTC",
    ) -> dict[str, Any]:
        unknown = [g for g in group_by if g not in GROUPS]
        if unknown:
            raise InvalidRequest(f"Unknown groupBy `{unknown[0]}` (use any of {', '.join(GROUPS)}).", param="groupBy")
        zone = _zone(tz)
        now = datetime.fromtimestamp(self._clock(), UTC)
        today = now.astimezone(zone).date()
        last = _day(end, "to") if end else today
        first = _day(start, "from") if start else last - timedelta(days=6)
        if first > last:
            raise InvalidRequest("`from` is after `to`.", param="from")
        if (last - first).days + 1 > MAX_DAYS:
            raise InvalidRequest(f"At most {MAX_DAYS} days at once.", param="from")
        per_day: dict[date, list[UsageTotals]] = {}
        if tz == "UTC":
            day = first
            while day <= min(last, now.date()):
                per_day[day] = self._utc_day(day, now)
                day += timedelta(days=1)
        else:
            # the UTC days the local range touches, regrouped hour by hour into local days
            lo = datetime(first.year, first.month, first.day, tzinfo=zone).astimezone(UTC).date()
            hi = (datetime(last.year, last.month, last.day, tzinfo=zone) + timedelta(days=1)).astimezone(UTC).date()
            day = lo
            while day <= min(hi, now.date()):
                start_utc = datetime(day.year, day.month, day.day, tzinfo=UTC)
                for hour, totals in self._hours(day, now).items():
                    local = (start_utc + timedelta(hours=int(hour))).astimezone(zone).date()
                    if first <= local <= last:
                        per_day.setdefault(local, []).extend(totals)
                day += timedelta(days=1)
        keys = {k.id: k.name for k in snapshot.api_keys}
        conns = {c.id: c.name for c in snapshot.connections}
        grouped: dict[tuple[str, ...], UsageTotals] = {}
        everything = UsageTotals()
        for day, totals in per_day.items():
            for t in totals:
                everything = everything.plus(t)
                key = tuple(_dimension(g, t, day) for g in group_by)
                grouped[key] = grouped[key].plus(t) if key in grouped else t
        groups = []
        for key, t in sorted(grouped.items()):
            row: dict[str, Any] = {}
            for name, value in zip(group_by, key, strict=True):
                if name == "key":
                    row["keyId"], row["keyName"] = value or None, keys.get(value) if value else None
                elif name == "connection":
                    row["connectionId"], row["connectionName"] = value or None, conns.get(value) if value else None
                else:
                    row[name] = value
            row.update(_counters(t))
            groups.append(row)
        return {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "timezone": tz,
            "groupBy": list(group_by),
            "totals": _counters(everything),
            "groups": groups,
        }

    def monthly(self, months: int) -> dict[str, Any]:
        """Month rollups (complete days only) by provider, newest first."""
        store = self._store()
        month = datetime.fromtimestamp(self._clock(), UTC).date().replace(day=1)
        out = []
        for _ in range(max(1, min(months, 36))):
            rolled = store.rollup("M", month.strftime("%Y-%m"))
            if rolled is not None:
                by_provider = merge(UsageTotals(provider=t.provider).plus(t) for t in rolled)
                out.append(
                    {
                        "month": month.strftime("%Y-%m"),
                        "totals": _counters(_sum(rolled)),
                        "providers": [{"provider": t.provider, **_counters(t)} for t in by_provider],
                    }
                )
            month = (month - timedelta(days=1)).replace(day=1)
        return {"months": out}

    # ----- quota and budgets ------------------------------------------------------------------------

    def quota(self, snapshot: ConfigSnapshot, view: RoutingView, skip_at_percent: float) -> dict[str, Any]:
        now = self._clock()
        accounts = []
        for conn in snapshot.connections:
            live = view.quotas.get(conn.id)
            windows = [window_view(w, now) for w in (live.windows if live else ())]
            counted = [counted_window(r, view.quota_counts.get((conn.id, r.name)), now) for r in conn.quotas]
            windows += [window_view(w, now, r.spec.label) for w, r in zip(counted, conn.quotas, strict=True)]
            if not windows:
                continue
            # the whole account is blocked by account-wide windows only (a model-scoped one names no model "")
            every = (*(live.windows if live else ()), *counted)
            blocking = [w for w in every if w.blocks(now, skip_at_percent, model="")]
            until = max((w.resets_at or 0.0 for w in blocking), default=None) if blocking else None
            accounts.append(
                {
                    "connectionId": conn.id,
                    "provider": conn.provider,
                    "name": conn.name,
                    "blocked": bool(blocking),
                    "blockedUntil": _iso(until) if until else None,
                    "blockedForSeconds": round(max(until - now, 0.0), 1) if until else None,
                    "updatedAt": _iso(live.updated_at) if live else None,
                    "windows": windows,
                }
            )
        return {"accounts": accounts}

    def budgets(self, snapshot: ConfigSnapshot) -> dict[str, Any]:
        now = self._clock()
        out = []
        for key in snapshot.api_keys:
            if key.budget is None:
                continue
            periods = current_periods(key.budget, now)
            spent = self._spend.spend(key.id, [p.id for p in periods]) if self._spend is not None else {}
            periods = with_spend(periods, spent)
            out.append(
                {
                    "keyId": key.id,
                    "keyName": key.name,
                    **key.budget.to_data(),
                    "periods": [
                        {
                            "period": p.name,
                            "limitUsd": p.limit,
                            "spentUsd": round(p.spent, 6),
                            "remainingUsd": round(max(p.limit - p.spent, 0.0), 6),
                            "status": p.status(key.budget.warning_threshold),
                            "periodStart": _iso(p.start),
                            "resetsAt": _iso(p.end),
                            "resetsInSeconds": round(p.end - now, 1),
                        }
                        for p in periods
                    ],
                }
            )
        return {"budgets": out}

    # ----- request logs -----------------------------------------------------------------------------

    def logs(self, limit: int, cursor: str | None, *, days_back: int = 7) -> dict[str, Any]:
        items, next_cursor = self._newest_first(self._store().logs, limit, cursor, days_back)
        return {"items": items, "nextCursor": next_cursor}


def _scope_view(scope: str | None) -> str:
    if scope is None:
        return "account"
    return "informational" if scope == NEVER_BLOCKS else f"models:{scope}"


def _dimension(name: str, t: UsageTotals, day: date) -> str:
    if name == "day":
        return day.isoformat()
    return {"provider": t.provider, "model": t.model, "key": t.key_id, "connection": t.connection_id}[name]


def _sum(totals: Iterable[UsageTotals]) -> UsageTotals:
    out = UsageTotals()
    for t in totals:
        out = out.plus(t)
    return out


__all__ = ["UsageReports", "event_view", "window_view"]
