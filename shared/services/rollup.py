"""Usage rollups: requests → hours → days → months, in the Usage table.

Each rollup is recomputed from the level below and replaces what was stored (`UsageStore.put_rollup`),
so running a period twice gives the same result: re-running is how a late or failed run is repaired.
A run covers the last closed hours (by default two: an event written late, say a long stream's, lands
in the next run), every day one of those hours belongs to, and that day's month. Retention: hours 90
days, days two years, months forever; request events as the settings say (30 days by default).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import anyio.to_thread

from shared.domain.usage import UsageTotals, merge, summarise
from shared.ports import UsageStore

log = logging.getLogger("omniroute.rollup")

HOUR_KEEP = 90 * 86_400
DAY_KEEP = 730 * 86_400


def hour_id(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H")


@dataclass(slots=True)
class RollupReport:
    hours: dict[str, int] = field(default_factory=dict)  # hour → events rolled up
    days: list[str] = field(default_factory=list)
    months: list[str] = field(default_factory=list)


class UsageRollup:
    def __init__(self, usage: UsageStore, clock: Callable[[], float]) -> None:
        self._usage = usage
        self._clock = clock

    def roll_hour(self, hour: datetime) -> int:
        """Sum one UTC hour's requests into its groups; returns how many requests it held."""
        hid = hour_id(hour)
        events = self._usage.events(hid[:10], hid)
        self._usage.put_rollup("H", hid, summarise(events), hour.timestamp() + HOUR_KEEP)
        return len(events)

    def roll_day(self, day: date) -> None:
        """Sum a UTC day's 24 hours (rolling up any hour not rolled up yet)."""
        did = day.isoformat()
        hours = self._usage.hour_rollups(did)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        missing = [h for h in range(24) if f"{h:02d}" not in hours]
        for h in missing:
            self.roll_hour(start + timedelta(hours=h))
        if missing:  # read again only when something was rolled up just now
            hours = self._usage.hour_rollups(did)
        groups = [t for rolled in hours.values() for t in rolled]
        self._usage.put_rollup("D", did, merge(groups), start.timestamp() + DAY_KEEP)

    def roll_month(self, month: date) -> None:
        """Sum a month's day rollups (days never rolled up count as empty: they had no closed hours)."""
        groups: list[UsageTotals] = []
        day = month.replace(day=1)
        while day.month == month.month:
            groups.extend(self._usage.rollup("D", day.isoformat()) or [])
            day += timedelta(days=1)
        self._usage.put_rollup("M", month.strftime("%Y-%m"), merge(groups), None)

    def run(self, at: datetime | None = None, hours_back: int = 2) -> RollupReport:
        """Roll up the `hours_back` hours that closed before `at`, then their days (a day only once it
        has closed, when all its hours can be final), then those days' months."""
        at = (at or datetime.fromtimestamp(self._clock(), UTC)).astimezone(UTC)
        current = at.replace(minute=0, second=0, microsecond=0)
        report = RollupReport()
        days: set[date] = set()
        for back in range(hours_back, 0, -1):
            hour = current - timedelta(hours=back)
            report.hours[hour_id(hour)] = self.roll_hour(hour)
            days.add(hour.date())
        for day in sorted(days):
            if day < current.date():
                self.roll_day(day)
                report.days.append(day.isoformat())
        for month in sorted({d.replace(day=1) for d in days if d.isoformat() in report.days}):
            self.roll_month(month)
            report.months.append(month.strftime("%Y-%m"))
        log.info("usage rollup: %s", report)
        return report


async def roll_up_hourly(rollup: UsageRollup, clock: Callable[[], float], minute: int = 5) -> None:
    """Local mode's stand-in for the scheduled job: a run now (catching up after a restart), then one at
    `minute` past every hour, until cancelled."""
    while True:
        try:
            await anyio.to_thread.run_sync(rollup.run)
        except Exception:  # a failing run is repeated by the next one (runs are idempotent)
            log.exception("usage rollup failed")
        now = clock()
        await asyncio.sleep(max((now // 3600 + 1) * 3600 + minute * 60 - now, 1.0))
