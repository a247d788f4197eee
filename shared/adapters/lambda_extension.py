"""Keep Lambda from freezing the gateway until each invocation's post-response work (usage writes) is done.

Why: Lambda ends an invocation, and may freeze the execution environment at once, when the runtime AND
every registered extension have called `next` again (`/runtime/invocation/next`, `/extension/event/next`).
Under Lambda Web Adapter (LWA) the "runtime" is LWA: it calls `/runtime/invocation/next` as soon as it has
streamed our response, so work the app does after the response (a background usage write) can be frozen
mid-flight, resumed at some later invocation, or lost when the environment is shut down. An *internal
extension* (a thread in this process, registered with the Extensions API) holds the invocation open
instead: it receives the same INVOKE event and calls `next` again only when the app says that every request
has finished and its write queue is empty. The client does not wait for that: the response is already
complete, so the time shows up as Lambda's `PostRuntimeExecutionDuration` (billed), not as latency.

When to register: only during the Init phase. Lambda closes registration the moment the "runtime" first
calls `/runtime/invocation/next` (403 `Extension.RegistrationClosed` afterwards). LWA makes that call only
after the app's readiness check (`AWS_LWA_READINESS_CHECK_PATH`, `/healthz`) has passed, so registering at
import of the app module, before uvicorn serves anything, is inside Init. After registering, `next` must be
called promptly: Init also waits for every registered extension to call it, which the guard's thread does.
An internal extension may subscribe to INVOKE only (never SHUTDOWN), under any name that is not the file
name of an external extension in /opt/extensions (LWA's is `lambda-adapter`).

The race: Lambda hands the INVOKE to the extensions before releasing the runtime, so the guard can see it
before LWA has forwarded the HTTP request to uvicorn; "no request in flight" at that moment means nothing.
So the guard counts INVOKE events, the app counts requests started, and an invocation is settled only once
`requests_started >= invokes_seen` and then nothing is in flight and no write is pending. Only requests
LWA forwarded for an invocation may be counted: not the readiness probe, which LWA sends during Init (and
again during the first invocation with `AWS_LWA_ASYNC_INIT`) without an INVOKE behind it.
`counts_as_invocation` is that rule: LWA adds `x-amzn-lambda-context` to every request it relays (and
replaces any a client sent), and its readiness probe carries none. The app calls `work_added()` before
`request_finished()` for the same request, or the guard could see an idle instant between the two.

The guard never holds an invocation past its deadline: it waits at most until `deadlineMs` minus a margin,
then logs and calls `next` anyway. If registration fails (no Extensions API, registration closed, Lambda
Managed Instances, where internal extensions may not subscribe to INVOKE), `start` returns False and the
app must fall back to finishing its writes before the response completes.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable

DEFAULT_NAME = "omniroute-usage-flush"
API_PREFIX = "/2020-01-01/extension"
# Added by LWA to every request it relays for an invocation; its readiness probe carries none.
LAMBDA_CONTEXT_HEADER = b"x-amzn-lambda-context"

_MAX_NEXT_FAILURES = 3

log = logging.getLogger("omniroute.lambda_extension")


def counts_as_invocation(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request (its ASGI header list) was relayed by LWA for an invocation, so the tracker counts it."""
    return any(name == LAMBDA_CONTEXT_HEADER for name, _ in headers)


def settle_timeout(deadline_ms: object, *, now: float, margin: float, cap: float) -> float:
    """Seconds the guard may wait for an invocation's work: until `margin` before its deadline (epoch ms, as
    Lambda sends it), never more than `cap`, never negative. Without a usable deadline, `cap`."""
    if isinstance(deadline_ms, bool) or not isinstance(deadline_ms, int | float):
        return cap
    return max(0.0, min(cap, deadline_ms / 1000.0 - now - margin))


