"""The fallback loop over real loopback HTTP: three fake OpenAI upstreams behind three custom nodes.

Faults are scripted on the fakes (canned 429/500/400 with headers, delays, empty or cut streams); the
router runs on this instance's copy alone and on the State table (moto), with a clock the tests move, so
cooldown and breaker timing is exact. Many instances at once: tests/e2e/test_routing_global.py.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import botocore.session
import pytest

from shared.adapters.dynamo.routing_state import DynamoRoutingStore
from shared.adapters.dynamo.tables import create_tables
from shared.adapters.upstream import HttpxUpstream
from shared.domain.combos import Combo, ComboConfig, ComboTarget
from shared.domain.config import ConfigSnapshot, Connection, GatewaySettings, ProviderNode
from shared.domain.plan import plan_for
from shared.domain.routing import BreakerPhase
from shared.errors import GatewayBusy, InvalidRequest, RateLimited, UpstreamFailed, UpstreamRejected
from shared.ports import RoutingStore
from shared.providers.spec import WireFormat
from shared.services.chat import ChatService, JsonReply, StreamReply
from shared.services.router import Router
from shared.services.routing_state import RoutingState
from tests.fakes.openai_upstream import create_app
from tests.fakes.server import ServerThread, fake_states, free_port, serving

pytestmark = pytest.mark.anyio

Fakes = dict[str, ServerThread]
Store = RoutingStore | None
States = dict[str, Any]

BODY: dict[str, Any] = {"model": "x", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with serving({name: create_app() for name in "abc"}) as servers:
        yield servers


@pytest.fixture
def state_of(fakes: Fakes) -> States:
    return fake_states(fakes)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["instance-only", "dynamodb"])
def routing_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """Each test runs on this instance's copy alone (no store, as when DynamoDB is unreachable) and on the
    State table (moto in-process, through the same adapter the gateway uses)."""
    if request.param == "instance-only":
        yield None
        return
    from moto import mock_aws

    with mock_aws():
        names = {"StateTable": f"State-{uuid.uuid4().hex[:8]}"}
        client = botocore.session.get_session().create_client("dynamodb", region_name="us-east-1")
        create_tables(client, names)
        yield DynamoRoutingStore(names["StateTable"], "us-east-1", lock=threading.Lock())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def upstream() -> AsyncIterator[HttpxUpstream]:
    client = HttpxUpstream(connect_timeout=2.0, read_timeout=2.0)
    yield client
    await client.aclose()


def snapshot(fakes: dict[str, ServerThread], *, accounts: int = 1, **kwargs: Any) -> ConfigSnapshot:
    nodes = [ProviderNode(f"node_{n}", n.upper(), n, fakes[n].base_url + "/v1", "openai") for n in "abc"]
    nodes.append(ProviderNode("node_dead", "Dead", "dead", f"http://127.0.0.1:{free_port()}/v1", "openai"))
    conns = [
        Connection(id=f"{n}{i}", provider=f"node_{n}", name=f"{n}{i}", api_key=f"key-{n}{i}", base_url=None,
                   priority=i, enabled=True)
        for n in ("a", "b", "c", "dead") for i in range(1, accounts + 1)
    ]  # fmt: skip
    return ConfigSnapshot.build(connections=conns, nodes=nodes, **kwargs)


def combo(*models: str, strategy: str = "priority", **config: Any) -> Combo:
    return Combo("team", tuple(ComboTarget(m) for m in models), strategy, ComboConfig(**config))


def make_router(store: Store, upstream: HttpxUpstream, clock: Clock, seed: int = 0) -> tuple[Router, RoutingState]:
    state = RoutingState(store, clock=clock, instance_id="test")
    return Router(ChatService(upstream), state, rng=random.Random(seed)), state


async def ask(
    router: Router, snap: ConfigSnapshot, model: str = "team", *, stream: bool = False, **settings: Any
) -> JsonReply | StreamReply:
    return await router.complete(
        plan_for(model, snap),
        dict(BODY, model=model, stream=stream),
        stream=stream,
        client=WireFormat.OPENAI,
        settings=GatewaySettings(**settings),
    )


def keys_seen(state: Any) -> list[str]:
    return [r["headers"].get("authorization", "").removeprefix("Bearer key-") for r in state.requests]


async def read(reply: JsonReply | StreamReply) -> bytes:
    if isinstance(reply, JsonReply):
        return reply.body
    try:
        return b"".join([c async for c in reply.chunks])
    finally:
        await reply.aclose()


async def test_a_failing_target_falls_through_to_the_next(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, state = make_router(routing_store, upstream, clock)
    state_of["a"].add_script([{"status": 500}])
    reply = await ask(router, snapshot(fakes, combos=[combo("a/m", "b/m")]))
    assert isinstance(reply, JsonReply) and reply.status == 200
    assert reply.outcome.provider == "node_b" and reply.headers["x-omniroute-attempts"] == "2"
    assert state.view().breakers["node_a"].failures == 1


async def test_rate_limited_account_cools_down_and_the_next_account_answers(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, state = make_router(routing_store, upstream, clock)
    snap = snapshot(fakes, accounts=2)
    state_of["a"].add_script([{"status": 429, "headers": {"retry-after": "7"}}])
    first = await ask(router, snap, "a/m")
    assert first.outcome.connection_id == "a2"
    cooldown = state.cooldown("a1", None, clock.now)
    assert cooldown is not None and cooldown.until - clock.now == pytest.approx(7, abs=0.01)
    await ask(router, snap, "a/m")
    assert keys_seen(state_of["a"]) == ["a1", "a2", "a2"]  # a1 is skipped while cooling
    clock.now += 7.5
    await ask(router, snap, "a/m")
    assert keys_seen(state_of["a"])[-1] == "a1"  # back in rotation, and the success clears its backoff
    assert state.cooldown("a1", None, clock.now) is None and ("a1", None) not in state.view().cooldowns


async def test_concurrent_rate_limits_raise_the_backoff_once(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, state = make_router(routing_store, upstream, clock)
    snap = snapshot(fakes, accounts=2)
    state_of["a"].add_script([{"status": 429}])
    await ask(router, snap, "a/m")
    level = state.view().cooldowns[("a1", None)].level
    again = await state.mark_cooldown("a1", None, GatewaySettings().policies["apikey"], None, "rate_limited")
    assert again.level == level  # an active cooldown is returned untouched


async def test_a_refused_request_burns_no_other_account_but_another_target_may_take_it(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, state = make_router(routing_store, upstream, clock)
    refusal = {"error": {"message": "image input is not supported", "type": "invalid_request_error"}}
    state_of["a"].add_script([{"status": 400, "body": refusal}])
    reply = await ask(router, snapshot(fakes, accounts=2, combos=[combo("a/m", "b/m")]))
    assert reply.outcome.provider == "node_b"
    assert keys_seen(state_of["a"]) == ["a1"]  # a2 was not burnt on the same refusal
    assert "node_a" not in state.view().breakers and not state.view().cooldowns


async def test_when_every_target_refuses_the_first_refusal_is_relayed(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, _ = make_router(routing_store, upstream, clock)
    for name in "ab":
        refusal = {"error": {"message": f"invalid 'temperature' at {name}", "type": "invalid_request_error"}}
        state_of[name].add_script([{"status": 400, "body": refusal}])
    with pytest.raises(UpstreamRejected) as info:
        await ask(router, snapshot(fakes, accounts=2, combos=[combo("a/m", "b/m")]))
    assert info.value.upstream_status == 400 and "at a" in info.value.message
    assert len(state_of["a"].requests) == len(state_of["b"].requests) == 1


async def test_refused_connection_moves_on_and_counts_for_the_breaker(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, state = make_router(routing_store, upstream, clock)
    reply = await ask(router, snapshot(fakes, combos=[combo("dead/m", "c/m")]))
    assert reply.outcome.provider == "node_c"
    assert state.view().breakers["node_dead"].failures == 1


async def test_first_byte_timeout_moves_a_stream_on(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, _ = make_router(routing_store, upstream, clock)
    state_of["a"].add_script([{"delay_ms": 1500}])
    reply = await ask(router, snapshot(fakes, combos=[combo("a/m", "b/m", first_byte_timeout_ms=1000)]), stream=True)
    assert reply.outcome.provider == "node_b"
    assert b"[DONE]" in await read(reply)


async def test_non_stream_read_timeout_moves_on(
    fakes: Fakes, state_of: States, clock: Clock, routing_store: Store
) -> None:
    impatient = HttpxUpstream(connect_timeout=1.0, read_timeout=0.5)
    try:
        router, state = make_router(routing_store, impatient, clock)
        state_of["a"].add_script([{"delay_ms": 1500}])
        reply = await ask(router, snapshot(fakes, combos=[combo("a/m", "b/m")]))
        assert reply.outcome.provider == "node_b"
        assert state.view().breakers["node_a"].failures == 1
    finally:
        await impatient.aclose()


async def test_stream_that_ends_before_its_first_byte_moves_on(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, _ = make_router(routing_store, upstream, clock)
    state_of["a"].add_script([{"status": 200, "headers": {"content-type": "text/event-stream"}, "body": ""}])
    reply = await ask(router, snapshot(fakes, combos=[combo("a/m", "b/m")]), stream=True)
    assert reply.outcome.provider == "node_b"
    text = await read(reply)
    assert text.count(b"[DONE]") == 1 and b"error" not in text


async def test_stream_cut_after_its_first_byte_ends_with_an_error_event(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, state = make_router(routing_store, upstream, clock)
    state_of["a"].add_script([{"fault": "cut-stream"}])
    reply = await ask(router, snapshot(fakes, combos=[combo("a/m", "b/m")]), stream=True)
    assert reply.outcome.provider == "node_a"  # committed: the client already has bytes
    text = await read(reply)
    assert b'"error"' in text and not state_of["b"].requests
    await state.drain()
    assert state.view().breakers["node_a"].failures == 1


async def test_breaker_opens_at_its_threshold_and_a_single_probe_closes_it(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, state = make_router(routing_store, upstream, clock)
    settings = GatewaySettings.from_data({"resilience": {"apikey": {"breakerThreshold": 3, "breakerResetSeconds": 20}}})
    snap = snapshot(fakes, combos=[combo("a/m", "b/m")], settings=settings)
    state_of["a"].add_script([{"status": 500}] * 10)
    for _ in range(6):
        reply = await ask(router, snap, **_settings(settings))
        assert reply.outcome.provider == "node_b"
    assert len(state_of["a"].requests) == 3  # opened at the third failure; no traffic after
    assert state.view().breakers["node_a"].phase is BreakerPhase.OPEN
    clock.now += 21
    state_of["a"].clear_script()
    reply = await ask(router, snap, **_settings(settings))
    assert reply.outcome.provider == "node_a"  # the probe
    assert state.view().breakers["node_a"].phase is BreakerPhase.CLOSED
    await ask(router, snap, **_settings(settings))
    assert len(state_of["a"].requests) == 5


async def test_failed_probe_reopens_the_breaker(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, state = make_router(routing_store, upstream, clock)
    settings = GatewaySettings.from_data({"resilience": {"apikey": {"breakerThreshold": 1, "breakerResetSeconds": 10}}})
    snap = snapshot(fakes, combos=[combo("a/m", "b/m")], settings=settings)
    state_of["a"].add_script([{"status": 503}, {"status": 503}])
    await ask(router, snap, **_settings(settings))
    clock.now += 11
    await ask(router, snap, **_settings(settings))  # probe fails
    breaker = state.view().breakers["node_a"]
    assert breaker.phase is BreakerPhase.OPEN and breaker.open_until == pytest.approx(clock.now + 10)
    assert len(state_of["a"].requests) == 2


async def test_model_not_found_locks_the_model_not_the_account(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, state = make_router(routing_store, upstream, clock)
    snap = snapshot(fakes)
    missing = {"message": "The model `gone` does not exist", "type": "invalid_request_error", "code": "model_not_found"}
    state_of["a"].add_script([{"status": 404, "body": {"error": missing}}])
    with pytest.raises(UpstreamRejected):
        await ask(router, snap, "a/gone")
    assert state.cooldown("a1", "gone", clock.now) is not None
    assert state.cooldown("a1", None, clock.now) is None
    assert (await ask(router, snap, "a/other")).outcome.connection_id == "a1"


async def test_everything_rate_limited_answers_429_with_the_earliest_retry(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, _ = make_router(routing_store, upstream, clock)
    state_of["a"].add_script([{"status": 429, "headers": {"retry-after": "30"}}])
    state_of["b"].add_script([{"status": 429, "headers": {"retry-after": "12"}}])
    with pytest.raises(RateLimited) as info:
        await ask(router, snapshot(fakes, combos=[combo("a/m", "b/m")]))
    assert info.value.retry_after == pytest.approx(12, abs=0.5)
    assert "a/m" in info.value.message and "b/m" in info.value.message


async def test_all_breakers_open_answers_503_without_calling_anyone(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, _ = make_router(routing_store, upstream, clock)
    settings = GatewaySettings.from_data({"resilience": {"apikey": {"breakerThreshold": 1}}})
    snap = snapshot(fakes, combos=[combo("a/m", "b/m")], settings=settings)
    state_of["a"].add_script([{"status": 500}])
    state_of["b"].add_script([{"status": 500}])
    with pytest.raises(UpstreamFailed):
        await ask(router, snap, **_settings(settings))
    with pytest.raises(GatewayBusy) as info:
        await ask(router, snap, **_settings(settings))
    assert info.value.code == "provider_circuit_open" and info.value.retry_after
    assert len(state_of["a"].requests) == len(state_of["b"].requests) == 1


async def test_max_retries_retries_the_same_target_before_moving_on(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, _ = make_router(routing_store, upstream, clock)
    state_of["a"].add_script([{"status": 502}])
    reply = await ask(router, snapshot(fakes, combos=[combo("a/m", "b/m", max_retries=1)]))
    assert reply.outcome.provider == "node_a" and len(state_of["a"].requests) == 2


async def test_fallback_chain_answers_when_the_model_fails(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    from shared.domain.combos import FallbackChain

    router, _ = make_router(routing_store, upstream, clock)
    state_of["a"].add_script([{"status": 503}])
    snap = snapshot(fakes, fallbacks=[FallbackChain("a/*", ("c/m",))])
    assert (await ask(router, snap, "a/m")).outcome.provider == "node_c"


async def test_client_errors_of_our_own_are_not_upstream_failures(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, state = make_router(routing_store, upstream, clock)
    snap = snapshot(fakes)
    with pytest.raises(InvalidRequest):
        await router.complete(
            plan_for("a/m", snap), {"model": "a/m"}, stream=False, client=WireFormat.ANTHROPIC,
            settings=GatewaySettings(),
        )  # fmt: skip
    assert not state.view().breakers


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("priority", {"a": 60}),
        ("round-robin", {"a": 20, "b": 20, "c": 20}),
    ],
)
async def test_deterministic_strategies_distribute_exactly(
    fakes: Fakes,
    state_of: States,
    upstream: HttpxUpstream,
    clock: Clock,
    routing_store: Store,
    strategy: str,
    expected: dict[str, int],
) -> None:
    router, _ = make_router(routing_store, upstream, clock)
    snap = snapshot(fakes, combos=[combo("a/m", "b/m", "c/m", strategy=strategy)])
    served = Counter([(await ask(router, snap)).outcome.provider.removeprefix("node_") for _ in range(60)])
    assert served == expected


async def test_weighted_strategy_follows_weights(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, _ = make_router(routing_store, upstream, clock, seed=11)
    weighted = Combo("team", (ComboTarget("a/m", 1), ComboTarget("b/m", 3)), "weighted")
    snap = snapshot(fakes, combos=[weighted])
    served = Counter([(await ask(router, snap)).outcome.provider for _ in range(200)])
    assert 0.65 < served["node_b"] / 200 < 0.85


async def test_random_and_least_used_strategies_spread_load(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    # least-used is exact on one instance; with the store, counts written in the background may lag a read
    for strategy, low in (("random", 40), ("least-used", 57)):
        router, _ = make_router(routing_store, upstream, clock, seed=3)
        snap = snapshot(fakes, combos=[combo("a/m", "b/m", "c/m", strategy=strategy)])
        served = Counter([(await ask(router, snap)).outcome.provider for _ in range(180)])
        assert min(served.values()) >= low and len(served) == 3, (strategy, served)


async def test_p2c_steers_away_from_a_slow_target(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, _ = make_router(routing_store, upstream, clock, seed=5)
    snap = snapshot(fakes, combos=[combo("a/m", "b/m", "c/m", strategy="p2c")])
    for name in "abc":  # open the connections (and the store client) first: a first call is slow
        await ask(router, snap, f"{name}/m")
    router._stats.clear()  # forget those warm-up latencies
    state_of["c"].add_script([{"delay_ms": 120}] * 200)
    for name in "abc":  # what p2c learns from real calls
        await ask(router, snap, f"{name}/m")
    served = Counter([(await ask(router, snap)).outcome.provider for _ in range(90)])
    assert served["node_c"] <= 3, served  # c wins no pair: only a latency spike on a or b lets it


async def test_sticky_round_robin_over_accounts(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, _ = make_router(routing_store, upstream, clock)
    snap = snapshot(fakes, accounts=3)
    for _ in range(9):
        await ask(router, snap, "a/m", account_strategy="round-robin", sticky_limit=3)
    assert keys_seen(state_of["a"]) == ["a1"] * 3 + ["a2"] * 3 + ["a3"] * 3


async def test_session_affinity_keeps_a_session_on_one_account(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, _ = make_router(routing_store, upstream, clock)
    snap = snapshot(fakes, accounts=3)
    for session in ("s-1", "s-2", "s-3", "s-4"):
        state_of["a"].clear_requests()
        for _ in range(4):
            await router.complete(
                plan_for("a/m", snap), dict(BODY, model="a/m"), stream=False, client=WireFormat.OPENAI,
                settings=GatewaySettings(account_strategy="random"), client_headers={"x-session-id": session},
            )  # fmt: skip
        assert len(set(keys_seen(state_of["a"]))) == 1


def _settings(settings: GatewaySettings) -> dict[str, Any]:
    return {"policies": settings.policies}


async def test_cost_optimized_sends_to_the_cheapest_known_price(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    prices = {"node_a": 3.0, "node_b": None, "node_c": 0.5}
    state = RoutingState(routing_store, clock=clock, instance_id="test")
    router = Router(ChatService(upstream), state, price=lambda provider, model: prices[provider])
    snap = snapshot(fakes, combos=[combo("a/m", "b/m", "c/m", strategy="cost-optimized")])
    assert (await ask(router, snap)).outcome.provider == "node_c"
    state_of["c"].add_script([{"status": 503}])
    assert (await ask(router, snap)).outcome.provider == "node_a"  # then the next known price; unknown last


def test_marginal_price_knows_subscriptions_and_local_servers_cost_nothing_more() -> None:
    from shared.services.router import marginal_price

    assert marginal_price("claude", "claude-sonnet-4-6") == 0.0  # OAuth subscription
    assert marginal_price("ollama", "llama3.2") == 0.0  # local server
    assert marginal_price("deepseek", "deepseek-chat") is None  # pay per token: the pricing table knows


async def test_a_refused_request_gives_its_concurrency_slot_back(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    from dataclasses import replace

    from shared.domain.routing import RateLimit

    router, state = make_router(routing_store, upstream, clock)
    snap = snapshot(fakes)
    limited = [replace(c, rate_limit=RateLimit(max_concurrent=1)) if c.id == "a1" else c for c in snap.connections]
    snap = ConfigSnapshot.build(connections=limited, nodes=snap.nodes)
    state_of["a"].add_script([{"status": 400, "body": {"error": {"message": "bad", "type": "invalid_request_error"}}}])
    with pytest.raises(UpstreamRejected):
        await ask(router, snap, "a/m")
    await state.drain()
    for _ in range(3):  # one slot: each request must have given it back
        reply = await ask(router, snap, "a/m")
        await state.drain()
        assert reply.outcome.connection_id == "a1"


async def test_a_provider_that_keeps_cutting_streams_trips_its_breaker(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, state = make_router(routing_store, upstream, clock)
    settings = GatewaySettings.from_data({"resilience": {"apikey": {"breakerThreshold": 3}}})
    snap = snapshot(fakes, combos=[combo("a/m", "b/m")], settings=settings)
    state_of["a"].add_script([{"fault": "cut-stream"}] * 5)
    for _ in range(3):  # each stream already reached the client: it ends with an error event
        assert b'"error"' in await read(await ask(router, snap, stream=True, **_settings(settings)))
    assert state.view().breakers["node_a"].phase is BreakerPhase.OPEN
    assert (await ask(router, snap, stream=True, **_settings(settings))).outcome.provider == "node_b"


async def test_comments_and_an_error_before_any_content_do_not_commit_the_stream(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    router, _ = make_router(routing_store, upstream, clock)
    opening = ': OPENROUTER PROCESSING\n\ndata: {"error":{"message":"Provider returned error","code":502}}\n\n'
    state_of["a"].add_script([{"status": 200, "headers": {"content-type": "text/event-stream"}, "body": opening}])
    reply = await ask(router, snapshot(fakes, combos=[combo("a/m", "b/m")]), stream=True)
    assert reply.outcome.provider == "node_b"
    text = await read(reply)
    assert b"error" not in text and text.count(b"[DONE]") == 1


async def test_an_account_on_its_own_endpoint_fails_alone(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    from dataclasses import replace

    router, state = make_router(routing_store, upstream, clock)
    snap = snapshot(fakes, accounts=2)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    conns = [replace(c, base_url=dead) if c.id == "a1" else c for c in snap.connections]
    snap = ConfigSnapshot.build(connections=conns, nodes=snap.nodes)
    reply = await ask(router, snap, "a/m")
    assert reply.outcome.connection_id == "a2"  # a1's endpoint is down; a2 uses the node's own
    assert state.view().breakers[f"node_a@{dead}"].failures == 1 and "node_a" not in state.view().breakers


async def test_an_instance_with_an_old_copy_routes_on_the_stored_state(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock
) -> None:
    from moto import mock_aws

    settings = GatewaySettings.from_data({"resilience": {"apikey": {"breakerThreshold": 1, "breakerResetSeconds": 5}}})
    snap = snapshot(fakes, combos=[combo("a/m", "b/m")], settings=settings)
    with mock_aws():
        names = {"StateTable": f"State-{uuid.uuid4().hex[:8]}"}
        create_tables(botocore.session.get_session().create_client("dynamodb", region_name="us-east-1"), names)
        store = DynamoRoutingStore(names["StateTable"], "us-east-1", lock=threading.Lock())
        x, x_state = make_router(store, upstream, clock)
        y, _ = make_router(store, upstream, clock)
        state_of["a"].add_script([{"status": 500}])
        assert (await ask(x, snap, **_settings(settings))).outcome.provider == "node_b"  # x opens a's breaker
        assert x_state.view().breakers["node_a"].phase is BreakerPhase.OPEN
        clock.now += 6
        assert (await ask(y, snap, **_settings(settings))).outcome.provider == "node_a"  # y probes, closes it
        clock.now += 600  # x sat idle with its copy still showing the breaker open
        assert (await ask(x, snap, **_settings(settings))).outcome.provider == "node_a"


async def test_a_response_chain_kept_by_another_account_is_found_there(
    upstream: HttpxUpstream, clock: Clock, routing_store: Store
) -> None:
    from tests.fakes.responses_upstream import create_app as responses_app

    router, state = make_router(routing_store, upstream, clock)
    with serving({"r": responses_app()}) as servers:
        fake = fake_states(servers)["r"]
        node = ProviderNode("node_r", "R", "r", servers["r"].base_url + "/v1", "responses")
        conns = [
            Connection(f"r{i}", "node_r", f"r{i}", f"key-r{i}", None, i, True) for i in (1, 2)
        ]  # fmt: skip
        snap = ConfigSnapshot.build(connections=conns, nodes=[node])
        missing = {"message": "Previous response with id 'resp_1' not found.", "type": "invalid_request_error",
                   "param": "previous_response_id", "code": "previous_response_not_found"}  # fmt: skip
        fake.add_script([{"status": 400, "body": {"error": missing}}])
        reply = await router.complete(
            plan_for("r/gpt-4o-mini", snap), {"model": "r/gpt-4o-mini", "input": "hi"}, stream=False,
            client=WireFormat.RESPONSES, settings=GatewaySettings(),
        )  # fmt: skip
        assert reply.outcome.connection_id == "r2"  # the account that holds the chain answers
        assert not state.view().cooldowns and "node_r" not in state.view().breakers  # r1 is not to blame


async def test_a_linked_account_whose_access_token_expired_is_skipped_until_refreshed(
    fakes: Fakes, state_of: States, upstream: HttpxUpstream, clock: Clock
) -> None:
    from dataclasses import replace

    from shared.domain.oauth import RELINK_NEEDED, OAuthAccount, OAuthTokens

    router, _ = make_router(None, upstream, clock)
    base = snapshot(fakes, accounts=2)

    def linked(conn: Connection, expires_at: float, status: str = "active") -> Connection:
        tokens = OAuthTokens(access_token=conn.api_key or "", refresh_token="rt")
        return replace(conn, oauth=OAuthAccount("node_a", tokens, expires_at, 1, status))

    conns = [
        linked(c, clock.now - 1, RELINK_NEEDED) if c.id == "a1" else linked(c, clock.now + 60) if c.id == "a2" else c
        for c in base.connections
    ]
    snap = ConfigSnapshot.build(connections=conns, nodes=base.nodes)
    reply = await ask(router, snap, "a/m")
    assert reply.outcome.connection_id == "a2" and keys_seen(state_of["a"]) == ["a2"]
    # a grant that is gone still serves while its access token is valid
    conns = [linked(c, clock.now + 60, RELINK_NEEDED) if c.id == "a1" else c for c in conns]
    reply = await ask(router, ConfigSnapshot.build(connections=conns, nodes=base.nodes), "a/m")
    assert reply.outcome.connection_id == "a1"
    clock.now += 120  # both expired now
    with pytest.raises(GatewayBusy, match=r"access token expired \(relink needed\)"):
        await ask(router, ConfigSnapshot.build(connections=conns, nodes=base.nodes), "a/m")
