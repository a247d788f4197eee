"""Usage rollups (shared/services/rollup.py) over a Usage table built from template.yaml (moto in-process:
the rollup runs alone, one writer)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from shared.adapters.dynamo.usage_store import DynamoUsageStore
from shared.domain.usage import Usage, UsageEvent, UsageTotals, merge, summarise
from shared.services.rollup import UsageRollup

REGION = "us-east-1"
KEEP = 4_000_000_000.0


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def event(request_id: str, when: datetime, key: str = "k1", status: int = 200, cost: float = 0.25) -> UsageEvent:
    return UsageEvent(
        request_id=request_id, at=when.timestamp(), provider="openai", model="openai/gpt-4o", requested="gpt-4o",
        connection_id="c1", key_id=key, combo=None, client="openai-chat", stream=False, status=status,
        usage=Usage(input=100, output=10, cached=4, reasoning=2), estimated=False, cost=cost, latency_ms=250.5,
        ttft_ms=60.25, error=None,
    )  # fmt: skip


def grouped(totals: Sequence[UsageTotals] | None) -> list[UsageTotals]:
    assert totals is not None, "the period was not rolled up"
    return sorted(totals, key=lambda t: t.group)


# Saturday 21 and Sunday 22 November 2026
EVENTS = [
    event("a", at(21, 9, 10)),
    event("b", at(21, 23, 59), key="k2", cost=0.5),
    event("c", at(22, 3, 1)),
    event("d", at(22, 3, 40), key="k2"),
    event("e", at(22, 22, 0)),
    event("f", at(22, 23, 15), status=500, cost=0.0),
    event("g", at(22, 23, 59), cost=0.125),
]


def snapshot(usage: DynamoUsageStore) -> dict[str, Any]:
    return {
        "hours": {h: grouped(g) for h, g in usage.hour_rollups("2026-11-22").items()},
        "day": grouped(usage.rollup("D", "2026-11-22")),
        "month": grouped(usage.rollup("M", "2026-11")),
    }


def test_roll_hour_sums_by_group(usage: DynamoUsageStore) -> None:
    usage.put_events(EVENTS, KEEP)
    rollup = UsageRollup(usage, clock=lambda: 0.0)
    assert rollup.roll_hour(at(22, 3)) == 2
    assert grouped(usage.rollup("H", "2026-11-22T03")) == summarise([EVENTS[2], EVENTS[3]])
    assert rollup.roll_hour(at(22, 5)) == 0
    assert usage.rollup("H", "2026-11-22T05") == []
    assert usage.rollup("H", "2026-11-22T04") is None


def test_run_after_midnight_rolls_the_last_hours_the_closed_day_and_its_month(usage: DynamoUsageStore) -> None:
    usage.put_events(EVENTS, KEEP)
    rollup = UsageRollup(usage, clock=lambda: at(23, 0, 5).timestamp())
    report = rollup.run()
    assert report.hours == {"2026-11-22T22": 1, "2026-11-22T23": 2}
    assert (report.days, report.months) == (["2026-11-22"], ["2026-11"])
    assert grouped(usage.rollup("H", "2026-11-22T23")) == summarise(EVENTS[5:7])
    hours = usage.hour_rollups("2026-11-22")
    assert list(hours) == [f"{h:02d}" for h in range(24)]  # the day rolled every hour it had not
    day = usage.rollup("D", "2026-11-22")
    assert grouped(day) == merge(t for g in hours.values() for t in g) == summarise(EVENTS[2:])
    k1 = next(t for t in grouped(day) if t.key_id == "k1")
    assert (k1.requests, k1.errors, k1.input, k1.cost, k1.ttft_count) == (4, 1, 400, 0.625, 4)
    # the 21st was never rolled up: the month holds the 22nd only
    assert grouped(usage.rollup("M", "2026-11")) == grouped(day)


def test_a_run_during_the_day_rolls_hours_only(usage: DynamoUsageStore) -> None:
    usage.put_events(EVENTS, KEEP)
    report = UsageRollup(usage, clock=lambda: 0.0).run(at(22, 4, 30))
    assert report.hours == {"2026-11-22T02": 0, "2026-11-22T03": 2}
    assert (report.days, report.months) == ([], [])
    assert usage.rollup("D", "2026-11-22") is None
    assert usage.rollup("M", "2026-11") is None


def test_re_running_gives_identical_rollups(usage: DynamoUsageStore) -> None:
    usage.put_events(EVENTS, KEEP)
    rollup = UsageRollup(usage, clock=lambda: 0.0)
    rollup.run(at(23, 0, 5))
    first = snapshot(usage)
    rollup.run(at(23, 0, 5))
    assert snapshot(usage) == first


def test_a_late_event_is_included_by_the_next_run(usage: DynamoUsageStore) -> None:
    usage.put_events(EVENTS, KEEP)
    rollup = UsageRollup(usage, clock=lambda: 0.0)
    rollup.run(at(23, 0, 5))
    late = event("late", at(22, 23, 30), key="k3", cost=1.0)
    usage.put_events([late], KEEP)  # a long stream's event, written after the run
    report = rollup.run(at(23, 1, 5))
    assert report.hours == {"2026-11-22T23": 3, "2026-11-23T00": 0}
    assert report.days == ["2026-11-22"]
    assert grouped(usage.rollup("H", "2026-11-22T23")) == summarise([*EVENTS[5:7], late])
    assert grouped(usage.rollup("D", "2026-11-22")) == summarise([*EVENTS[2:], late])
    assert grouped(usage.rollup("M", "2026-11")) == summarise([*EVENTS[2:], late])


def test_the_month_is_the_sum_of_its_days(usage: DynamoUsageStore) -> None:
    usage.put_events(EVENTS, KEEP)
    rollup = UsageRollup(usage, clock=lambda: 0.0)
    assert rollup.run(at(22, 0, 5)).days == ["2026-11-21"]
    assert grouped(usage.rollup("M", "2026-11")) == summarise(EVENTS[:2])
    rollup.run(at(23, 0, 5))
    days = [grouped(usage.rollup("D", d)) for d in ("2026-11-21", "2026-11-22")]
    assert grouped(usage.rollup("M", "2026-11")) == merge(days[0] + days[1]) == summarise(EVENTS)
