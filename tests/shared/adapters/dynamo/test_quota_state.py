"""Quota windows in the State table (DynamoRoutingStore.put_quota / add_quota_use / load): the contract on
both moto backends, and the counts under contention on moto's server (DESIGN §7)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from shared.adapters.dynamo.routing_state import DynamoRoutingStore
from shared.domain.quota import AccountQuota, LiveWindow, QuotaCount

REGION = "us-east-1"
T = 1_800_000_000.0
EXPIRES = T + 86_400
R = TypeVar("R")


@pytest.fixture
def store(table_names: dict[str, str], dynamo_endpoint: str | None) -> DynamoRoutingStore:
    return DynamoRoutingStore(table_names["StateTable"], REGION, dynamo_endpoint)


def reading(updated_at: float, used_percent: float) -> AccountQuota:
    return AccountQuota(
        "c1",
        (
            LiveWindow("5h", "headers", used_percent=used_percent, resets_at=T + 3600.5),
            LiveWindow(
                "premium",
                "poll",
                used_percent=12.5,
                used=30,
                limit=300,
                remaining=270,
                unit="requests",
                resets_at=T + 86_400,
                limited=True,
            ),
            LiveWindow("weekly", "counter"),
        ),
        updated_at,
    )


# --- live windows ------------------------------------------------------------------------------------------
def test_put_quota_round_trips_through_load(store: DynamoRoutingStore) -> None:
    quota = reading(T, 40.0)
    store.put_quota(quota)
    assert store.load(T).quotas == {"c1": quota}


def test_an_older_reading_does_not_replace_a_newer_one(store: DynamoRoutingStore) -> None:
    store.put_quota(reading(T, 40.0))
    store.put_quota(reading(T - 1, 99.0))
    assert store.load(T).quotas["c1"] == reading(T, 40.0)
    store.put_quota(reading(T, 41.0))  # the same instant: the later write wins
    assert store.load(T).quotas["c1"] == reading(T, 41.0)
    store.put_quota(reading(T + 5, 50.0))
    assert store.load(T).quotas["c1"] == reading(T + 5, 50.0)


# --- counted windows ---------------------------------------------------------------------------------------
def test_add_quota_use_starts_then_adds_within_the_window(store: DynamoRoutingStore) -> None:
    assert store.add_quota_use("c1", "daily", T, T, 100, EXPIRES) == (T, 100, 1)
    assert store.add_quota_use("c1", "daily", T + 50, T, 25, EXPIRES) == (T, 125, 2)
    assert store.load(T + 60).quota_counts == {("c1", "daily"): QuotaCount(T, 125, 2)}


def test_add_quota_use_restarts_a_window_older_than_live_since(store: DynamoRoutingStore) -> None:
    store.add_quota_use("c1", "rolling", T, T, 100, EXPIRES)
    store.add_quota_use("c1", "rolling", T + 10, T, 100, EXPIRES)
    restarted = T + 5 * 3600
    assert store.add_quota_use("c1", "rolling", restarted, T + 1, 7, EXPIRES + 5 * 3600) == (restarted, 7, 1)
    assert store.add_quota_use("c1", "rolling", restarted + 9, T + 1, 3, EXPIRES) == (restarted, 10, 2)
    assert store.load(restarted).quota_counts[("c1", "rolling")] == QuotaCount(restarted, 10, 2)


def test_windows_and_accounts_count_apart(store: DynamoRoutingStore) -> None:
    store.add_quota_use("c1", "daily", T, T, 1, EXPIRES)
    store.add_quota_use("c1", "weekly", T, T, 2, EXPIRES)
    store.add_quota_use("c#2", "daily", T, T, 3, EXPIRES)
    assert store.load(T).quota_counts == {
        ("c1", "daily"): QuotaCount(T, 1, 1),
        ("c1", "weekly"): QuotaCount(T, 2, 1),
        ("c#2", "daily"): QuotaCount(T, 3, 1),
    }


def test_an_expired_count_is_not_loaded(store: DynamoRoutingStore) -> None:
    store.add_quota_use("c1", "daily", T, T, 1, T + 100)
    assert ("c1", "daily") in store.load(T + 99).quota_counts
    assert store.load(T + 100).quota_counts == {}


# --- under contention --------------------------------------------------------------------------------------
def all_at_once(n: int, call: Callable[[int], R]) -> list[R]:
    """Run `call(i)` for i in range(n) on n threads released together."""
    gate = threading.Barrier(n)

    def run(i: int) -> R:
        gate.wait()
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


@pytest.fixture
def shared_store(state_table: str, moto_endpoint: str, atomic_moto_writes: None) -> DynamoRoutingStore:
    return DynamoRoutingStore(state_table, REGION, moto_endpoint)


def test_concurrent_uses_in_one_window_count_exactly(shared_store: DynamoRoutingStore) -> None:
    def use(_: int) -> tuple[float, int, int]:
        return shared_store.add_quota_use("c1", "daily", T, T, 10, EXPIRES)

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(use, range(100)))
    assert sorted(requests for _, _, requests in answers) == list(range(1, 101))
    assert {start for start, _, _ in answers} == {T}
    assert shared_store.load(T).quota_counts[("c1", "daily")] == QuotaCount(T, 1000, 100)


def test_concurrent_first_uses_start_the_window_once(shared_store: DynamoRoutingStore) -> None:
    answers = all_at_once(20, lambda i: shared_store.add_quota_use("c1", "daily", T, T, 5, EXPIRES))
    assert sorted(requests for _, _, requests in answers) == list(range(1, 21))
    assert shared_store.load(T).quota_counts[("c1", "daily")] == QuotaCount(T, 100, 20)


def test_a_restart_race_restarts_once_and_counts_every_use(shared_store: DynamoRoutingStore) -> None:
    old = T - 2 * 86_400
    for _ in range(3):
        shared_store.add_quota_use("c1", "daily", old, old, 1000, EXPIRES)
    # 20 instances see the old window at once, all with the same new period start
    answers = all_at_once(20, lambda i: shared_store.add_quota_use("c1", "daily", T + i, T, 5, EXPIRES))
    restarts = [a for a in answers if a[2] == 1]
    assert len(restarts) == 1
    winner = restarts[0][0]
    assert {start for start, _, _ in answers} == {winner}
    assert sorted(requests for _, _, requests in answers) == list(range(1, 21))
    assert shared_store.load(T + 30).quota_counts[("c1", "daily")] == QuotaCount(winner, 100, 20)
