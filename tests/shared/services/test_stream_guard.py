"""Keepalive comments while the upstream is silent, progress frames on request, and a clean stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from shared.services import stream_guard
from shared.services.stream_guard import guard

pytestmark = pytest.mark.anyio


async def paced(*items: tuple[float, bytes], fail: Exception | None = None) -> AsyncIterator[bytes]:
    for pause, chunk in items:
        await asyncio.sleep(pause)
        yield chunk
    if fail is not None:
        raise fail


async def collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [c async for c in chunks]


async def test_a_lively_stream_passes_unchanged() -> None:
    chunks, stop = guard(paced((0, b"a"), (0, b"b")), keepalive=5, progress=False)
    assert await collect(chunks) == [b"a", b"b"]
    await stop()


async def test_silence_longer_than_the_interval_sends_keepalive_comments() -> None:
    chunks, stop = guard(paced((0, b"a"), (0.35, b"b")), keepalive=0.1, progress=False)
    out = await collect(chunks)
    await stop()
    assert out[0] == b"a" and out[-1] == b"b"
    assert 2 <= out.count(b": keepalive\n\n") <= 4 and len(out) == out.count(b": keepalive\n\n") + 2


async def test_progress_frames_report_time_and_a_final_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_guard, "PROGRESS_SECONDS", 0.1)
    chunks, stop = guard(paced((0, b"data: 1\n\n"), (0.25, b"data: 2\n\n")), keepalive=10, progress=True)
    out = await collect(chunks)
    await stop()
    frames = [orjson.loads(c.split(b"data: ", 1)[1]) for c in out if c.startswith(b"event: progress")]
    assert len(frames) >= 2 and frames[-1]["done"] is True and frames[-1]["chunks_relayed"] == 2
    assert all(not f["done"] for f in frames[:-1]) and frames[-1]["elapsed_ms"] >= 200


async def test_an_upstream_failure_reaches_the_reader() -> None:
    chunks, stop = guard(paced((0, b"a"), fail=RuntimeError("cut")), keepalive=5, progress=False)
    seen: list[bytes] = []

    async def read_all() -> None:
        async for c in chunks:
            seen.append(c)

    with pytest.raises(RuntimeError, match="cut"):
        await read_all()
    await stop()
    assert seen == [b"a"]


async def test_stop_cancels_the_upstream_read() -> None:
    closed = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x"
                await asyncio.sleep(0.01)
        finally:
            closed.set()

    chunks, stop = guard(endless(), keepalive=5, progress=False)
    assert await chunks.__anext__() == b"x"
    await stop()
    await asyncio.wait_for(closed.wait(), 1)
