"""Contract of the DynamoDB SpendStore (budget counters in the State table), and its ADD under contention
on moto's server (DESIGN §7)."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import botocore.session
import pytest

from shared.adapters.dynamo.routing_state import DynamoRoutingStore
from shared.adapters.dynamo.spend import SPEND_MEMORY, DynamoSpendStore

REGION = "us-east-1"
DAY_END = 1_795_392_000.0  # 2026-11-23T00:00Z
MONTH_END = 1_796_083_200.0  # 2026-12-01T00:00Z
PERIODS = [("daily:2026-11-22", DAY_END), ("monthly:2026-11", MONTH_END)]


@pytest.fixture
def spend(table_names: dict[str, str], dynamo_endpoint: str | None) -> DynamoSpendStore:
    return DynamoSpendStore(DynamoRoutingStore(table_names["StateTable"], REGION, dynamo_endpoint).items)


def test_add_spend_returns_the_totals_per_period(spend: DynamoSpendStore) -> None:
    assert spend.add_spend("k1", PERIODS, 0.25) == {"daily:2026-11-22": 0.25, "monthly:2026-11": 0.25}
    assert spend.add_spend("k1", PERIODS[1:], 0.5) == {"monthly:2026-11": 0.75}
    assert spend.add_spend("k1", PERIODS, 0.125) == {"daily:2026-11-22": 0.375, "monthly:2026-11": 0.875}


def test_spend_reads_only_the_periods_asked_for(spend: DynamoSpendStore) -> None:
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


def test_counters_expire_a_week_after_their_period(
    spend: DynamoSpendStore, table_names: dict[str, str], dynamo_endpoint: str | None
) -> None:
    spend.add_spend("k1", [("daily:2026-11-22", DAY_END + 0.5)], 1.0)
    spend.add_spend("k1", [("daily:2026-11-22", DAY_END + 999)], 1.0)  # the first expiry stays
    client: Any = botocore.session.get_session().create_client(
        "dynamodb", region_name=REGION, endpoint_url=dynamo_endpoint
    )
    item = client.get_item(
        TableName=table_names["StateTable"],
        Key={"pk": {"S": "BUDGET#k1"}, "sk": {"S": "daily:2026-11-22"}},
        ConsistentRead=True,
    )["Item"]
    assert int(item["expires_at"]["N"]) == math.ceil(DAY_END + 0.5 + SPEND_MEMORY)
    assert (item["requests"]["N"], float(item["usd"]["N"])) == ("2", 2.0)


def test_concurrent_adds_lose_no_update(state_table: str, moto_endpoint: str, atomic_moto_writes: None) -> None:
    store = DynamoSpendStore(DynamoRoutingStore(state_table, REGION, moto_endpoint).items)

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
    raw: Any = DynamoRoutingStore(state_table, REGION, moto_endpoint).items.get("BUDGET#k1", "monthly:2026-11", True)
    assert raw is not None and raw["requests"] == 200
