"""Cache keys (what changes the answer changes the key), idempotency scopes, the local cache bound, and
stream recording for replay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared.domain.config import GatewaySettings
from shared.domain.routing import StoredReply
from shared.providers.spec import WireFormat
from shared.services import replay as replay_module
from shared.services.replay import ReplayService
from shared.services.routing_state import RoutingState

pytestmark = pytest.mark.anyio

BASE: dict[str, Any] = {
    "model": "m",
    "temperature": 0,
    "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
}
SETTINGS = GatewaySettings()


def key(body: dict[str, Any], *, settings: GatewaySettings = SETTINGS, headers: dict[str, str] | None = None,
        client: WireFormat = WireFormat.OPENAI, stream: bool = False) -> str | None:  # fmt: skip
    return ReplayService.cache_key(client, "m", body, settings, headers or {}, stream=stream)


def test_only_temperature_zero_non_stream_requests_are_cacheable() -> None:
    assert key(BASE) is not None
    assert key({**BASE, "temperature": 0.2}) is None
    assert key({k: v for k, v in BASE.items() if k != "temperature"}) is None
    assert key(BASE, stream=True) is None
    assert key(BASE, headers={"x-omniroute-no-cache": "true"}) is None
    assert key(BASE, settings=GatewaySettings(cache_ttl=0)) is None


def test_gemini_temperature_lives_in_generation_config() -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"temperature": 0}}
    assert key(body, client=WireFormat.GEMINI) is not None
    assert key({**body, "generationConfig": {}}, client=WireFormat.GEMINI) is None


def test_everything_that_changes_the_answer_changes_the_key() -> None:
    base = key(BASE)
    variants = [
        {**BASE, "messages": [{"role": "system", "content": "be verbose"}, BASE["messages"][1]]},
        {**BASE, "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        {**BASE, "instructions": "x"},
        {**BASE, "max_tokens": 5},
        {**BASE, "system": "other"},
    ]
    keys = {key(v) for v in variants}
    assert base not in keys and len(keys) == len(variants)
    assert key(BASE, settings=GatewaySettings(system_prompt="house rules")) != base
    assert key(BASE, client=WireFormat.ANTHROPIC) != base


def test_transport_and_bookkeeping_fields_do_not_change_the_key() -> None:
    same = {**BASE, "user": "u1", "metadata": {"a": 1}, "stream": False}
    assert key(same) == key(BASE)
    assert key({**BASE, "store": False}) != key(BASE)  # store decides whether a Responses id can be chained
    assert key(BASE, headers={"anthropic-beta": "interleaved-thinking-2025-05-14"}) != key(BASE)
    assert key(dict(reversed(list(BASE.items())))) == key(BASE)  # field order is not meaning


def test_idempotency_scope_is_per_api_key_and_per_body() -> None:
    headers = {"idempotency-key": "k1"}
    path = "/v1/chat/completions"
    a = ReplayService.idempotency_scope(headers, "key_1", path, b"{}")
    assert a == ReplayService.idempotency_scope(headers, "key_1", path, b"{}")
    assert a != ReplayService.idempotency_scope(headers, "key_2", path, b"{}")
    assert a != ReplayService.idempotency_scope(headers, "key_1", path, b"{ }")
    assert a != ReplayService.idempotency_scope(headers, "key_1", "/v1/messages", b"{}")
    assert ReplayService.idempotency_scope({"x-request-id": "r"}, None, path, b"{}") is not None
    assert ReplayService.idempotency_scope({}, "key_1", path, b"{}") is None


async def test_local_cache_is_bounded_and_counts_hits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_module, "LOCAL_CACHE_ENTRIES", 2)
    service = ReplayService(RoutingState(None))
    for name in ("a", "b", "c"):
        await service.store(name, StoredReply(200, {}, name.encode()), ttl=60)
    assert await service.lookup("a") is None  # evicted, and the store has nothing (none configured)
    found = await service.lookup("c")
    assert found is not None and found.body == b"c"
    assert service.cache_view() == {"hits": 1, "misses": 1, "hitRate": 0.5, "entries": 2}


async def test_errors_are_never_cached() -> None:
    service = ReplayService(RoutingState(None))
    await service.store("k", StoredReply(500, {}, b"{}"), ttl=60)
    assert await service.lookup("k") is None


async def test_recording_a_stream_relays_every_chunk() -> None:
    service = ReplayService(RoutingState(None))
    finished: list[StoredReply | None] = []

    async def finish(scope: str, owner: str, reply: StoredReply | None) -> None:
        finished.append(reply)

    service.finish = finish  # type: ignore[method-assign]

    async def chunks() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        yield b"data: [DONE]\n\n"

    out = [c async for c in service.recording("s", "me", chunks(), {"x-omniroute-provider": "p"}, lambda: False)]
    assert out == [b"data: 1\n\n", b"data: [DONE]\n\n"]
    assert finished[0] is not None and finished[0].body == b"".join(out)
    assert finished[0].media_type == "text/event-stream"


async def test_a_failed_stream_drops_its_claim() -> None:
    service = ReplayService(RoutingState(None))
    finished: list[StoredReply | None] = []

    async def finish(scope: str, owner: str, reply: StoredReply | None) -> None:
        finished.append(reply)

    service.finish = finish  # type: ignore[method-assign]

    async def chunks() -> AsyncIterator[bytes]:
        yield b"data: {}\n\n"

    _ = [c async for c in service.recording("s", "me", chunks(), {}, lambda: True)]
    assert finished == [None]
