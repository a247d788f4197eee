"""A StreamingResponse that always releases the upstream it relays.

Starlette never iterates the body generator when the client is gone before the response starts, or when
sending the headers fails, and an async generator that never started never runs its `finally`. Without
this, each such request would keep one pooled upstream connection checked out until the pool is exhausted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class RelayResponse(StreamingResponse):
    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        on_close: Callable[[], Awaitable[None]],
        headers: Mapping[str, str],
        media_type: str = "text/event-stream",
    ) -> None:
        self._on_close = on_close
        super().__init__(chunks, headers=headers, media_type=media_type)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._on_close()
