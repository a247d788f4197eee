"""Contract of the UsageStore, run here on DynamoDB (moto's in-process backend and its server) and on SQLite by
tests/shared/adapters/test_sqlite_usage.py, which reuses these tests with its own `store` and `partition`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest

from shared.adapters.dynamo.usage_store import DynamoUsageStore, event_sk
from shared.domain.usage import Usage, UsageEvent, UsageTotals
from shared.ports import UsageStore

REGION = "us-east-1"
DAY = "2026-11-22"
T = datetime(2026, 11, 22, 10, 15, tzinfo=UTC).timestamp()
KEEP = T + 30 * 86_400


@pytest.fixture
def store(table_names: dict[str, str], dynamo_endpoint: str | None) -> DynamoUsageStore:
    return DynamoUsageStore(table_names["UsageTable"], REGION, dynamo_endpoint)


@pytest.fixture
def partition(table_names: dict[str, str], dynamo_endpoint: str | None) -> Any:
    """The sort keys of one Usage partition as stored (rollup markers included), to check what a call left behind."""
    client: Any = botocore.session.get_session().create_client(
        "dynamodb", region_name=REGION, endpoint_url=dynamo_endpoint
    )

    def keys(pk: str) -> list[str]:
        answer = client.query(
            TableName=table_names["UsageTable"],
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ConsistentRead=True,
        )
        return [item["sk"]["S"] for item in answer["Items"]]

    return keys


def event(request_id: str, at: float = T, **fields: Any) -> UsageEvent:
    base: dict[str, Any] = dict(
        request_id=request_id, at=at, provider="openai", model="openai/gpt-4o", requested="fast",
        connection_id="c1", key_id="k1", combo="fast", client="openai-chat", stream=True, status=200,
        usage=Usage(input=120, output=30, cached=20, cache_creation=4, reasoning=6), estimated=False,
        cost=0.00123, latency_ms=812.5, ttft_ms=95.25, attempts=2, error=None,
    )  # fmt: skip
    base.update(fields)
    return UsageEvent(**base)


def totals(key: str, requests: int = 1, cost: float = 0.25) -> UsageTotals:
    return UsageTotals(
        provider="openai", model="openai/gpt-4o", connection_id="c1", key_id=key, requests=requests, errors=1,
        input=100, output=20, cached=5, cache_creation=1, reasoning=2, cost=cost, estimated=1, latency_ms=300.5,
        ttft_ms=40.25, ttft_count=1,
    )  # fmt: skip


# --- requests ----------------------------------------------------------------------------------------------
def test_events_round_trip_every_field(store: UsageStore) -> None:
    full = event("r1")
    bare = event("r2", at=T + 1, connection_id=None, key_id=None, combo=None, ttft_ms=None, status=502, error="boom")
    store.put_events([full, bare], KEEP)
    assert store.events(DAY) == [full, bare]


def test_events_by_hour_prefix(store: UsageStore) -> None:
    store.put_events([event("a", T - 3600), event("b", T), event("c", T + 60), event("d", T + 3600)], KEEP)
    assert [e.request_id for e in store.events(DAY, "2026-11-22T10")] == ["b", "c"]
    assert [e.request_id for e in store.events(DAY, "2026-11-22T09")] == ["a"]
    assert [e.request_id for e in store.events(DAY)] == ["a", "b", "c", "d"]
    assert store.events("2026-11-23") == []


def test_an_event_is_stored_in_its_utc_day(store: UsageStore) -> None:
    late = datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC).timestamp()
    store.put_events([event("late", late), event("next", late + 1)], KEEP)
    assert [e.request_id for e in store.events(DAY)] == ["late"]
    assert [e.request_id for e in store.events("2026-11-23")] == ["next"]


def test_the_same_request_written_twice_is_one_item(store: UsageStore, partition: Any) -> None:
    store.put_events([event("r1")], KEEP)
    store.put_events([event("r1")], KEEP)
    assert partition(f"REQ#{DAY}") == [event_sk(T, "r1")]
    assert len(store.events(DAY)) == 1


def test_more_events_than_one_batch_are_all_written(store: UsageStore) -> None:
    store.put_events([event(f"r{i:02d}", T + i) for i in range(60)], KEEP)
    assert [e.request_id for e in store.events(DAY)] == [f"r{i:02d}" for i in range(60)]


def test_recent_events_newest_first_across_pages(store: UsageStore) -> None:
    store.put_events([event(f"r{i}", T + i) for i in range(5)], KEEP)
    page1, cursor1 = store.recent_events(DAY, 2)
    assert [e.request_id for e in page1] == ["r4", "r3"]
    assert cursor1 == event_sk(T + 3, "r3")
    page2, cursor2 = store.recent_events(DAY, 2, before=cursor1)
    assert [e.request_id for e in page2] == ["r2", "r1"]
    page3, cursor3 = store.recent_events(DAY, 2, before=cursor2)
    assert ([e.request_id for e in page3], cursor3) == (["r0"], None)


def test_recent_events_of_an_empty_day(store: UsageStore) -> None:
    assert store.recent_events(DAY, 10) == ([], None)


# --- rollups -----------------------------------------------------------------------------------------------
def test_rollup_is_none_before_it_was_rolled(store: UsageStore) -> None:
    assert store.rollup("D", DAY) is None
    store.put_rollup("D", DAY, [], None)
    assert store.rollup("D", DAY) == []


def test_put_rollup_round_trips_and_replaces(store: UsageStore, partition: Any) -> None:
    store.put_rollup("D", DAY, [totals("k1"), totals("k2", 3)], None)
    assert sorted(store.rollup("D", DAY) or [], key=lambda t: t.key_id) == [totals("k1"), totals("k2", 3)]
    assert len(partition(f"ROLL#D#{DAY}")) == 3  # two groups and the marker
    store.put_rollup("D", DAY, [totals("k2", 4)], None)
    assert store.rollup("D", DAY) == [totals("k2", 4)]
    assert len(partition(f"ROLL#D#{DAY}")) == 2  # the group gone was deleted


def test_re_running_a_rollup_leaves_the_same_items(store: UsageStore, partition: Any) -> None:
    groups = [totals("k1"), totals("k2", 2, 0.5)]
    store.put_rollup("M", "2026-11", groups, None)
    first, keys = store.rollup("M", "2026-11"), partition("ROLL#M#2026-11")
    store.put_rollup("M", "2026-11", groups, None)
    assert store.rollup("M", "2026-11") == first
    assert partition("ROLL#M#2026-11") == keys


def by_key(groups: list[UsageTotals] | None) -> list[UsageTotals]:
    return sorted(groups or [], key=lambda t: t.key_id)


def test_hour_rollups_share_their_day_and_list_only_rolled_hours(store: UsageStore, partition: Any) -> None:
    store.put_rollup("H", f"{DAY}T03", [totals("k1")], KEEP)
    store.put_rollup("H", f"{DAY}T05", [], KEEP)
    store.put_rollup("H", f"{DAY}T10", [totals("k1", 2), totals("k2")], KEEP)
    hours = store.hour_rollups(DAY)
    assert list(hours) == ["03", "05", "10"]
    assert (hours["03"], hours["05"], by_key(hours["10"])) == ([totals("k1")], [], [totals("k1", 2), totals("k2")])
    assert by_key(store.rollup("H", f"{DAY}T10")) == [totals("k1", 2), totals("k2")]
    assert store.rollup("H", f"{DAY}T04") is None
    assert len(partition(f"ROLL#H#{DAY}")) == 6  # three markers and three groups, all in the day's partition
    assert store.hour_rollups("2026-11-23") == {}
    # replacing one hour leaves its neighbours alone
    store.put_rollup("H", f"{DAY}T10", [], KEEP)
    assert store.hour_rollups(DAY) == {"03": [totals("k1")], "05": [], "10": []}


# --- request logs ------------------------------------------------------------------------------------------
def test_request_logs_newest_first_and_expired_ones_hidden(store: UsageStore) -> None:
    live = time.time() + 3600
    store.put_log(T, "r1", {"path": "/v1/chat/completions", "request": {"n": [1, None]}}, live)
    store.put_log(T + 1, "r2", {"path": "/v1/messages"}, live)
    store.put_log(T + 2, "r3", {"path": "/v1/gone"}, time.time() - 1)
    entries, cursor = store.logs(DAY, 10)
    assert entries == [{"path": "/v1/messages"}, {"path": "/v1/chat/completions", "request": {"n": [1, None]}}]
    assert cursor is None
    assert store.logs("2026-11-23", 10) == ([], None)


def test_request_logs_page(store: UsageStore) -> None:
    live = time.time() + 3600
    for i in range(3):
        store.put_log(T + i, f"r{i}", {"i": i}, live)
    first, cursor = store.logs(DAY, 2)
    assert (first, cursor) == ([{"i": 2}, {"i": 1}], event_sk(T + 1, "r1"))
    assert store.logs(DAY, 2, before=cursor) == ([{"i": 0}], None)
