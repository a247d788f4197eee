"""Keep a silent stream alive, and report progress to clients that ask for it.

A reasoning model can think for minutes between two events; proxies and clients time out idle
connections long before that. While the upstream is silent for `keepalive` seconds, an SSE comment
(`: keepalive`) goes out: every SSE parser ignores comments, so no client sees it as data. With
`X-OmniRoute-Progress: true`, an `event: progress` frame with the elapsed time and what was relayed so far
goes out every `PROGRESS_SECONDS`, and a last one with `"done": true` after the stream ends.

The upstream is read by one pump task into a one-slot queue, so waiting for the next chunk can time out
without cancelling the read (a cancelled read would end the stream). The queue holds one chunk: a slow
client slows the upstream read, as a direct relay would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson

PROGRESS_SECONDS = 2.0
_KEEPALIVE = b": keepalive\n\n"


class _End:
    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def guard(
    chunks: AsyncIterator[bytes], *, keepalive: float, progress: bool
) -> tuple[AsyncIterator[bytes], Callable[[], Awaitable[None]]]:
    """The guarded stream, and a `stop` to call however it ends (it cancels the pump)."""
    queue: asyncio.Queue[bytes | _End] = asyncio.Queue(maxsize=1)

    async def pump() -> None:
        try:
            async for chunk in chunks:
                await queue.put(chunk)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the consumer, which re-raises it in its own task
            await queue.put(_End(exc))
            return
        await queue.put(_End(None))

    task: asyncio.Task[None] | None = None

    async def relay() -> AsyncIterator[bytes]:
        nonlocal task
        task = asyncio.ensure_future(pump())
        started = time.monotonic()
        sent_chunks = 0
        sent_bytes = 0
        next_progress = started + PROGRESS_SECONDS if progress else float("inf")
        while True:
            now = time.monotonic()
            wait = min(keepalive, next_progress - now)
            try:
                async with asyncio.timeout(max(wait, 0.0)):
                    item = await queue.get()
            except TimeoutError:
                now = time.monotonic()
                if now >= next_progress:
                    yield _progress(started, sent_chunks, sent_bytes, done=False)
                    next_progress = now + PROGRESS_SECONDS
                else:
                    yield _KEEPALIVE
                continue
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                break
            sent_chunks += 1
            sent_bytes += len(item)
            yield item
            if time.monotonic() >= next_progress:
                yield _progress(started, sent_chunks, sent_bytes, done=False)
                next_progress = time.monotonic() + PROGRESS_SECONDS
        if progress:
            yield _progress(started, sent_chunks, sent_bytes, done=True)

    async def stop() -> None:
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):  # the pump's end is of no interest once stopped
                await task

    return relay(), stop


def _progress(started: float, chunks: int, size: int, *, done: bool) -> bytes:
    payload = {
        "elapsed_ms": int((time.monotonic() - started) * 1000),
        "chunks_relayed": chunks,
        "bytes_relayed": size,
        "done": done,
    }
    return b"event: progress\ndata: " + orjson.dumps(payload) + b"\n\n"
