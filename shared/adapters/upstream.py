"""Upstream HTTP through one shared httpx.AsyncClient (connection reuse, HTTP/1.1 keep-alive).

httpx exceptions are turned into the gateway's error tree here, so nothing above this module sees httpx.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterable, Mapping

import anyio
import httpcore
import httpx

from shared.domain.netguard import is_public_address, refused_host
from shared.errors import GatewayBusy, UpstreamFailed, UpstreamTimeout


def _translate(exc: httpx.HTTPError, url: str) -> Exception:
    host = httpx.URL(url).host
    if isinstance(exc, httpx.PoolTimeout):
        # Our own limit, not the upstream's fault: every pooled connection is busy.
        return GatewayBusy("All upstream connections of this gateway are busy; retry shortly.", retry_after=1)
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"The upstream {host} did not answer in time ({type(exc).__name__}).")
    if isinstance(exc, httpx.ConnectError):
        return UpstreamFailed(
            f"Could not connect to the upstream {host}: {exc or type(exc).__name__}.", code="upstream_unreachable"
        )
    if isinstance(exc, httpx.LocalProtocolError):
        # Its text quotes the offending request line or header, which may be a credential: never relay it.
        return UpstreamFailed(f"The request to the upstream {host} could not be sent (invalid header or URL).")
    return UpstreamFailed(f"The upstream {host} broke the connection ({type(exc).__name__}: {exc}).")


class AddressRefused(Exception):
    """The upstream's address is not public and this gateway runs in the cloud (DESIGN §6)."""


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """Connects only to public addresses: the name is resolved here, every address it resolves to is
    checked, and the connection goes to a checked address, so DNS cannot swap in a private one between
    check and connect (TLS still verifies the certificate against the host name)."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        reason = refused_host(host)
        if reason is not None:
            raise AddressRefused(reason)
        try:
            with anyio.fail_after(timeout):
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        private = [a for a in addresses if not is_public_address(a)]
        if private or not addresses:
            raise AddressRefused(f"{host} resolves to {private[0] if private else 'nothing'}, not a public address")
        error: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("unix sockets are not upstreams")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


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
    """`public_only` (the cloud) refuses upstreams on loopback, private or link-local addresses."""

    def __init__(
        self, *, connect_timeout: float, read_timeout: float, max_connections: int = 200, public_only: bool = False
    ) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=30.0, pool=connect_timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=min(64, max_connections), keepalive_expiry=60
            ),
            follow_redirects=False,
            trust_env=False,
        )
        if public_only:
            # httpx has no public hook for the network backend; the pool reads it for each new connection.
            pool = self._client._transport._pool  # type: ignore[attr-defined]
            pool._network_backend = PublicOnlyBackend(pool._network_backend)
        self._closing: set[asyncio.Future[None]] = set()

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        stream: bool,
        read_timeout: float | None = None,
    ) -> HttpxResponse:
        """`read_timeout`: the longest silence between two reads for this request; the client's own read
        timeout (OMNIROUTE_UPSTREAM_READ_TIMEOUT) still applies when it is the shorter one."""
        try:
            if read_timeout is None:
                request = self._client.build_request(method, url, headers=headers, content=body)
            else:
                timeout = self._client.timeout
                if timeout.read is not None:
                    read_timeout = min(read_timeout, timeout.read)
                request = self._client.build_request(
                    method,
                    url,
                    headers=headers,
                    content=body,
                    timeout=httpx.Timeout(
                        connect=timeout.connect, read=read_timeout, write=timeout.write, pool=timeout.pool
                    ),
                )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
            raise UpstreamFailed(f"The configured upstream URL cannot be used: {exc}.") from exc
        try:
            resp = await self._send_cancel_safe(request)
        except httpx.HTTPError as exc:
            raise _translate(exc, url) from exc
        except AddressRefused as exc:
            raise UpstreamFailed(
                f"The upstream URL is refused: {exc}. In the cloud the gateway only connects to public addresses "
                "(set OMNIROUTE_ALLOW_PRIVATE_UPSTREAMS=true on the function to allow private ones).",
                code="upstream_address_refused",
            ) from exc
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
