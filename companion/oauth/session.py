"""What every login flow is handed: the user's terminal and browser, a clock, and one HTTP client for the
provider's endpoints; plus the one error a flow raises and the way it calls those endpoints.

Each provider URL goes through `shared.providers.oauth.endpoint()` before it is called, so tests (and an owner
who sets `OMNIROUTE_OAUTH_HOSTS`) can move a provider's hosts to fakes on loopback. Identifiers that are only
compared by the provider (`redirect_uri`) are never rewritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from shared.providers.oauth import Body, endpoint

JSONObject = dict[str, Any]
CALL_TIMEOUT_SECONDS = 30.0


class LinkError(Exception):
    """A login that cannot finish, with a one-line message for the user and the exit code to leave with
    (1: the provider or the user said no, or the flow failed; 2: the command was used wrongly)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class FlowOptions:
    """The command line's say over a flow. `timeout`: seconds to wait for the browser's callback (default
    300) or for a device code's approval (default: until the code expires)."""

    paste: bool = False
    open_browser: bool = True
    port: int | None = None
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class LinkContext:
    """The world a flow talks to. `browser` opens a URL in the user's browser (None: this machine has none
    that can show a sign-in page); `ask` reads one line the user types or pastes."""

    http: httpx.Client
    say: Callable[[str], None]
    ask: Callable[[str], str]
    browser: Callable[[str], bool] | None = None
    sleep: Callable[[float], None] = field(default=time.sleep)
    now: Callable[[], float] = field(default=time.time)


@dataclass(frozen=True, slots=True)
class Reply:
    """A provider's answer: status and JSON object (empty when the body was not one)."""

    status: int
    body: JSONObject

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def __repr__(self) -> str:  # bodies carry tokens
        return f"Reply(status={self.status})"


def new_http_client() -> httpx.Client:
    """The client for provider calls. The environment's proxy settings apply (a provider's sign-in may only
    be reachable through the owner's proxy); the admin API is called by `AdminClient`, which ignores them."""
    return httpx.Client(timeout=CALL_TIMEOUT_SECONDS, follow_redirects=False)


def host_of(url: str) -> str:
    return urlsplit(url).netloc or url


def call(
    ctx: LinkContext,
    method: str,
    url: str,
    *,
    form: Mapping[str, str] | None = None,
    json: object = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """Call a provider endpoint (`url` as the rows name it; rewritten by `endpoint()` here)."""
    sent = {"accept": "application/json", **{k.lower(): v for k, v in (headers or {}).items()}}
    try:
        response = ctx.http.request(method, endpoint(url), data=form, json=json, headers=sent)
    except httpx.TransportError as exc:
        raise LinkError(f"cannot reach {host_of(url)} ({type(exc).__name__}); check the network and try again") from exc
    try:
        payload = response.json()
    except ValueError:
        payload = None
    return Reply(response.status_code, payload if isinstance(payload, dict) else {})


def post(
    ctx: LinkContext, url: str, fields: Mapping[str, Any], body: Body, headers: Mapping[str, str] | None = None
) -> Reply:
    """POST `fields` as a form or a JSON object, as the endpoint wants."""
    if body == Body.JSON:
        return call(ctx, "POST", url, json=dict(fields), headers=headers)
    return call(ctx, "POST", url, form={k: str(v) for k, v in fields.items()}, headers=headers)


def error_text(reply: Reply) -> str:
    """The provider's own words for a failure: `error` and `error_description` (OAuth, AWS), or a `message`;
    never the whole body. Cut short: it is shown to the user."""
    body = reply.body
    error = body.get("error")
    if isinstance(error, dict):  # Google's {"error": {"code", "message", "status"}}
        error = error.get("status") or error.get("message")
    parts = [str(p) for p in (error, body.get("error_description") or body.get("message")) if p]
    text = ": ".join(parts) or "no error details"
    return f"HTTP {reply.status}, {text[:300]}"
