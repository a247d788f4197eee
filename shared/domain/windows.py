"""Time windows that account quotas and per-key budgets are counted in.

A window spec is a small JSON object kept on a connection (`quotas`) or on an API key's budget, next to
the caller's own fields (`tokens`, `requests`, `dailyUsd`, ...), which parsing ignores:

    {"window": "rolling", "hours": 5}
    {"window": "daily", "resetTime": "10:00", "timezone": "Europe/Copenhagen"}
    {"window": "weekly", "weekday": "monday", "resetTime": "00:00", "timezone": "UTC"}
    {"window": "monthly", "dayOfMonth": 31, "resetTime": "00:00", "timezone": "UTC"}

Calendar windows (daily, weekly, monthly) reset at a local wall-clock time in an IANA zone; a rolling
window opens with the first request after the previous one closed, the way Claude's and Codex's 5-hour
windows count. Every function here is pure: `now` is passed in, as epoch seconds.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_HOURS = 5.0
MAX_HOURS = 720.0  # 30 days: longer "rolling" windows are monthly ones in disguise
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RESET_TIME = re.compile(r"(\d{1,2}):(\d{2})")


class WindowKind(StrEnum):
    ROLLING = "rolling"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A parsed window. Fields that do not apply to `kind` keep their defaults, so two specs that count
    the same way compare equal. `weekday`: 0 = Monday; `day_of_month`: 1..31."""

    kind: WindowKind
    hours: float = DEFAULT_HOURS
    reset_time: time = time(0, 0)
    timezone: str = "UTC"
    weekday: int = 0
    day_of_month: int = 1

    def to_data(self) -> dict[str, Any]:
        if self.kind is WindowKind.ROLLING:
            return {"window": self.kind.value, "hours": _number(self.hours)}
        data: dict[str, Any] = {
            "window": self.kind.value,
            "resetTime": self.reset_time.strftime("%H:%M"),
            "timezone": self.timezone,
        }
        if self.kind is WindowKind.WEEKLY:
            data["weekday"] = WEEKDAYS[self.weekday]
        elif self.kind is WindowKind.MONTHLY:
            data["dayOfMonth"] = self.day_of_month
        return data

    @property
    def label(self) -> str:
        at = f"{self.reset_time.strftime('%H:%M')} {self.timezone}"
        match self.kind:
            case WindowKind.ROLLING:
                return f"{_number(self.hours)} h rolling"
            case WindowKind.DAILY:
                return f"daily at {at}"
            case WindowKind.WEEKLY:
                return f"weekly ({WEEKDAYS[self.weekday].capitalize()} {at})"
            case WindowKind.MONTHLY:
                return f"monthly (day {self.day_of_month}, {at})"


@dataclass(frozen=True, slots=True)
class Period:
    """One occurrence of a window: [start, end) in epoch seconds. `id` is stable and unique among the
    periods of one spec, so counters can be keyed by it (`daily:2026-11-22`, `weekly:2026-11-16`,
    `monthly:2026-11`, `rolling:1795000000`); calendar ids name the local date of the reset."""

    start: float
    end: float
    id: str


def parse_window(data: Mapping[str, Any]) -> WindowSpec:
    """The spec in `data`, or ValueError with a message fit to show the person who wrote it.

    Only the fields of the chosen kind are read: an admin form that switches a window from rolling to
    daily may leave `hours` behind, and that must not make the daily window invalid.
    """
    if not isinstance(data, Mapping):
        raise ValueError('a window must be a JSON object, e.g. {"window": "daily", "resetTime": "00:00"}')
    raw_kind = data.get("window")
    kind_name = raw_kind.strip().lower() if isinstance(raw_kind, str) else None
    if kind_name not in {kind.value for kind in WindowKind}:
        raise ValueError(f"window must be one of {', '.join(WindowKind)}; got {raw_kind!r}")
    kind = WindowKind(kind_name)
    if kind is WindowKind.ROLLING:
        return WindowSpec(kind, hours=_parse_hours(data.get("hours", DEFAULT_HOURS)))
    spec = WindowSpec(
        kind,
        reset_time=_parse_reset_time(data.get("resetTime", "00:00")),
        timezone=_parse_timezone(data.get("timezone", "UTC")),
    )
    if kind is WindowKind.WEEKLY:
        return replace(spec, weekday=_parse_weekday(data.get("weekday", "monday")))
    if kind is WindowKind.MONTHLY:
        return replace(spec, day_of_month=_parse_day_of_month(data.get("dayOfMonth", 1)))
    return spec


