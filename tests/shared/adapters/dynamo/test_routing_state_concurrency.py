"""RoutingStore under contention: threads and separate processes (each with its own client, as separate
Lambda instances would be) against moto's server, over HTTP (DESIGN §7)."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from shared.adapters.dynamo.routing_state import DynamoRoutingStore
from shared.domain.routing import BreakerPhase, Policy, RateLimit

REGION = "us-east-1"
T = 1_800_000_010.0
R = TypeVar("R")
SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture(autouse=True)
def _atomic(atomic_moto_writes: None) -> None:
    """Every test here judges our conditions, not moto's races (see `atomic_moto_writes`)."""


@pytest.fixture
def store(state_table: str, moto_endpoint: str) -> DynamoRoutingStore:
    return DynamoRoutingStore(state_table, REGION, moto_endpoint)


def all_at_once(n: int, call: Callable[[int], R], before: Callable[[], None] | None = None) -> list[R]:
    """Run `call(i)` for i in range(n) on n threads released together (after `before`, if given)."""
    gate = threading.Barrier(n + 1)

    def run(i: int) -> R:
        gate.wait()
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(run, i) for i in range(n)]
        if before is not None:
            before()
        gate.wait()
        return [f.result() for f in futures]


# Process workers: module level, so the spawn context can import them; each builds its own client.
def _probe_worker(endpoint: str, table: str, ready: Any, results: Any) -> None:
    store = DynamoRoutingStore(table, REGION, endpoint)
    ready.wait()
    results.put(store.try_probe("groq", f"process-{multiprocessing.current_process().pid}", T + 30, 5.0))


def _acquire_worker(endpoint: str, table: str, ready: Any, results: Any) -> None:
    store = DynamoRoutingStore(table, REGION, endpoint)
    limit = RateLimit(rpm=25)
    gate = threading.Barrier(10)

    def one(i: int) -> bool:
        gate.wait()
        return store.acquire("acct", T, limit, uuid.uuid4().hex, 60).admitted

    ready.wait()
    with ThreadPoolExecutor(10) as pool:
        results.put(sum(pool.map(one, range(10))))


@pytest.fixture
def processes() -> Iterator[Callable[..., tuple[Any, Any]]]:
    """Starts `count` spawned processes running `target(endpoint, table, ready, results)`; `ready` is a
    barrier for them plus the test. Joined (and killed if stuck) at teardown."""
    started: list[Any] = []

    def start(count: int, target: Callable[..., None], *args: Any) -> tuple[Any, Any]:
        ready, results = SPAWN.Barrier(count + 1), SPAWN.Queue()
        for _ in range(count):
            process = SPAWN.Process(target=target, args=(*args, ready, results), daemon=True)
            process.start()
            started.append(process)
        return ready, results

    yield start
    for process in started:
        process.join(30)
        if process.is_alive():
            process.kill()
        assert process.exitcode == 0


def test_one_transition_from_16_threads_recording_failures(store: DynamoRoutingStore) -> None:
    states = all_at_once(16, lambda _: [store.record_failure("groq", T, 10, 30.0) for _ in range(50)])
    final = store.load(T).breakers["groq"]
    assert (final.phase, final.version, final.failures) == (BreakerPhase.OPEN, 1, 0)
    assert max(s.version for thread in states for s in thread) == 1


def test_one_probe_among_threads_and_processes(
    store: DynamoRoutingStore, state_table: str, moto_endpoint: str, processes: Callable[..., tuple[Any, Any]]
) -> None:
    store.record_failure("groq", T, 1, 30.0)
    ready, results = processes(8, _probe_worker, moto_endpoint, state_table)
    from_threads = all_at_once(
        32, lambda i: store.try_probe("groq", f"thread-{i}", T + 30, 5.0), before=lambda: ready.wait(60)
    )
    from_processes = [results.get(timeout=60) for _ in range(8)]
    assert sum(from_threads) + sum(from_processes) == 1
    assert store.load(T + 30).breakers["groq"].phase is BreakerPhase.HALF_OPEN


def test_rpm_admits_exactly_the_limit_across_processes(
    state_table: str, moto_endpoint: str, processes: Callable[..., tuple[Any, Any]]
) -> None:
    ready, results = processes(8, _acquire_worker, moto_endpoint, state_table)
    ready.wait(60)
    assert sum(results.get(timeout=60) for _ in range(8)) == 25


def test_never_more_than_max_concurrent_holders(store: DynamoRoutingStore) -> None:
    limit = RateLimit(max_concurrent=3)
    lock = threading.Lock()
    holding, most, admitted, released, refused = 0, 0, 0, 0, 0

    def worker(i: int) -> None:
        nonlocal holding, most, admitted, released, refused
        for attempt in range(12):
            slot = f"{i}-{attempt}"
            if not store.acquire("acct", time.time(), limit, slot, 60).admitted:
                with lock:
                    refused += 1
                time.sleep(0.005)
                continue
            with lock:  # counted after the store admitted and before it is released: never above the truth
                admitted += 1
                holding += 1
                most = max(most, holding)
            time.sleep(0.01)
            with lock:
                holding -= 1
                released += 1
            store.release("acct", slot)

    all_at_once(12, worker)
    assert 1 <= most <= 3 and refused > 0
    assert admitted == released >= 3
    assert store.acquire("acct", time.time(), RateLimit(max_concurrent=3), "after", 60).admitted  # all given back


def test_cursor_values_are_unique_and_contiguous(store: DynamoRoutingStore) -> None:
    with ThreadPoolExecutor(32) as pool:
        values = list(pool.map(lambda _: store.advance_cursor("combo", 1), range(200)))
    assert sorted(values) == list(range(1, 201))


def test_twenty_concurrent_429s_raise_the_level_once(store: DynamoRoutingStore) -> None:
    policy = Policy(cooldown_base=2.0, max_steps=5, breaker_threshold=5, breaker_reset=30.0)
    store.mark_cooldown("acct", None, T, policy, None, "rate_limited")  # level 1, until T+2
    marks = all_at_once(20, lambda i: store.mark_cooldown("acct", None, T + 3, policy, None, f"429 #{i}"))
    assert {(m.until, m.level) for m in marks} == {(T + 7, 2)}
    assert len({m.reason for m in marks}) == 1
    assert store.load(T + 3).cooldowns[("acct", None)].level == 2


def test_no_use_is_lost(store: DynamoRoutingStore) -> None:
    members = ("a", "b", "c")
    all_at_once(16, lambda i: [store.add_uses("combo", members[(i + j) % 3], T) for j in range(24)])
    assert store.load(T).uses == {"combo": {"a": 128, "b": 128, "c": 128}}


def test_exactly_one_idempotency_owner(store: DynamoRoutingStore) -> None:
    claims = all_at_once(20, lambda _: store.claim("key:abc", f"r{_}", T, 5))
    assert sum(c.owned for c in claims) == 1
