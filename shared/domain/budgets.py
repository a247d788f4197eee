"""Spending limits per API key: daily, weekly and monthly USD, with a warning threshold.

A budget is stored on its API key (`budget` in the key's record, OmniRoute's field names):
`{"dailyLimitUsd": 5, "weeklyLimitUsd": 20, "monthlyLimitUsd": 50, "warningThreshold": 0.8,
"timezone": "Europe/Copenhagen", "resetTime": "00:00"}`. Periods start at `resetTime` local time; weeks
on Monday, months on the 1st (`shared.domain.windows` does the calendar, DST included).

Enforcement (see `shared.services.accounting`): before the upstream call, the key's spend in each period
is read from the State table (one consistent read); at or over a limit the request is refused with 429
and `Retry-After` to the period's end. After the answer, its cost is added with `ADD` (atomic across
instances). A request that passed the check while the budget still had room is never stopped, so the
overshoot is bounded by one in-flight request per concurrent caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shared.domain.windows import WindowKind, WindowSpec, calendar_period, parse_window

PERIODS = (("daily", WindowKind.DAILY), ("weekly", WindowKind.WEEKLY), ("monthly", WindowKind.MONTHLY))
_LIMIT_FIELDS = {"daily": "dailyLimitUsd", "weekly": "weeklyLimitUsd", "monthly": "monthlyLimitUsd"}
DEFAULT_WARNING = 0.8


@dataclass(frozen=True, slots=True)
class Budget:
    limits: Mapping[str, float]  # period name (daily/weekly/monthly) → USD
    warning_threshold: float = DEFAULT_WARNING
    timezone: str = "UTC"
    reset_time: str = "00:00"
    # (period name, limit, window) for each period with a limit: derived once, read on every request
    windows: tuple[tuple[str, float, WindowSpec], ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        out = []
        for name, kind in PERIODS:
            limit = self.limits.get(name)
            if limit is not None:
                spec = parse_window({"window": kind.value, "timezone": self.timezone, "resetTime": self.reset_time})
                out.append((name, limit, spec))
        object.__setattr__(self, "windows", tuple(out))

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {_LIMIT_FIELDS[n]: v for n, v in self.limits.items()}
        data.update(warningThreshold=self.warning_threshold, timezone=self.timezone, resetTime=self.reset_time)
        return data


def parse_budget(data: object) -> Budget:
    """A budget from its stored/admin JSON; ValueError with a message naming the field otherwise."""
    if not isinstance(data, Mapping):
        raise ValueError("budget must be a JSON object")
    limits: dict[str, float] = {}
    for name, key in _LIMIT_FIELDS.items():
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{key} must be a non-negative number of US dollars, got {value!r}")
        limits[name] = float(value)
    if not limits:
        raise ValueError("a budget needs at least one of dailyLimitUsd, weeklyLimitUsd, monthlyLimitUsd")
    warning = data.get("warningThreshold", DEFAULT_WARNING)
    if isinstance(warning, bool) or not isinstance(warning, int | float) or not 0 < warning <= 1:
        raise ValueError(f"warningThreshold must be a fraction in (0, 1], got {warning!r}")
    timezone = data.get("timezone", "UTC")
    reset_time = data.get("resetTime", "00:00")
    # the calendar checks the zone and the time (and says what is wrong with them)
    parse_window({"window": "daily", "timezone": timezone, "resetTime": reset_time})
    return Budget(limits=limits, warning_threshold=float(warning), timezone=timezone, reset_time=reset_time)


@dataclass(frozen=True, slots=True)
class BudgetPeriod:
    """One period of a budget at one instant: its limit, what was spent, and its bounds (epoch seconds)."""

    name: str
    limit: float
    spent: float
    start: float
    end: float
    id: str  # stable per period: the counter's key

    @property
    def exceeded(self) -> bool:
        return self.spent >= self.limit

    def status(self, warning_threshold: float) -> str:
        if self.exceeded:
            return "exceeded"
        return "warning" if self.spent >= self.limit * warning_threshold else "ok"


def with_spend(periods: list[BudgetPeriod], spent: Mapping[str, float]) -> list[BudgetPeriod]:
    """The same periods with what was spent in each (by period id; absent: 0)."""
    return [replace(p, spent=spent.get(p.id, 0.0)) for p in periods]


def current_periods(budget: Budget, now: float, spent: Mapping[str, float] | None = None) -> list[BudgetPeriod]:
    """The budget's periods containing `now`, with the spend per period id from `spent` (0 when absent)."""
    periods = []
    for name, limit, spec in budget.windows:
        p = calendar_period(spec, now)
        periods.append(BudgetPeriod(name, limit, (spent or {}).get(p.id, 0.0), p.start, p.end, p.id))
    return periods
