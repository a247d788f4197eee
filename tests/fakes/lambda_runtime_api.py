"""A fake of Lambda's Extensions API (2020-01-01) on loopback, for the gateway's internal extension.

It checks what Lambda checks (the rules of Lambda's own API server, open-sourced as
aws/aws-lambda-runtime-interface-emulator, `rapi/handler/agentregister.go`): a non-empty
`Lambda-Extension-Name`, a JSON body whose `events` an internal extension may only be `INVOKE` (an external
one, named after a file in /opt/extensions, may also take `SHUTDOWN`), no name registered twice, at most 10
extensions, and no registration once closed (Lambda closes it when the runtime first calls
`/runtime/invocation/next`; `close_registration()` plays that moment). Errors are 403 with
`{"errorMessage", "errorType"}` as Lambda sends them.

`GET .../event/next` records when each call arrives (`next_calls`, `time.monotonic()`, the same clock as the
test's) and then blocks, as Lambda's does, until the test hands out an event with `invoke()`. After an
extension reported `init/error` or `exit/error` none of its calls succeed.

A threaded `http.server` rather than `ServerThread`: `next` is a long poll the test thread releases, which
is a plain `threading.Condition` here.

    with FakeExtensionsApi() as api:
        guard.start(api.runtime_api)
        api.invoke(deadline_in=3.0)
        api.wait_for_next_calls(2)
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

PREFIX = "/2020-01-01/extension"
MAX_EXTENSIONS = 10


@dataclass(frozen=True)
class Registration:
    name: str
    events: tuple[str, ...]
    identifier: str
    external: bool
    accept_feature: str | None


@dataclass(frozen=True)
class NextCall:
    identifier: str
    at: float  # time.monotonic() when the request arrived


@dataclass(frozen=True)
class Delivery:
    identifier: str
    event: dict[str, Any]
    at: float  # time.monotonic() when the event was handed to the extension


@dataclass(frozen=True)
class ErrorReport:
    kind: str  # "init" or "exit"
    identifier: str
    error_type: str
    body: bytes


class _ApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


class FakeExtensionsApi:
    def __init__(
        self,
        *,
        function_name: str = "omniroute-gateway",
        external_extensions: tuple[str, ...] = ("lambda-adapter",),
        host: str = "127.0.0.1",
    ) -> None:
        self.function_name = function_name
        self.external_extensions = external_extensions
        self._host = host
        self._changed = threading.Condition()
        self._registrations: dict[str, Registration] = {}  # by identifier
        self._queues: dict[str, list[dict[str, Any]]] = {}
        self._failed: set[str] = set()  # identifiers that reported an error
        self._next_calls: list[NextCall] = []
        self._deliveries: list[Delivery] = []
        self._errors: list[ErrorReport] = []
        self._next_failures: list[int] = []  # statuses the next `next` calls answer with
        self._registration_open = True
        self._stopping = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- what the test reads ------------------------------------------------------------------------

    @property
    def runtime_api(self) -> str:
        """`host:port`, as Lambda sets `AWS_LAMBDA_RUNTIME_API`."""
        if self._server is None:
            raise RuntimeError("FakeExtensionsApi is not started")
        return f"{self._host}:{self._server.server_address[1]}"

    @property
    def registrations(self) -> list[Registration]:
        with self._changed:
            return list(self._registrations.values())

    @property
    def next_calls(self) -> list[NextCall]:
        with self._changed:
            return list(self._next_calls)

    @property
    def deliveries(self) -> list[Delivery]:
        with self._changed:
            return list(self._deliveries)

    @property
    def errors(self) -> list[ErrorReport]:
        with self._changed:
            return list(self._errors)

    def wait_for_next_calls(self, count: int, timeout: float = 5.0) -> list[NextCall]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._next_calls) >= count, timeout):
                raise TimeoutError(f"{len(self._next_calls)} event/next calls, expected {count}")
            return list(self._next_calls)

    def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._deliveries) >= count, timeout):
                raise TimeoutError(f"{len(self._deliveries)} events delivered, expected {count}")
            return list(self._deliveries)

    def wait_for_errors(self, count: int, timeout: float = 5.0) -> list[ErrorReport]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._errors) >= count, timeout):
                raise TimeoutError(f"{len(self._errors)} error reports, expected {count}")
            return list(self._errors)

    # -- what the test scripts ----------------------------------------------------------------------

    def invoke(self, *, deadline_in: float = 3.0, request_id: str | None = None) -> dict[str, Any]:
        """Start an invocation: queue its INVOKE event for every extension subscribed to INVOKE."""
        trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
        event: dict[str, Any] = {
            "eventType": "INVOKE",
            "deadlineMs": int((time.time() + deadline_in) * 1000),  # epoch milliseconds, as Lambda sends it
            "requestId": request_id or str(uuid.uuid4()),
            "invokedFunctionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}",
            "tracing": {"type": "X-Amzn-Trace-Id", "value": trace},
        }
        with self._changed:
            for identifier, registration in self._registrations.items():
                if "INVOKE" in registration.events:
                    self._queues[identifier].append(event)
            self._changed.notify_all()
        return event

    def close_registration(self) -> None:
        """What Lambda does when the runtime first calls /runtime/invocation/next: Init is over."""
        with self._changed:
            self._registration_open = False

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next `times` event/next calls with `status` (500 is Lambda's "container error")."""
        with self._changed:
            self._next_failures.extend([status] * times)

    # -- the API --------------------------------------------------------------------------------------

    def _register(self, name: str, body: bytes, accept_feature: str | None) -> tuple[str, dict[str, Any]]:
        if not name:
            raise _ApiError(403, "Extension.InvalidExtensionName", "Empty extension name")
        try:
            parsed = json.loads(body)
        except ValueError as exc:
            raise _ApiError(403, "InvalidRequestFormat", str(exc)) from None
        if not isinstance(parsed, dict):
            raise _ApiError(403, "InvalidRequestFormat", "the body is not a JSON object")
        events = parsed.get("events") or []
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise _ApiError(403, "InvalidRequestFormat", "events must be an array of strings")
        external = name in self.external_extensions
        allowed = {"INVOKE", "SHUTDOWN"} if external else {"INVOKE"}
        for event in events:
            if event not in allowed:
                reason = "not supported for internal extensions" if event == "SHUTDOWN" else "unknown event"
                raise _ApiError(403, "Extension.InvalidEventType", f"{event}: {reason}")
        with self._changed:
            if not self._registration_open:
                raise _ApiError(403, "Extension.RegistrationClosed", "Extension registration closed already")
            if any(r.name == name for r in self._registrations.values()):
                raise _ApiError(403, "Extension.InvalidExtensionState", "Extension with this name already registered")
            if len(self._registrations) >= MAX_EXTENSIONS:
                raise _ApiError(403, "Extension.TooManyExtensions", f"Extension limit ({MAX_EXTENSIONS}) reached")
            identifier = str(uuid.uuid4())
            self._registrations[identifier] = Registration(name, tuple(events), identifier, external, accept_feature)
            self._queues[identifier] = []
            self._changed.notify_all()
        answer: dict[str, Any] = {"functionName": self.function_name, "functionVersion": "$LATEST", "handler": "run.sh"}
        features = {f.strip() for f in (accept_feature or "").split(",")}
        if "accountId" in features:
            answer["accountId"] = "123456789012"
        return identifier, answer

    def _known(self, identifier: str | None) -> str:
        """Checks every call after registration makes (called with the lock held)."""
        if not identifier:
            raise _ApiError(403, "Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header")
        if identifier not in self._registrations:
            raise _ApiError(403, "Extension.UnknownExtensionIdentifier", f"Unknown extension {identifier}")
        if identifier in self._failed:
            raise _ApiError(403, "Extension.InvalidExtensionState", "the extension already reported an error")
        return identifier

    def _next(self, identifier: str | None) -> dict[str, Any] | None:
        """Block until an event is queued for the extension; None when the fake is stopping."""
        with self._changed:
            known = self._known(identifier)
            self._next_calls.append(NextCall(known, time.monotonic()))
            self._changed.notify_all()
            if self._next_failures:
                status = self._next_failures.pop(0)
                raise _ApiError(status, "Runtime.ContainerError" if status >= 500 else "Extension.Error", "scripted")
            self._changed.wait_for(lambda: self._stopping or bool(self._queues[known]))
            if self._stopping:
                return None
            event = self._queues[known].pop(0)
            self._deliveries.append(Delivery(known, event, time.monotonic()))
            self._changed.notify_all()
            return event

    def _error(self, kind: str, identifier: str | None, error_type: str | None, body: bytes) -> None:
        with self._changed:
            known = self._known(identifier)
            if not error_type:
                raise _ApiError(400, "Extension.MissingHeader", "Missing Lambda-Extension-Function-Error-Type header")
            self._errors.append(ErrorReport(kind, known, error_type, body))
            self._failed.add(known)
            self._changed.notify_all()

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("FakeExtensionsApi can only be started once")
        server = _Server((self._host, 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-extensions-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()  # releases handlers blocked in `next`
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeExtensionsApi

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up while its `next` is blocked (the guard stopping) is not a fault.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the guard reuses its connection for `next`
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, error: _ApiError) -> None:
        self._send(error.status, {"errorMessage": str(error), "errorType": error.error_type})

    def do_POST(self) -> None:
        fake = self.server.fake
        body = self._body()
        identifier = self.headers.get("Lambda-Extension-Identifier")
        try:
            if self.path == f"{PREFIX}/register":
                new_id, answer = fake._register(
                    self.headers.get("Lambda-Extension-Name", ""),
                    body,
                    self.headers.get("Lambda-Extension-Accept-Feature"),
                )
                self._send(200, answer, {"Lambda-Extension-Identifier": new_id})
            elif self.path in (f"{PREFIX}/init/error", f"{PREFIX}/exit/error"):
                kind = self.path.removeprefix(PREFIX + "/").split("/")[0]
                fake._error(kind, identifier, self.headers.get("Lambda-Extension-Function-Error-Type"), body)
                self._send(202, {"status": "OK"}, {"Lambda-Extension-Identifier": identifier or ""})
            else:
                self._send(404, {"errorMessage": f"no route {self.path}", "errorType": "NotFound"})
        except _ApiError as exc:
            self._send_error(exc)

    def do_GET(self) -> None:
        fake = self.server.fake
        if self.path != f"{PREFIX}/event/next":
            self._send(404, {"errorMessage": f"no route {self.path}", "errorType": "NotFound"})
            return
        identifier = self.headers.get("Lambda-Extension-Identifier")
        try:
            event = fake._next(identifier)
        except _ApiError as exc:
            self._send_error(exc)
            return
        if event is None:  # stopping: hang up, as a dying environment would
            self.close_connection = True
            return
        self._send(200, event, {"Lambda-Extension-Event-Identifier": str(uuid.uuid4())})
