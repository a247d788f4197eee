"""The one-shot callback server a browser login comes back to: `http://<host>:<port><path>?code=…&state=…`.

It binds 127.0.0.1 on the first free port of the provider's registered ones (a provider accepts only the
redirect URIs registered for its client, so another port would be refused at the authorize step), answers
the first request on the redirect path with a small page the user can close, and hands the code to the flow
only when `state` is the one this login sent. A wrong state, a denied consent or any other error the provider
reports ends the login: the code, if any, is never exchanged. Any other path gets a 404 and is ignored
(browsers ask for /favicon.ico).
"""

from __future__ import annotations

import errno
import html
import queue
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs, urlsplit

from companion.oauth.session import LinkError

BIND_HOST = "127.0.0.1"
DEFAULT_TIMEOUT_SECONDS = 300.0
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>OmniRoute: {title}</title></head>
<body style="font-family: system-ui, sans-serif; margin: 3em auto; max-width: 36em">
<h1>{title}</h1><p>{text}</p><p>You can close this tab and return to the terminal.</p></body></html>
"""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the callback brought: a code (state already checked), or why the login failed."""

    code: str | None = None
    failure: LinkError | None = None

    def __repr__(self) -> str:
        return f"Outcome(code={'<redacted>' if self.code else None}, failure={self.failure!r})"


def judge(query: str, expected_state: str) -> tuple[Outcome, int, str, str]:
    """The outcome of a callback's query string, and the (status, title, text) of the page to answer."""
    params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    error = params.get("error")
    if error == "access_denied":
        text = "Access was not granted in the browser; nothing was linked."
        return Outcome(failure=LinkError(text)), 200, "Sign-in cancelled", text
    if error:
        detail = params.get("error_description") or ""
        text = f"The provider answered {error}{': ' + detail if detail else ''}; nothing was linked."
        return Outcome(failure=LinkError(text[:400])), 400, "Sign-in failed", text[:400]
    if params.get("state") != expected_state:
        text = (
            "This answer does not belong to the login waiting in the terminal (its state differs), so its code "
            "was not used and nothing was linked. Run the login again."
        )
        return Outcome(failure=LinkError("state mismatch: " + text)), 400, "Sign-in refused", text
    code = params.get("code")
    if not code:
        text = "The provider came back without an authorization code; nothing was linked."
        return Outcome(failure=LinkError(text)), 400, "Sign-in failed", text
    return Outcome(code=code), 200, "Signed in", "OmniRoute received the sign-in and is linking the account."


class _Server(ThreadingHTTPServer):
    # Linux refuses SO_REUSEADDR binds over a listener, so this only lets a quick second run reuse a port
    # still in TIME_WAIT; on Windows it would let two servers share the port.
    allow_reuse_address = sys.platform != "win32"
    daemon_threads = True

    def __init__(self, port: int, path: str, state: str) -> None:
        self.path = path
        self.state = state
        self.outcomes: queue.Queue[Outcome] = queue.Queue()
        self.answered = False
        self.lock = threading.Lock()
        super().__init__((BIND_HOST, port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a browser's idle preconnect must not hold a thread forever

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        server = self.server
        with server.lock:
            first = parts.path == server.path and not server.answered
            server.answered = server.answered or first
        if not first:
            self._answer(404, "Not found", "This address only takes the sign-in callback.")
            return
        outcome, status, title, text = judge(parts.query, server.state)
        self._answer(status, title, text)
        server.outcomes.put(outcome)

    def _answer(self, status: int, title: str, text: str) -> None:
        page = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode()
        self.send_response(status)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(page)))
        self.send_header("cache-control", "no-store")
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the request line carries the authorization code."""


class CallbackServer:
    """A bound callback server; `wait()` serves until the callback comes. Use it as a context manager."""

    def __init__(self, port: int, path: str, state: str) -> None:
        self._server = _Server(port, path, state)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"oauth-callback-{self.port}"
        )
        self._thread.daemon = True
        self._thread.start()

    def wait(self, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> str:
        """The authorization code, or LinkError (denied, wrong state, provider error, no answer in time)."""
        try:
            outcome = self._server.outcomes.get(timeout=timeout)
        except queue.Empty:
            raise LinkError(
                f"no answer from the browser within {timeout:g} s; run the login again (--timeout gives more time)"
            ) from None
        if outcome.failure is not None:
            raise outcome.failure
        assert outcome.code is not None
        return outcome.code

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _ports_text(ports: tuple[int, ...]) -> str:
    if len(ports) == 1:
        return f"port {ports[0]} is"
    return "ports " + ", ".join(str(p) for p in ports[:-1]) + f" and {ports[-1]} are"


def bind_callback(ports: tuple[int, ...], path: str, state: str, *, busy_hint: str) -> CallbackServer:
    """A callback server on the first free port of `ports`, tried in order. All taken: LinkError naming them
    and `busy_hint` (what the user can do instead)."""
    for port in ports:
        try:
            return CallbackServer(port, path, state)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise LinkError(f"cannot listen on {BIND_HOST}:{port} for the sign-in callback: {exc.strerror}") from exc
    raise LinkError(f"{_ports_text(ports)} in use on {BIND_HOST}, so the sign-in cannot come back here; {busy_hint}")
