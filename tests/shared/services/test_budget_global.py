"""A budget must hold for all gateway instances together: several processes, each a full accountant (its
own spend and usage store clients, as separate Lambda instances have), spending one API key's budget on one
State table and one Usage table on moto's server.

Each instance checks the budget before its (simulated) upstream call and adds the cost after it, like the
gateway does. A request already past the check is never stopped, so the budget may be overshot, but by at
most one in-flight request per instance; and spending never stops before the limit is reached.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from shared.adapters.dynamo.routing_state import DynamoRoutingStore
from shared.adapters.dynamo.spend import DynamoSpendStore
from shared.adapters.dynamo.usage_store import DynamoUsageStore, day_of
from shared.domain.budgets import current_periods, parse_budget
from tests.shared.services.processes import run_together

REGION = "us-east-1"
WORKERS = 4
LIMIT = 2.0  # USD a day
COST = 0.0625  # USD a request: exact in binary, so sums are exact and `>= LIMIT` means what it says
KEY = {"id": "k-global", "limit": LIMIT}


@pytest.fixture(autouse=True)
def _atomic(atomic_moto_writes: None) -> None:
    """DynamoDB's per-item atomicity, which moto's server lacks (see the fixture)."""


@pytest.fixture
def usage_table(state_table: str) -> str:
    """The Usage table the `state_table` fixture builds alongside its State table (from template.yaml)."""
    return f"Usage-{state_table}"


def _key(budget: dict[str, Any]) -> Any:
    from shared.domain.config import ApiKey

    return ApiKey(KEY["id"], "global", "hash", "sk-...", "2026-11-22T00:00:00Z", True, budget=parse_budget(budget))


def _worker(endpoint: str, state: str, usage: str, job: dict[str, Any], ready: Any, results: Any) -> None:
    """One gateway instance: builds its accountant, waits for the others, spends until refused, reports."""
    import uuid

    from shared.domain.usage import Usage, UsageEvent
    from shared.errors import RateLimited
    from shared.services.accounting import Accountant
    from shared.services.routing_state import RoutingState

    fixed = job["clock"]  # one instant for all: the day (the budget's period) cannot roll over mid-test
    key = _key({"dailyLimitUsd": job["limit"]})

    async def run() -> dict[str, Any]:
        store = DynamoRoutingStore(state, REGION, endpoint)
        accountant = Accountant(
            DynamoUsageStore(usage, REGION, endpoint),
            DynamoSpendStore(store.items),
            RoutingState(store, refresh=0.3, instance_id=uuid.uuid4().hex[:8], clock=lambda: fixed),
            store,
            clock=lambda: fixed,
        )
        requests, refused, errors = 0, None, []
        await asyncio.get_running_loop().run_in_executor(None, ready.wait)
        for _ in range(job["max_requests"]):
            try:
                await accountant.check_budget(key)
            except RateLimited as exc:
                refused = exc.code
                break
            await asyncio.sleep(job["upstream_seconds"])  # the upstream call
            event = UsageEvent(
                request_id=uuid.uuid4().hex, at=fixed, provider="openai", model="openai/gpt-4o",
                requested="gpt-4o", connection_id=None, key_id=key.id, combo=None, client="openai",
                stream=False, status=200, usage=Usage(input=10, output=5), estimated=False, cost=job["cost"],
                latency_ms=5.0, ttft_ms=5.0,
            )  # fmt: skip
            accountant.record(event, key=key, conn=None)
            await accountant.drain()
            requests += 1
        if accountant.write_errors:
            errors.append(f"{accountant.write_errors} failed writes")
        return {"requests": requests, "refused": refused, "written": accountant.written, "errors": errors}

    results.put(asyncio.run(run()))


def test_a_budget_holds_across_instances_and_overshoots_by_at_most_one_request_each(
    moto_endpoint: str, state_table: str, usage_table: str
) -> None:
    now = time.time()
    job = {"limit": LIMIT, "cost": COST, "clock": now, "upstream_seconds": 0.005, "max_requests": 200}
    reports = run_together(_worker, (moto_endpoint, state_table, usage_table, job), WORKERS)

    assert all(not r["errors"] for r in reports), reports
    # Every instance was eventually refused, for the budget (none ran out of attempts instead).
    assert [r["refused"] for r in reports] == ["budget_exceeded"] * WORKERS, reports
    made = sum(r["requests"] for r in reports)
    assert made == sum(r["written"] for r in reports)

    # What the key spent, read back as any instance's check reads it.
    (daily,) = current_periods(_key({"dailyLimitUsd": LIMIT}).budget, now)  # type: ignore[arg-type]
    spent = DynamoSpendStore(DynamoRoutingStore(state_table, REGION, moto_endpoint).items).spend(KEY["id"], [daily.id])
    total = spent[daily.id]
    assert total == made * COST  # every request's cost was added, once
    assert total >= LIMIT  # spending stopped at the limit, not before it
    assert total < LIMIT + WORKERS * COST  # overshoot: at most one in-flight request per instance

    # One usage event per request made, no more, no fewer.
    events = DynamoUsageStore(usage_table, REGION, moto_endpoint).events(day_of(now))
    assert len(events) == made
    assert len({e.request_id for e in events}) == made
    assert all(e.key_id == KEY["id"] and e.cost == COST for e in events)