def calendar_period(spec: WindowSpec, now: float) -> Period:
    """The daily, weekly or monthly period holding `now`: `start` is the latest reset at or before `now`,
    `end` the first reset after it, so start <= now < end and consecutive periods tile time.

    Resets happen at `reset_time` local wall-clock time in `spec.timezone`, resolved as
    `datetime(..., tzinfo=zone, fold=0)` converted to UTC (PEP 495), which gives these DST rules:
    - a reset time that does not exist that day (the spring-forward gap, e.g. 02:30 in Europe/Copenhagen
      on 2026-03-29) is read with the offset in force before the gap, so it happens shifted forward by
      the gap's length: 03:30 CEST (01:30 UTC);
    - a reset time that happens twice (the fall-back overlap, e.g. 02:30 in Europe/Copenhagen on
      2026-10-25) happens at its first occurrence: 02:30 CEST (00:30 UTC).
    A daily period therefore lasts 23, 24 or 25 hours (23.5 or 24.5 in Australia/Lord_Howe). Should a
    zone skip a whole day (Pacific/Apia on 2011-12-30), two reset dates land on the same instant and the
    later one names the period, so no period is empty; should a zone repeat a day, a reset that already
    happened on the first pass is not repeated on the second.

    A monthly `day_of_month` past the end of a month resets on that month's last day. The period id
    names the local date the reset belongs to (`daily:2026-11-22`, `weekly:2026-11-16`, `monthly:2026-11`).
    """
    if spec.kind is WindowKind.ROLLING:
        raise ValueError("a rolling window has no calendar period; use rolling_period")
    zone = ZoneInfo(spec.timezone)
    today = datetime.fromtimestamp(now, zone).date()
    match spec.kind:
        case WindowKind.DAILY:
            anchor = today
        case WindowKind.WEEKLY:
            anchor = today - timedelta(days=(today.weekday() - spec.weekday) % 7)
        case _:
            anchor = _month_reset_date(today.year, today.month, spec.day_of_month)
            if anchor > today:
                anchor = _step(spec, anchor, -1)

    def reset_at(day: date) -> float:
        return datetime.combine(day, spec.reset_time.replace(fold=0), tzinfo=zone).timestamp()

    # `anchor` is the reset date on or before today's local date, but its reset instant may still be ahead
    # of `now` (before today's reset time, or pushed forward by a DST gap): walk back. And where a zone set
    # its clock back across midnight (America/Sitka repeated 1867-10-18), a later date's reset may already
    # have passed: walk forward, so `anchor` ends as the last reset <= now.
    while reset_at(anchor) > now:
        anchor = _step(spec, anchor, -1)
    following = _step(spec, anchor, 1)
    while reset_at(following) <= now:
        anchor, following = following, _step(spec, following, 1)
    return Period(start=reset_at(anchor), end=reset_at(following), id=_period_id(spec.kind, anchor))


def rolling_period(spec: WindowSpec, first_use: float | None, now: float) -> Period:
    """The rolling window holding `now`: it opened at `first_use` (the first request after the previous
    window closed) and lasts `spec.hours`; without one, or once it has expired, a new window opens now.

    A `first_use` slightly ahead of `now` (another instance's clock) still names the open window.
    """
    length = spec.hours * 3600.0
    start = now if first_use is None or first_use + length <= now else first_use
    return Period(start=start, end=start + length, id=f"rolling:{int(start)}")


def period(spec: WindowSpec, now: float, first_use: float | None = None) -> Period:
    if spec.kind is WindowKind.ROLLING:
        return rolling_period(spec, first_use, now)
    return calendar_period(spec, now)


def _period_id(kind: WindowKind, reset_date: date) -> str:
    if kind is WindowKind.MONTHLY:
        return f"monthly:{reset_date:%Y-%m}"
    return f"{kind.value}:{reset_date.isoformat()}"


def _step(spec: WindowSpec, reset_date: date, by: int) -> date:
    """The reset date `by` periods after (or before, if negative) `reset_date`."""
    match spec.kind:
        case WindowKind.DAILY:
            return reset_date + timedelta(days=by)
        case WindowKind.WEEKLY:
            return reset_date + timedelta(weeks=by)
        case _:
            index = reset_date.year * 12 + reset_date.month - 1 + by
            return _month_reset_date(index // 12, index % 12 + 1, spec.day_of_month)


def _month_reset_date(year: int, month: int, day_of_month: int) -> date:
    return date(year, month, min(day_of_month, calendar.monthrange(year, month)[1]))


def _number(value: float) -> int | float:
    # 5.0 shows and stores as 5, as the owner typed it
    return int(value) if value.is_integer() else value


def _parse_hours(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ValueError(f"hours must be a number of hours, more than 0 and at most {MAX_HOURS:g}; got {raw!r}")
    if not 0 < raw <= MAX_HOURS:
        raise ValueError(f"hours must be more than 0 and at most {MAX_HOURS:g} (30 days); got {raw!r}")
    return float(raw)


def _parse_reset_time(raw: object) -> time:
    match = _RESET_TIME.fullmatch(raw.strip()) if isinstance(raw, str) else None
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"resetTime must be a 24-hour local time HH:MM, 00:00 to 23:59; got {raw!r}")
    return time(int(match[1]), int(match[2]))


def _parse_timezone(raw: object) -> str:
    if isinstance(raw, str) and raw.strip():
        try:
            # ZoneInfo also raises ValueError for keys that are paths ("../etc/passwd", "/UTC")
            return ZoneInfo(raw.strip()).key
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise ValueError(f'timezone must be an IANA time zone name such as "Europe/Copenhagen" or "UTC"; got {raw!r}')


def _parse_weekday(raw: object) -> int:
    if isinstance(raw, str):
        name = raw.strip().lower()
        for index, weekday in enumerate(WEEKDAYS):
            if name in (weekday, weekday[:3]):
                return index
    raise ValueError(f"weekday must be a day name, monday to sunday (or mon to sun); got {raw!r}")


def _parse_day_of_month(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 31:
        raise ValueError(
            f"dayOfMonth must be a whole number from 1 to 31 (months without that day reset on their last day); "
            f"got {raw!r}"
        )
    return raw
