"""A StreamingResponse that always releases the upstream it relays, and keeps a silent stream alive.

Starlette never iterates the body generator when the client is gone before the response starts, or when
sending the headers fails, and an async generator that never started never runs its `finally`. Without
this, each such request would keep one pooled upstream connection checked out until the pool is exhausted.

A reasoning model can think for minutes between two events; proxies and clients drop idle connections
long before that. While nothing was sent for `keepalive` seconds, an SSE comment (`: keepalive`) goes out:
every SSE parser ignores comments. With `progress`, an `event: progress` frame (elapsed time, what was
relayed so far) goes out every `PROGRESS_SECONDS`, and a last one with `"done": true` after the stream.

The upstream is released (`on_close`) before the last message goes out, so whatever it finishes (a rate-limit
slot given back, a breaker count) lands before Lambda may freeze the environment. Keepalives and progress
frames come from one watchdog task per stream that sleeps until the next deadline; the relay itself reads
and sends each chunk directly (a lock keeps the two from interleaving inside one send), so a lively
stream pays no extra task switch per chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

PROGRESS_SECONDS = 2.0


async def _nothing() -> None:
    return None


KEEPALIVE_FRAME = b": keepalive\n\n"


class RelayResponse(StreamingResponse):
    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        on_close: Callable[[], Awaitable[None]],
        headers: Mapping[str, str],
        media_type: str = "text/event-stream",
        keepalive: float | None = None,
        progress: bool = False,
    ) -> None:
        self._on_close = on_close
        self._keepalive = keepalive
        self._progress = progress
        super().__init__(chunks, headers=headers, media_type=media_type)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._close()

    async def _close(self) -> None:
        on_close, self._on_close = self._on_close, _nothing
        await on_close()

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        watch = _Watch(send, self._keepalive, self._progress)
        watchdog = asyncio.ensure_future(watch.run()) if self._keepalive is not None or self._progress else None
        try:
            async for chunk in self.body_iterator:
                await watch.send(chunk.encode(self.charset) if isinstance(chunk, str) else bytes(chunk))
        finally:
            if watchdog is not None:
                watchdog.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watchdog
        if self._progress:
            await send({"type": "http.response.body", "body": watch.progress_frame(done=True), "more_body": True})
        # Released before the last message: Lambda may freeze the environment as soon as the answer is done.
        await self._close()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _Watch:
    """What the stream has sent and when; the watchdog fills silences from it."""

    def __init__(self, send: Send, keepalive: float | None, progress: bool) -> None:
        self._send = send
        self._lock = asyncio.Lock()
        self._keepalive = keepalive
        self.started = self.last_sent = time.monotonic()
        self.next_progress = self.started + PROGRESS_SECONDS if progress else float("inf")
        self.chunks = 0
        self.size = 0

    async def send(self, chunk: bytes) -> None:
        async with self._lock:
            await self._send({"type": "http.response.body", "body": chunk, "more_body": True})
        self.last_sent = time.monotonic()
        self.chunks += 1
        self.size += len(chunk)

    async def run(self) -> None:
        while True:
            keepalive_due = self.last_sent + self._keepalive if self._keepalive is not None else float("inf")
            await asyncio.sleep(max(min(keepalive_due, self.next_progress) - time.monotonic(), 0.01))
            now = time.monotonic()
            if now >= self.next_progress:
                frame = self.progress_frame(done=False)
                self.next_progress = now + PROGRESS_SECONDS
            elif self._keepalive is not None and now - self.last_sent >= self._keepalive:
                frame = KEEPALIVE_FRAME
            else:
                continue
            async with self._lock:
                await self._send({"type": "http.response.body", "body": frame, "more_body": True})
            self.last_sent = time.monotonic()

    def progress_frame(self, *, done: bool) -> bytes:
        payload = {
            "elapsed_ms": int((time.monotonic() - self.started) * 1000),
            "chunks_relayed": self.chunks,
            "bytes_relayed": self.size,
            "done": done,
        }
        return b"event: progress\ndata: " + orjson.dumps(payload) + b"\n\n"