class InvocationTracker:
    """Thread-safe bookkeeping of the app's side: requests started and in flight, background writes pending.

    The app calls these from its event loop (they only take a lock briefly); the guard's thread blocks in
    `wait_settled`.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._started = 0
        self._in_flight = 0
        self._pending = 0

    @property
    def requests_started(self) -> int:
        with self._changed:
            return self._started

    @property
    def in_flight(self) -> int:
        with self._changed:
            return self._in_flight

    @property
    def pending_work(self) -> int:
        with self._changed:
            return self._pending

    def request_started(self) -> None:
        with self._changed:
            self._started += 1
            self._in_flight += 1
            self._changed.notify_all()

    def request_finished(self) -> None:
        with self._changed:
            if self._in_flight == 0:
                raise RuntimeError("request_finished() without a matching request_started()")
            self._in_flight -= 1
            self._changed.notify_all()

    def work_added(self) -> None:
        with self._changed:
            self._pending += 1

    def work_done(self) -> None:
        with self._changed:
            if self._pending == 0:
                raise RuntimeError("work_done() without a matching work_added()")
            self._pending -= 1
            self._changed.notify_all()

    def _settled(self, invokes_seen: int) -> bool:
        return self._started >= invokes_seen and self._in_flight == 0 and self._pending == 0

    def wait_settled(self, invokes_seen: int, timeout: float) -> bool:
        """Block until a request has started for each of `invokes_seen` invocations, none is in flight and no
        write is pending (True), or until `timeout` seconds have passed (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._settled(invokes_seen), timeout=max(0.0, timeout))


class _ApiError(Exception):
    """The Extensions API answered with an error status: per its contract, not worth retrying."""


