"""HttpxUpstream against a real server on loopback: cancellation (a client hanging up) never costs the
pool a connection, whatever the moment (encode/httpcore#1093), and httpx errors map onto our tree."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from shared.adapters.upstream import HttpxUpstream
from shared.errors import GatewayBusy, UpstreamFailed
from tests.fakes.openai_upstream import create_app
from tests.fakes.server import ServerThread, free_port

pytestmark = pytest.mark.anyio
BODY = b'{"model": "slow-150", "messages": [{"role": "user", "content": "x"}]}'


@pytest.fixture(scope="module")
def fake() -> Iterator[ServerThread]:
    with ServerThread(create_app(record=False)) as server:
        yield server


@pytest.mark.parametrize("delay", [0, 0.0005, 0.002, 0.01, 0.05])
async def test_cancelled_sends_under_contention_leave_the_pool_usable(fake: ServerThread, delay: float) -> None:
    upstream = HttpxUpstream(connect_timeout=1, read_timeout=5, max_connections=4)
    try:
        url = fake.base_url + "/v1/chat/completions"
        headers = {"content-type": "application/json"}
        for _ in range(3):
            tasks = [asyncio.ensure_future(upstream.send("POST", url, headers, BODY, stream=True)) for _ in range(16)]
            await asyncio.sleep(delay)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0.4)  # let abandoned requests reach their safe point and finish
        ok = b'{"model": "x", "messages": [{"role": "user", "content": "x"}]}'
        results = await asyncio.gather(*(upstream.send("POST", url, headers, ok, stream=False) for _ in range(8)))
        assert [r.status for r in results] == [200] * 8
    finally:
        await upstream.aclose()


async def test_refused_connection_and_exhausted_pool_map_to_our_errors(fake: ServerThread) -> None:
    upstream = HttpxUpstream(connect_timeout=0.3, read_timeout=5, max_connections=1)
    try:
        with pytest.raises(UpstreamFailed, match="Could not connect"):
            await upstream.send("POST", f"http://127.0.0.1:{free_port()}/v1/x", {}, b"{}", stream=False)
        url = fake.base_url + "/v1/chat/completions"
        slow = b'{"model": "slow-1000", "messages": [{"role": "user", "content": "x"}]}'
        hold = asyncio.ensure_future(
            upstream.send("POST", url, {"content-type": "application/json"}, slow, stream=False)
        )
        await asyncio.sleep(0.1)
        with pytest.raises(GatewayBusy):
            await upstream.send("POST", url, {"content-type": "application/json"}, BODY, stream=False)
        assert (await hold).status == 200
    finally:
        await upstream.aclose()


async def test_header_errors_never_quote_the_header(fake: ServerThread) -> None:
    upstream = HttpxUpstream(connect_timeout=1, read_timeout=5)
    try:
        with pytest.raises(UpstreamFailed) as exc:
            await upstream.send(
                "POST",
                fake.base_url + "/v1/chat/completions",
                {"authorization": "Bearer sk-SECRET\n"},
                BODY,
                stream=False,
            )
        assert "SECRET" not in exc.value.message
    finally:
        await upstream.aclose()
