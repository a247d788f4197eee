"""Upstream HTTP through one shared httpx.AsyncClient (connection reuse, HTTP/1.1 keep-alive).

httpx exceptions are turned into the gateway's error tree here, so nothing above this module sees httpx.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import httpx

from shared.errors import GatewayBusy, UpstreamFailed, UpstreamTimeout


def _translate(exc: httpx.HTTPError, url: str) -> Exception:
    host = httpx.URL(url).host
    if isinstance(exc, httpx.PoolTimeout):
        # Our own limit, not the upstream's fault: every pooled connection is busy.
        return GatewayBusy("All upstream connections of this gateway are busy; retry shortly.", retry_after=1)
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"The upstream {host} did not answer in time ({type(exc).__name__}).")
    if isinstance(exc, httpx.ConnectError):
        return UpstreamFailed(f"Could not connect to the upstream {host}: {exc or type(exc).__name__}.")
    if isinstance(exc, httpx.LocalProtocolError):
        # Its text quotes the offending request line or header, which may be a credential: never relay it.
        return UpstreamFailed(f"The request to the upstream {host} could not be sent (invalid header or URL).")
    return UpstreamFailed(f"The upstream {host} broke the connection ({type(exc).__name__}: {exc}).")


class _Abandoned(Exception):
    """Raised inside httpcore (from the trace hook) to stop a request whose client is gone."""


class _Flight:
    """Where one request is: httpcore reports its steps through the `trace` extension."""

    __slots__ = ("abandoned", "established")

    def __init__(self) -> None:
        self.established = False
        self.abandoned = False

    async def trace(self, event: str, info: Mapping[str, object]) -> None:
        if event.endswith(".send_request_headers.started"):  # http11 or http2: the connection is up
            self.established = True
            if self.abandoned:
                raise _Abandoned("client disconnected before the request was sent")


class HttpxResponse:
    __slots__ = ("_resp", "_url", "headers", "status")

    def __init__(self, resp: httpx.Response, url: str) -> None:
        self._resp = resp
        self._url = url
        self.status = resp.status_code
        self.headers: Mapping[str, str] = resp.headers

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:
            raise _translate(exc, self._url) from exc

    async def aread(self) -> bytes:
        try:
            return await self._resp.aread()
        except httpx.HTTPError as exc:
            raise _translate(exc, self._url) from exc

    async def aclose(self) -> None:
        await self._resp.aclose()


class HttpxUpstream:
    def __init__(self, *, connect_timeout: float, read_timeout: float, max_connections: int = 200) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=30.0, pool=connect_timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=min(64, max_connections), keepalive_expiry=60
            ),
            follow_redirects=False,
            trust_env=False,
        )
        self._closing: set[asyncio.Future[None]] = set()

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, *, stream: bool
    ) -> HttpxResponse:
        try:
            request = self._client.build_request(method, url, headers=headers, content=body)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
            raise UpstreamFailed(f"The configured upstream URL cannot be used: {exc}.") from exc
        try:
            resp = await self._send_cancel_safe(request)
        except httpx.HTTPError as exc:
            raise _translate(exc, url) from exc
        wrapped = HttpxResponse(resp, url)
        if not stream:
            try:
                await wrapped.aread()
            finally:
                await resp.aclose()
        return wrapped

    async def _send_cancel_safe(self, request: httpx.Request) -> httpx.Response:
        """Send, and on cancellation (the client hung up) stop the request without harming the pool.

        httpcore 1.0.9 leaks a pool slot for good when a request is cancelled after the pool gave it a new
        connection but before that connection was established (encode/httpcore#1093, open): enough
        hang-ups under load and every later request fails with PoolTimeout. So a request is only
        cancelled once its connection is up; before that it is marked, and its trace hook aborts it with an
        ordinary exception at the first safe point, which httpcore cleans up correctly.
        """
        flight = _Flight()
        request.extensions["trace"] = flight.trace
        inner = asyncio.ensure_future(self._client.send(request, stream=True))
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            if flight.established:
                inner.cancel()
            else:
                flight.abandoned = True
            inner.add_done_callback(self._discard)
            raise

    def _discard(self, task: asyncio.Future[httpx.Response]) -> None:
        """An abandoned request that still produced a response: close it so its connection returns."""
        if task.cancelled() or task.exception() is not None:
            return
        closer = asyncio.ensure_future(task.result().aclose())
        self._closing.add(closer)
        closer.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        await self._client.aclose()
