"""Pure-ASGI middleware giving every request an id, a `Server-Timing` header and an end-of-request hook.

- `X-Request-Id`: a client-supplied id is kept when it is short and printable (so a caller can correlate
  its own logs); otherwise one is generated. It is also set in a context variable for log lines.
- `Server-Timing`: the phases a handler recorded in `request.state.timing` (auth, routing, upstream time
  to first byte, ...) plus `total`, the time until the response started. For a stream that is the time to
  its first byte; the rest of the stream cannot be in a header that has already gone.
- `on_finish(scope, status, seconds)`: called once per request, just before the last body chunk is handed
  over (so metrics are written while the invocation is still running, never after Lambda may freeze it),
  or when the request ends without one (client gone, error).

Pure ASGI rather than BaseHTTPMiddleware: it costs microseconds and does not buffer streams.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.context import current_request_id

log = logging.getLogger(__name__)

_SAFE = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")

FinishHook = Callable[[Scope, int, float], None]


class Timing:
    """Durations of a request's phases, in milliseconds, in the order they were recorded."""

    __slots__ = ("phases",)

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}

    def since(self, name: str, started: float) -> None:
        """Record phase `name` as lasting from `started` (a `time.perf_counter()` value) until now."""
        self.phases[name] = self.phases.get(name, 0.0) + (time.perf_counter() - started) * 1000.0

    def header(self, total_ms: float) -> bytes:
        parts = [f"{name};dur={ms:.2f}" for name, ms in self.phases.items()]
        parts.append(f"total;dur={total_ms:.2f}")
        return ", ".join(parts).encode("ascii")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, on_finish: FinishHook | None = None) -> None:
        self.app = app
        self.on_finish = on_finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value if _SAFE.match(value) else b""
                break
        if not rid:
            rid = b"req_" + uuid.uuid4().hex.encode()
        request_id = rid.decode()
        timing = Timing()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["timing"] = timing
        token = current_request_id.set(request_id)
        status = 0
        finished = False
        on_finish = self.on_finish

        def finish() -> None:
            nonlocal finished
            if not finished and on_finish is not None:
                finished = True
                try:
                    on_finish(scope, status, time.perf_counter() - started)
                except Exception:  # telemetry must never break a response
                    log.exception("the end-of-request hook failed")

        async def send_with_context(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                total_ms = (time.perf_counter() - started) * 1000.0
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", rid),
                    (b"server-timing", timing.header(total_ms)),
                ]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finish()
            await send(message)

        try:
            await self.app(scope, receive, send_with_context)
        finally:
            finish()
            current_request_id.reset(token)
