"""Serve any ASGI app with uvicorn on a background thread, over real loopback HTTP.

Tests that exercise the gateway against fake upstreams want real sockets (so timeouts, streaming
and abrupt disconnects behave as in production) but not a separate process to manage. A
`ServerThread` gives exactly that: it binds the listening socket itself *before* starting uvicorn,
so the port is known up front (port 0 means "any free port", with no bind race), starts uvicorn's
event loop on a daemon thread, and returns from `start()` only once uvicorn is accepting
connections.

    with ServerThread(create_app()) as server:
        httpx.get(server.base_url + "/v1/models")
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar

import uvicorn
from starlette.types import ASGIApp

LifespanMode = Literal["auto", "on", "off"]
# Generic over the app type so that `server.app` keeps its concrete type (e.g. Starlette).
AppT = TypeVar("AppT", bound=ASGIApp)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on `host` a moment ago.

    Only for callers that must pass a number to another process (a benchmark starting the fake
    with `--port`); the port can in principle be taken before that process binds it. In-process
    code should use `ServerThread(port=0)`, which keeps its socket and cannot race.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class _SignallingServer(uvicorn.Server):
    """A uvicorn server that tells another thread when its startup has finished.

    uvicorn only exposes readiness as the `started` attribute; polling it would mean a sleep loop.
    Setting an event at the end of `startup` lets `ServerThread.start` block for exactly as long as
    needed. The event is set on failure too (startup calls `sys.exit` when lifespan startup fails),
    so the waiting thread wakes up and can report the failure instead of timing out.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.startup_done = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.startup_done.set()


class ServerThread(Generic[AppT]):
    """Run an ASGI app under uvicorn on a daemon thread bound to `host:port`.

    Use it as a context manager, or call `start()` / `stop()` (e.g. from a pytest fixture). After
    `start()` returns the server accepts connections at `base_url`. `stop()` asks uvicorn for a
    graceful shutdown, which closes idle keep-alive connections and waits at most
    `graceful_timeout` seconds for in-flight responses before cancelling them.
    """

    def __init__(
        self,
        app: AppT,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        lifespan: LifespanMode = "auto",
        log_level: str = "warning",
        access_log: bool = False,
        startup_timeout: float = 10.0,
        graceful_timeout: int = 2,
    ) -> None:
        self._app = app
        self._host = host
        self._requested_port = port
        self._lifespan: LifespanMode = lifespan
        self._log_level = log_level
        self._access_log = access_log
        self._startup_timeout = startup_timeout
        self._graceful_timeout = graceful_timeout
        self._socket: socket.socket | None = None
        self._server: _SignallingServer | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._port: int | None = None

    # -- addresses ---------------------------------------------------------------------------

    @property
    def app(self) -> AppT:
        """The served app, e.g. to reach `app.state` of a fake from the test thread."""
        return self._app

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("ServerThread is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """`http://host:port`, without a trailing slash."""
        return f"http://{self._host}:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL of `path` on this server (`path` should start with '/')."""
        return self.base_url + path

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("ServerThread can only be started once")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # SO_REUSEADDR lets a fixed port be re-bound right after a previous run left it in
            # TIME_WAIT, which otherwise makes back-to-back benchmark runs flaky.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._requested_port))
            sock.listen(2048)
        except BaseException:
            sock.close()
            raise
        self._socket = sock
        self._port = sock.getsockname()[1]

        config = uvicorn.Config(
            self._app,
            host=self._host,
            port=self._port,
            lifespan=self._lifespan,
            log_level=self._log_level,
            # None: do not install uvicorn's logging handlers process-wide; its records then
            # propagate to the root logger, which pytest captures per test.
            log_config=None,
            access_log=self._access_log,
            # No websocket support is needed, and importing a websocket implementation can
            # emit DeprecationWarnings, which the test suite turns into errors.
            ws="none",
            timeout_graceful_shutdown=self._graceful_timeout,
        )
        self._server = _SignallingServer(config)
        self._thread = threading.Thread(target=self._run, name=f"uvicorn-{self._port}", daemon=True)
        self._thread.start()

        if not self._server.startup_done.wait(self._startup_timeout):
            self.stop()
            raise TimeoutError(f"uvicorn did not start within {self._startup_timeout}s")
        if not self._server.started:
            self._thread.join(self._startup_timeout)
            error = self._error
            self.stop()
            raise RuntimeError("uvicorn failed to start") from error
        return self

    def _run(self) -> None:
        assert self._server is not None
        assert self._socket is not None
        try:
            # Passing our own socket makes uvicorn serve on it rather than binding a new one.
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # reported to the starting thread instead
            # SystemExit comes from a failed lifespan startup; anything else is a bug worth
            # surfacing from start() rather than as a stray thread traceback.
            self._error = exc
            self._server.startup_done.set()

    def stop(self) -> None:
        """Shut the server down and wait for its thread; safe to call more than once."""
        server, thread = self._server, self._thread
        if server is not None and thread is not None and thread.is_alive():
            server.should_exit = True
            thread.join(self._graceful_timeout + 5.0)
            if thread.is_alive():
                # Graceful shutdown is stuck (e.g. a handler ignoring cancellation): uvicorn's
                # force_exit skips the remaining waits.
                server.force_exit = True
                thread.join(5.0)
        if self._socket is not None:
            # uvicorn closes the socket on a normal shutdown; this covers failed starts.
            self._socket.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def serving(apps: dict[str, ASGIApp]) -> Iterator[dict[str, ServerThread[ASGIApp]]]:
    """Several apps at once, each on its own loopback port, by name; all stopped on the way out."""
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(ServerThread(app)) for name, app in apps.items()}


def fake_states(servers: dict[str, ServerThread[ASGIApp]]) -> dict[str, Any]:
    """Each fake's in-process state by name, emptied (request log and script) for the next test."""
    states = {name: server.app.state.fake for name, server in servers.items()}  # type: ignore[attr-defined]
    for state in states.values():
        state.clear_requests()
        state.clear_script()
    return states
