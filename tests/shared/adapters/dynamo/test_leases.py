"""Contract of the LeaseStore on the State table (both local backends; the contention test on moto's server,
DESIGN §7): one holder at a time, a lapsed lease taken over even while TTL has not deleted it, release only
by the holder."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.adapters.dynamo.leases import LEASE, DynamoLeaseStore
from shared.adapters.dynamo.routing_state import DynamoRoutingStore, StateItems

REGION = "us-east-1"
NOW = 1_795_000_000.0
NAME = "REFRESH#conn_a"


@pytest.fixture
def items(table_names: dict[str, str], dynamo_endpoint: str | None) -> StateItems:
    return DynamoRoutingStore(table_names["StateTable"], REGION, dynamo_endpoint).items


@pytest.fixture
def leases(items: StateItems) -> DynamoLeaseStore:
    return DynamoLeaseStore(items)


def test_a_free_lease_is_taken_and_stored_with_its_expiry(leases: DynamoLeaseStore, items: StateItems) -> None:
    assert leases.acquire(NAME, "a", NOW, 120)
    assert items.get(LEASE, NAME, consistent=True) == {
        "pk": "LEASE", "sk": NAME, "owner": "a", "until": NOW + 120, "expires_at": int(NOW + 120)
    }  # fmt: skip


def test_a_held_lease_is_refused_to_others_and_to_a_second_call_of_its_holder(leases: DynamoLeaseStore) -> None:
    assert leases.acquire(NAME, "a", NOW, 120)
    assert not leases.acquire(NAME, "b", NOW + 60, 120)
    assert not leases.acquire(NAME, "a", NOW + 60, 120)
    assert not leases.acquire(NAME, "b", NOW + 120, 120)  # `until` itself is still held
    assert leases.acquire("REFRESH#conn_b", "b", NOW + 60, 120)  # other names are independent


def test_a_lapsed_lease_is_taken_over_though_ttl_has_not_deleted_it(
    leases: DynamoLeaseStore, items: StateItems
) -> None:
    assert leases.acquire(NAME, "a", NOW, 120)
    assert leases.acquire(NAME, "b", NOW + 120.5, 120)
    assert items.get(LEASE, NAME, consistent=True)["owner"] == "b"  # type: ignore[index]


def test_only_the_holder_releases(leases: DynamoLeaseStore, items: StateItems) -> None:
    assert leases.acquire(NAME, "a", NOW, 120)
    assert not leases.release(NAME, "b")
    assert not leases.acquire(NAME, "b", NOW + 1, 120)
    assert leases.release(NAME, "a")
    assert items.get(LEASE, NAME, consistent=True) is None
    assert leases.acquire(NAME, "b", NOW + 1, 120)
    assert not leases.release(NAME, "a")  # a holder whose lease lapsed and was taken over releases nothing


def test_releasing_a_lease_nobody_holds_is_a_no(leases: DynamoLeaseStore) -> None:
    assert not leases.release(NAME, "a")


def test_many_contenders_at_once_get_one_holder(state_table: str, moto_endpoint: str, atomic_moto_writes: None) -> None:
    """16 threads, each with its own client (as separate instances), race for one lease on moto's server."""

    def contend(i: int) -> bool:
        store = DynamoLeaseStore(DynamoRoutingStore(state_table, REGION, moto_endpoint).items)
        return store.acquire(NAME, f"owner-{i}", NOW, 120)

    with ThreadPoolExecutor(max_workers=16) as pool:
        won = list(pool.map(contend, range(16)))
    assert won.count(True) == 1