class FreezeGuard:
    """An internal Lambda extension that calls `next` only once the app's work for the invocation is settled.

    Give it the app's `InvocationTracker` (`tracker=`), or any `settled(timeout) -> bool` callback
    (`settled=`) that blocks until the app is done or the timeout passes. `margin` is how long before the
    invocation's deadline the guard gives up waiting; `max_wait` caps any single wait.
    """

    def __init__(
        self,
        settled: Callable[[float], bool] | None = None,
        *,
        tracker: InvocationTracker | None = None,
        margin: float = 0.5,
        max_wait: float = 900.0,
        register_timeout: float = 1.0,
    ) -> None:
        if (settled is None) == (tracker is None):
            raise ValueError("give FreezeGuard either settled= or tracker=")
        self._tracker = tracker
        self._settled = settled if settled is not None else self._tracker_settled
        self._margin = margin
        self._max_wait = max_wait
        self._register_timeout = register_timeout
        self._invokes_seen = 0
        self._runtime_api = ""
        self._identifier: str | None = None
        self._thread: threading.Thread | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._conn_lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def invokes_seen(self) -> int:
        return self._invokes_seen

    @property
    def identifier(self) -> str | None:
        """The `Lambda-Extension-Identifier` Lambda gave this extension, once registered."""
        return self._identifier

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _tracker_settled(self, timeout: float) -> bool:
        assert self._tracker is not None
        return self._tracker.wait_settled(self._invokes_seen, timeout)

    # -- registration (caller's thread, during Init) -------------------------------------------------

    def start(self, runtime_api: str, name: str = DEFAULT_NAME) -> bool:
        """Register with the Extensions API at `runtime_api` (host:port, i.e. `AWS_LAMBDA_RUNTIME_API`) and
        start the guard's daemon thread. False, with one warning logged, if Lambda did not accept it."""
        if self._thread is not None:
            raise RuntimeError("FreezeGuard.start() can only be called once")
        self._runtime_api = runtime_api
        try:
            self._identifier = self._register(name)
        except (OSError, http.client.HTTPException, _ApiError) as exc:
            log.warning(
                "Lambda extension %r not registered (%s); usage writes must finish before each response ends",
                name,
                exc,
            )
            return False
        self._thread = threading.Thread(target=self._run, name=f"lambda-extension-{name}", daemon=True)
        try:
            self._thread.start()
        except RuntimeError as exc:  # cannot start a thread: Init would wait for our `next` forever
            self._thread = None
            self._report_error("init", "Fatal.ThreadStartFailed", str(exc))
            log.warning("Lambda extension %r registered but its thread did not start (%s)", name, exc)
            return False
        return True

    def _register(self, name: str) -> str:
        conn = http.client.HTTPConnection(self._runtime_api, timeout=self._register_timeout)
        try:
            conn.request(
                "POST",
                f"{API_PREFIX}/register",
                body=b'{"events": ["INVOKE"]}',
                headers={"Lambda-Extension-Name": name, "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            body = response.read()
            identifier = response.getheader("Lambda-Extension-Identifier")
        finally:
            conn.close()
        if response.status != 200 or not identifier:
            raise _ApiError(f"HTTP {response.status}: {body[:200].decode('utf-8', 'replace')}")
        return identifier

    # -- the guard's thread ---------------------------------------------------------------------------

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread (tests, shutdown): unblocks a pending `next` by shutting its socket down."""
        self._stopping.set()
        give_up = time.monotonic() + timeout
        # Repeated: the thread may be opening a new connection right now, after a first look found none.
        while self._thread is not None and self._thread.is_alive() and time.monotonic() < give_up:
            with self._conn_lock:
                sock = self._conn.sock if self._conn is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._thread.join(0.05)

    def _run(self) -> None:
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    event = self._next_event()
                except _ApiError as exc:
                    if not self._stopping.is_set():
                        log.error("Lambda extension: %s from event/next; giving up", exc)
                        self._report_error("exit", "Fatal.EventNextFailed", str(exc))
                    return
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    if self._stopping.is_set():
                        return
                    failures += 1
                    self._close_connection()
                    if failures >= _MAX_NEXT_FAILURES:
                        log.error("Lambda extension: event/next failed %d times (%s); giving up", failures, exc)
                        self._report_error("exit", "Fatal.EventNextFailed", str(exc))
                        return
                    self._stopping.wait(0.05 * failures)
                    continue
                failures = 0
                event_type = event.get("eventType")
                if event_type == "INVOKE":
                    self._hold(event)
                elif event_type == "SHUTDOWN":  # internal extensions never get it; be safe anyway
                    return
        finally:
            self._close_connection()

    def _connection(self) -> http.client.HTTPConnection:
        with self._conn_lock:
            if self._conn is None:
                # No timeout: `next` blocks for as long as the environment is idle (and frozen).
                self._conn = http.client.HTTPConnection(self._runtime_api, timeout=None)
            return self._conn

    def _close_connection(self) -> None:
        with self._conn_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _next_event(self) -> dict[str, object]:
        assert self._identifier is not None
        conn = self._connection()
        conn.request("GET", f"{API_PREFIX}/event/next", headers={"Lambda-Extension-Identifier": self._identifier})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise _ApiError(f"HTTP {response.status}: {body[:200].decode('utf-8', 'replace')}")
        event = json.loads(body)
        if not isinstance(event, dict):
            raise ValueError("event/next did not answer a JSON object")
        return event

    def _hold(self, event: dict[str, object]) -> None:
        """The invocation has begun: return (so that the loop calls `next`) once the app is settled."""
        self._invokes_seen += 1
        timeout = settle_timeout(event.get("deadlineMs"), now=time.time(), margin=self._margin, cap=self._max_wait)
        try:
            settled = self._settled(timeout)
        except Exception:
            log.exception("Lambda extension: the settled() callback failed")
            settled = False
        if settled:
            return
        log.warning(
            "Lambda extension: invocation %s not settled after %.3f s; letting Lambda end it anyway",
            event.get("requestId"),
            timeout,
        )
        tracker = self._tracker
        if tracker is not None:
            # A request that has not even started this close to the deadline never will (else Lambda times
            # the invocation out and resets the environment): stop expecting it, or every later invocation
            # would wait for its deadline too.
            self._invokes_seen = min(self._invokes_seen, tracker.requests_started)

    def _report_error(self, kind: str, error_type: str, message: str) -> None:
        """POST /extension/{init,exit}/error (best effort): Lambda then resets the environment instead of
        waiting for a `next` that will never come."""
        if self._identifier is None:
            return
        conn = http.client.HTTPConnection(self._runtime_api, timeout=self._register_timeout)
        try:
            body = json.dumps({"errorMessage": message[:1000], "errorType": error_type, "stackTrace": []})
            conn.request(
                "POST",
                f"{API_PREFIX}/{kind}/error",
                body=body.encode(),
                headers={
                    "Lambda-Extension-Identifier": self._identifier,
                    "Lambda-Extension-Function-Error-Type": error_type,
                    "Content-Type": "application/json",
                },
            )
            conn.getresponse().read()
        except (OSError, http.client.HTTPException) as exc:
            log.error("Lambda extension: could not report %s error (%s)", kind, exc)
        finally:
            conn.close()
