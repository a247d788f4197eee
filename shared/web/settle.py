"""Hold the end of each response until the writes its request left behind have landed.

Lambda may freeze the execution environment as soon as an invocation's response is complete, and
Lambda Web Adapter completes it when the app ends the HTTP response. Accounting writes run in the
background so the client never waits for them; this middleware keeps the response open, after its last
byte of content, until they are done: the content goes out first (a JSON body as one message marked
"more to come"), then `settle()` is awaited, then the empty closing message ends the invocation.

Used in the cloud when no internal extension holds the freeze (`TrackInvocations` below is for when one
does); locally the process never freezes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.adapters.lambda_extension import InvocationTracker, counts_as_invocation

log = logging.getLogger(__name__)


class SettleBeforeEnd:
    def __init__(self, app: ASGIApp, settle: Callable[[], Awaitable[None]], prefix: str = "/v1") -> None:
        self.app = app
        self.settle = settle
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        ended = False

        async def send_then_settle(message: Message) -> None:
            nonlocal ended
            if message["type"] != "http.response.body" or message.get("more_body", False):
                await send(message)
                return
            if message.get("body"):
                await send({"type": "http.response.body", "body": message["body"], "more_body": True})
            await self._settle()
            ended = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app(scope, receive, send_then_settle)
        if not ended:  # the response never ended normally (client gone, error): the writes still count
            await self._settle()

    async def _settle(self) -> None:
        try:
            await self.settle()
        except Exception:  # a failing store must not break the response; the writes log their own failure
            log.exception("waiting for the request's writes failed")


class TrackInvocations:
    """With an internal extension holding the freeze (`shared.adapters.lambda_extension.FreezeGuard`):
    responses end at once, and each invocation's request keeps one unit of work pending in the tracker
    until `settle()` returns, which the extension waits for before Lambda may freeze the environment.
    Only requests Lambda Web Adapter relayed count (its readiness probe is not an invocation)."""

    def __init__(self, app: ASGIApp, tracker: InvocationTracker, settle: Callable[[], Awaitable[None]]) -> None:
        self.app = app
        self.tracker = tracker
        self.settle = settle
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not counts_as_invocation(scope["headers"]):
            await self.app(scope, receive, send)
            return
        self.tracker.request_started()
        try:
            await self.app(scope, receive, send)
        finally:
            self.tracker.work_added()  # before the request counts as finished: no idle gap in between
            task = asyncio.ensure_future(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            self.tracker.request_finished()

    async def _drain(self) -> None:
        try:
            await self.settle()
        except Exception:
            log.exception("waiting for the request's writes failed")
        finally:
            self.tracker.work_done()
