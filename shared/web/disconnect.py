"""Stop upstream work the moment the client hangs up.

Between reading the request body and sending the first response byte, nothing in Starlette notices a
client that went away: the upstream call would run to its end (billed, and holding a pooled connection
that other requests wait for). `unless_disconnected` races the work against the ASGI `http.disconnect`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from starlette.types import Receive

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before the answer started; the work was cancelled."""


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(receive: Receive, work: Coroutine[Any, Any, T]) -> T:
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, watcher):
            if not pending.done():
                pending.cancel()
        # uvicorn answers every later receive() with http.disconnect again, so nothing is lost for the
        # response that may still be sent.
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    if not task.done() or task.cancelled():
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise ClientGone
    return task.result()
