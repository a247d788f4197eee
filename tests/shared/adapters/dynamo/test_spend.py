"""Contract of the SpendStore (budget counters), run here on DynamoDB (the State table; the contention test on
moto's server, DESIGN §7) and on SQLite by tests/shared/adapters/test_sqlite_usage.py, which reuses these tests
with its own `spend`, `counter` and `contended`."""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import botocore.session
import pytest

from shared.adapters.dynamo.routing_state import DynamoRoutingStore
from shared.adapters.dynamo.spend import SPEND_MEMORY, DynamoSpendStore
from shared.ports import SpendStore

REGION = "us-east-1"
DAY_END = 1_795_392_000.0  # 2026-11-23T00:00Z
MONTH_END = 1_796_083_200.0  # 2026-12-01T00:00Z
PERIODS = [("daily:2026-11-22", DAY_END), ("monthly:2026-11", MONTH_END)]

Counter = Callable[[str, str], tuple[int, int, float]]  # (key id, period id) → (expires_at, requests, usd) as stored


@pytest.fixture
def spend(table_names: dict[str, str], dynamo_endpoint: str | None) -> SpendStore:
    return DynamoSpendStore(DynamoRoutingStore(table_names["StateTable"], REGION, dynamo_endpoint).items)


@pytest.fixture
def counter(table_names: dict[str, str], dynamo_endpoint: str | None) -> Counter:
    client: Any = botocore.session.get_session().create_client(
        "dynamodb", region_name=REGION, endpoint_url=dynamo_endpoint
    )

    def read(key_id: str, period_id: str) -> tuple[int, int, float]:
        item = client.get_item(
            TableName=table_names["StateTable"],
            Key={"pk": {"S": f"BUDGET#{key_id}"}, "sk": {"S": period_id}},
            ConsistentRead=True,
        )["Item"]
        return int(item["expires_at"]["N"]), int(item["requests"]["N"]), float(item["usd"]["N"])

    return read


@pytest.fixture
def contended(state_table: str, moto_endpoint: str, atomic_moto_writes: None) -> tuple[SpendStore, Counter]:
    """A store and its counters where concurrent writes really race: moto's server (DESIGN §7)."""
    items = DynamoRoutingStore(state_table, REGION, moto_endpoint).items

    def read(key_id: str, period_id: str) -> tuple[int, int, float]:
        raw: Any = items.get(f"BUDGET#{key_id}", period_id, True)
        return int(raw["expires_at"]), int(raw["requests"]), float(raw["usd"])

    return DynamoSpendStore(items), read


def test_add_spend_returns_the_totals_per_period(spend: SpendStore) -> None:
    assert spend.add_spend("k1", PERIODS, 0.25) == {"daily:2026-11-22": 0.25, "monthly:2026-11": 0.25}
    assert spend.add_spend("k1", PERIODS[1:], 0.5) == {"monthly:2026-11": 0.75}
    assert spend.add_spend("k1", PERIODS, 0.125) == {"daily:2026-11-22": 0.375, "monthly:2026-11": 0.875}


def test_spend_reads_only_the_periods_asked_for(spend: SpendStore) -> None:
    spend.add_spend("k1", PERIODS, 1.5)
    spend.add_spend("k1", [("daily:2026-11-21", DAY_END - 86_400)], 9.0)
    spend.add_spend("k2", PERIODS, 4.0)
    assert spend.spend("k1", ["daily:2026-11-22"]) == {"daily:2026-11-22": 1.5}
    assert spend.spend("k1", ["daily:2026-11-22", "monthly:2026-11", "weekly:2026-11-16"]) == {
        "daily:2026-11-22": 1.5,
        "monthly:2026-11": 1.5,
    }
    assert spend.spend("k1", []) == {}
    assert spend.spend("k3", ["daily:2026-11-22"]) == {}


def test_counters_expire_a_week_after_their_period(spend: SpendStore, counter: Counter) -> None:
    spend.add_spend("k1", [("daily:2026-11-22", DAY_END + 0.5)], 1.0)
    spend.add_spend("k1", [("daily:2026-11-22", DAY_END + 999)], 1.0)  # the first expiry stays
    assert counter("k1", "daily:2026-11-22") == (math.ceil(DAY_END + 0.5 + SPEND_MEMORY), 2, 2.0)


def test_concurrent_adds_lose_no_update(contended: tuple[SpendStore, Counter]) -> None:
    store, counter = contended

    def add(_: int) -> dict[str, float]:
        return store.add_spend("k1", PERIODS, 0.001)

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(add, range(200)))
    totals = store.spend("k1", [p for p, _ in PERIODS])
    assert abs(totals["daily:2026-11-22"] - 0.2) < 1e-9
    assert abs(totals["monthly:2026-11"] - 0.2) < 1e-9
    # every caller saw a distinct running total: the adds were serialised, none lost
    seen = sorted(round(a["daily:2026-11-22"] * 1000) for a in answers)
    assert seen == list(range(1, 201))
    assert counter("k1", "monthly:2026-11")[1] == 200
