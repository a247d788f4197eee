"""Routing decisions that must hold across gateway instances: several processes, each a full router
(its own routing copy, store client and upstream client, as separate Lambda instances are), sharing one
State table on moto's server and two fake upstreams on loopback.

- a failing provider's breaker opens exactly once, however many instances see it fail, and then gets no
  traffic from any of them;
- when it may be probed, exactly one request of all instances probes it;
- an account's requests-per-minute limit holds for all instances together.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from shared.adapters.dynamo.routing_state import DynamoRoutingStore
from shared.domain.routing import BreakerPhase
from tests.fakes.openai_upstream import create_app
from tests.fakes.server import ServerThread, fake_states, serving
from tests.shared.services.processes import run_together

REGION = "us-east-1"
INSTANCES = 4


@pytest.fixture(autouse=True)
def _atomic(atomic_moto_writes: None) -> None:
    """DynamoDB's per-item atomicity, which moto's server lacks (see the fixture)."""


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, ServerThread]]:
    with serving({"a": create_app(), "b": create_app()}) as servers:
        yield servers


@pytest.fixture
def fake(upstreams: dict[str, ServerThread]) -> dict[str, Any]:
    return fake_states(upstreams)


def _instance(endpoint: str, table: str, urls: dict[str, str], job: dict[str, Any], ready: Any, results: Any) -> None:
    """One gateway instance: builds its router, waits for the others, sends its requests, reports."""
    from shared.adapters.upstream import HttpxUpstream
    from shared.domain.combos import Combo, ComboTarget
    from shared.domain.config import ConfigSnapshot, Connection, GatewaySettings, ProviderNode
    from shared.domain.plan import plan_for
    from shared.domain.routing import RateLimit
    from shared.providers.spec import WireFormat
    from shared.services.chat import ChatService, JsonReply
    from shared.services.router import Router
    from shared.services.routing_state import RoutingState

    settings = GatewaySettings.from_data(
        {"resilience": {"apikey": {"breakerThreshold": job["threshold"], "breakerResetSeconds": job["reset"]}}}
    )
    nodes = [ProviderNode(f"node_{n}", n, n, urls[n] + "/v1", "openai") for n in urls]
    conns = [
        Connection("a1", "node_a", "a1", "key-a1", None, 0, True, rate_limit=RateLimit(rpm=job.get("rpm"))),
        Connection("a2", "node_a", "a2", "key-a2", None, 1, True),
        Connection("b1", "node_b", "b1", "key-b1", None, 0, True),
    ]
    combo = Combo("ab", (ComboTarget("a/m"), ComboTarget("b/m")))
    snapshot = ConfigSnapshot.build(connections=conns, nodes=nodes, combos=[combo], settings=settings)
    fixed = job.get("clock")

    async def run() -> dict[str, Any]:
        store = DynamoRoutingStore(table, REGION, endpoint)
        state = RoutingState(
            store, refresh=0.3, instance_id=uuid.uuid4().hex[:8], **({"clock": lambda: fixed} if fixed else {})
        )
        upstream = HttpxUpstream(connect_timeout=2, read_timeout=10)
        router = Router(ChatService(upstream), state)
        served: Counter[str] = Counter()
        errors: list[str] = []
        gate = asyncio.Semaphore(job["concurrency"])

        async def one() -> None:
            async with gate:
                try:
                    reply = await router.complete(
                        plan_for(job["model"], snapshot),
                        {"model": job["model"], "messages": [{"role": "user", "content": "hi"}]},
                        stream=False,
                        client=WireFormat.OPENAI,
                        settings=settings,
                    )
                    assert isinstance(reply, JsonReply)
                    served[reply.outcome.connection_id or "?"] += 1
                except Exception as exc:  # reported, and the test says which
                    errors.append(f"{type(exc).__name__}: {exc}")

        await state.reload()
        await asyncio.get_running_loop().run_in_executor(None, ready.wait)
        for wave in range(job.get("waves", 1)):
            if wave:
                await asyncio.sleep(job["pause"])
                await state.reload()
            await asyncio.gather(*(one() for _ in range(job["requests"])))
        await state.drain()
        await upstream.aclose()
        return {"served": dict(served), "errors": errors}

    results.put(asyncio.run(run()))


def run_instances(moto_endpoint: str, table: str, upstreams: dict[str, ServerThread], job: dict[str, Any]) -> list[Any]:
    urls = {name: server.base_url for name, server in upstreams.items()}
    return run_together(_instance, (moto_endpoint, table, urls, job), INSTANCES)


def breaker(moto_endpoint: str, table: str, provider: str) -> Any:
    store = DynamoRoutingStore(table, REGION, moto_endpoint)
    return store.load(time.time()).breakers.get(provider)


def test_breaker_opens_once_across_instances_and_stops_all_traffic(
    moto_endpoint: str, state_table: str, upstreams: dict[str, ServerThread], fake: dict[str, Any]
) -> None:
    fake["a"].add_script([{"status": 500}] * 500)
    job = {"model": "ab", "threshold": 5, "reset": 60, "requests": 20, "concurrency": 4, "waves": 2, "pause": 1.0}
    reports = run_instances(moto_endpoint, state_table, upstreams, job)
    assert all(not r["errors"] for r in reports), reports  # every request completed through b
    assert sum(sum(r["served"].values()) for r in reports) == INSTANCES * 20 * 2
    state = breaker(moto_endpoint, state_table, "node_a")
    assert state.phase is BreakerPhase.OPEN and state.version == 1  # one transition, by one instance
    # Before it opened: the 5 failures that opened it, plus what other instances had in flight then (each
    # sends at most `concurrency` at once before its own failed write tells it the breaker is open).
    first_wave = len(fake["a"].requests)
    assert 5 <= first_wave <= 5 + INSTANCES * 4
    # The second wave, after every instance's copy refreshed, sent nothing to a.
    assert sum(1 for r in fake["a"].requests) == first_wave


def test_exactly_one_instance_probes_a_recovering_provider(
    moto_endpoint: str, state_table: str, upstreams: dict[str, ServerThread], fake: dict[str, Any]
) -> None:
    store = DynamoRoutingStore(state_table, REGION, moto_endpoint)
    now = time.time()
    for _ in range(2):
        store.record_failure("node_a", now, 2, 1.0)  # open, probe-able one second from now
    assert store.load(now).breakers["node_a"].phase is BreakerPhase.OPEN
    time.sleep(1.1)
    fake["a"].add_script([{"delay_ms": 800}] * 50)  # a recovered, but slowly: the probe takes a while
    job = {"model": "ab", "threshold": 2, "reset": 1, "requests": 8, "concurrency": 8}
    reports = run_instances(moto_endpoint, state_table, upstreams, job)
    assert all(not r["errors"] for r in reports), reports
    assert len(fake["a"].requests) == 1  # 32 requests at once, one probe
    state = breaker(moto_endpoint, state_table, "node_a")
    assert state.phase is BreakerPhase.CLOSED  # the probe succeeded


def test_requests_per_minute_hold_across_instances(
    moto_endpoint: str, state_table: str, upstreams: dict[str, ServerThread], fake: dict[str, Any]
) -> None:
    # One fixed minute for every instance, so the window cannot roll over mid-test.
    job = {"model": "a/m", "threshold": 5, "reset": 60, "requests": 10, "concurrency": 5, "rpm": 6,
           "clock": 1_800_000_030.0}  # fmt: skip
    reports = run_instances(moto_endpoint, state_table, upstreams, job)
    assert all(not r["errors"] for r in reports), reports
    served: Counter[str] = Counter()
    for report in reports:
        served.update(report["served"])
    assert served == {"a1": 6, "a2": INSTANCES * 10 - 6}
