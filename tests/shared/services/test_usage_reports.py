"""Usage reports (shared/services/usage_reports.py) over a Usage table built from template.yaml: analytics
from rollups and raw events alike, days in other time zones, history pages across days."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.adapters.dynamo.usage_store import DynamoUsageStore
from shared.domain.config import ApiKey, ConfigSnapshot
from shared.domain.usage import Usage, UsageEvent
from shared.errors import InvalidRequest
from shared.services.rollup import UsageRollup
from shared.services.usage_reports import UsageReports

REGION = "us-east-1"
KEEP = 4_000_000_000.0
NOW = datetime(2026, 11, 22, 12, 30, tzinfo=UTC).timestamp()


def event(request_id: str, when: datetime, provider: str = "openai", key: str = "k1") -> UsageEvent:
    return UsageEvent(
        request_id=request_id, at=when.timestamp(), provider=provider, model=f"{provider}/m", requested="m",
        connection_id="c1", key_id=key, combo=None, client="openai", stream=False, status=200,
        usage=Usage(input=100, output=10), estimated=False, cost=0.5, latency_ms=100.0, ttft_ms=50.0,
    )  # fmt: skip


SNAPSHOT = ConfigSnapshot.build(api_keys=[ApiKey("k1", "laptop", "h", "d", "2026-11-01", True)])
# 21 Nov 14:30 UTC is 21 Nov in UTC and 21 Nov 23:30 in Tokyo; 21 Nov 15:30 UTC is already 22 Nov in Tokyo.
EVENTS = [
    event("a", datetime(2026, 11, 21, 14, 30, tzinfo=UTC)),
    event("b", datetime(2026, 11, 21, 15, 30, tzinfo=UTC), provider="anthropic"),
    event("c", datetime(2026, 11, 22, 9, 0, tzinfo=UTC)),
    event("d", datetime(2026, 11, 22, 12, 10, tzinfo=UTC), key="k2"),  # the current hour: never rolled up
]


def by(report: dict, *names: str) -> dict[tuple[str, ...], int]:  # type: ignore[type-arg]
    return {tuple(g[n] for n in names): g["requests"] for g in report["groups"]}


def test_analytics_add_up_raw_events_and_rollups_alike(usage: DynamoUsageStore) -> None:
    usage.put_events(EVENTS, KEEP)
    reports = UsageReports(usage, None, clock=lambda: NOW)
    raw = reports.analytics(SNAPSHOT, "2026-11-21", "2026-11-22", ["provider", "day"])
    UsageRollup(usage, lambda: NOW).run(datetime.fromtimestamp(NOW, UTC), hours_back=30)  # 21 Nov closes
    assert usage.rollup("D", "2026-11-21") is not None and usage.rollup("D", "2026-11-22") is None
    rolled = reports.analytics(SNAPSHOT, "2026-11-21", "2026-11-22", ["provider", "day"])
    assert raw == rolled
    assert by(rolled, "provider", "day") == {
        ("anthropic", "2026-11-21"): 1, ("openai", "2026-11-21"): 1, ("openai", "2026-11-22"): 2,
    }  # fmt: skip
    assert rolled["totals"]["requests"] == 4 and rolled["totals"]["costUsd"] == 2.0
    assert rolled["totals"]["inputTokens"] == 400 and rolled["totals"]["latencyMsAvg"] == 100.0


def test_days_in_another_time_zone_regroup_hours(usage: DynamoUsageStore) -> None:
    usage.put_events(EVENTS, KEEP)
    reports = UsageReports(usage, None, clock=lambda: NOW)
    tokyo = reports.analytics(SNAPSHOT, "2026-11-21", "2026-11-22", ["day"], tz="Asia/Tokyo")
    assert by(tokyo, "day") == {("2026-11-21",): 1, ("2026-11-22",): 3}
    utc = reports.analytics(SNAPSHOT, "2026-11-21", "2026-11-22", ["day"])
    assert by(utc, "day") == {("2026-11-21",): 2, ("2026-11-22",): 2}


def test_key_groups_carry_the_key_name(usage: DynamoUsageStore) -> None:
    usage.put_events(EVENTS, KEEP)
    report = UsageReports(usage, None, clock=lambda: NOW).analytics(SNAPSHOT, "2026-11-21", "2026-11-22", ["key"])
    assert [(g["keyId"], g["keyName"], g["requests"]) for g in report["groups"]] == [
        ("k1", "laptop", 3), ("k2", None, 1),
    ]  # fmt: skip


def test_history_pages_walk_back_across_days(usage: DynamoUsageStore) -> None:
    usage.put_events(EVENTS, KEEP)
    reports = UsageReports(usage, None, clock=lambda: NOW)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = reports.history(1, cursor)
        seen += [item["requestId"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == ["d", "c", "b", "a"]


@pytest.mark.parametrize(
    ("start", "end", "groups", "tz", "param"),
    [
        ("2026-11-22", "2026-11-21", ["day"], "UTC", "from"),
        ("2026-01-01", "2026-11-22", ["day"], "UTC", "from"),  # more than 92 days
        ("2026-11-2x", None, ["day"], "UTC", "from"),
        (None, None, ["week"], "UTC", "groupBy"),
        (None, None, ["day"], "Mars/Olympus", "tz"),
    ],
)
def test_bad_queries_name_the_parameter(
    usage: DynamoUsageStore, start: str | None, end: str | None, groups: list[str], tz: str, param: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        UsageReports(usage, None, clock=lambda: NOW).analytics(SNAPSHOT, start, end, groups, tz)
    assert caught.value.param == param
