"""A fake of the three subscription usage endpoints the quota poll reads, over real HTTP on loopback.

    GET /api/oauth/usage          Claude: `Authorization: Bearer <token>` and `anthropic-beta` naming
                                  `oauth-2025-04-20`, else 401 in Anthropic's error envelope
    GET /backend-api/wham/usage   Codex: `Authorization: Bearer <token>`, else 401 `{"detail": ...}`
    GET /copilot_internal/user    Copilot: `Authorization: token <github token>` (GitHub takes `Bearer` as
                                  well), else 401 `{"message": "Bad credentials", ...}`
    /_fake/requests, /_fake/script, /_fake/health   the control plane every fake shares (tests.fakes.control)

One server serves all three, so a test points every connection's base URL at it. Accounts are scripted per
endpoint and token (`state.account("claude", token, document)`); an unknown token is refused as the real
service refuses an expired one. The documents are the real shapes (see the builders below and the sources
cited in `shared.domain.live_quota`).

Failure injection, per token (`state.fail(token, directive)`, every request of that token until
`state.heal(token)`) or for the next request of any token (`POST /_fake/script`), with the directives of
the OpenAI fake (`tests.fakes.openai_upstream.Directive`):
    {"status": 503}                       that status (a JSON error body unless `body` is given)
    {"status": 200, "body": "<html>"}     a body that is not JSON
    {"delay_ms": 300}                     answer normally, late
    {"fault": "hang"}                     never answer; {"fault": "cut-before-body"}: headers, then a cut
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.control import fake_app
from tests.fakes.openai_upstream import Directive, FakeUpstreamState, RecordedRequest, paced_response, pacing_for

JSONObject = dict[str, Any]

CLAUDE_PATH: Final = "/api/oauth/usage"
CODEX_PATH: Final = "/backend-api/wham/usage"
COPILOT_PATH: Final = "/copilot_internal/user"
OAUTH_BETA: Final = "oauth-2025-04-20"
KINDS: Final = ("claude", "codex", "github")


# ----- documents in the real shapes --------------------------------------------------------------------------


def claude_usage(
    five_hour: float | None = 12.0,
    seven_day: float | None = 34.0,
    *,
    five_hour_resets: str | None = "2026-03-01T05:00:00.123456+00:00",
    seven_day_resets: str | None = "2026-03-05T00:00:00+00:00",
    **model_windows: tuple[float, str | None] | None,
) -> JSONObject:
    """`/api/oauth/usage`: utilization in percent, ISO 8601 resets, null windows the plan lacks, and an
    `extra_usage` pool (cents). `model_windows`: e.g. `seven_day_opus=(100.0, "2026-03-05T00:00:00Z")`."""

    def window(used: float | None, resets: str | None) -> JSONObject | None:
        return None if used is None else {"utilization": used, "resets_at": resets}

    doc: JSONObject = {
        "five_hour": window(five_hour, five_hour_resets),
        "seven_day": window(seven_day, seven_day_resets),
        "seven_day_oauth_apps": None,
        "seven_day_opus": None,
        "seven_day_sonnet": None,
        "iguana_necktie": None,
        "extra_usage": {"is_enabled": False, "monthly_limit": None, "used_credits": None, "utilization": None},
    }
    for key, value in model_windows.items():
        doc[key] = None if value is None else window(*value)
    return doc


def codex_window(used: int, seconds: int, reset_at: int, reset_after: int) -> JSONObject:
    return {
        "used_percent": used,
        "limit_window_seconds": seconds,
        "reset_after_seconds": reset_after,
        "reset_at": reset_at,
    }


def codex_usage(
    primary: JSONObject | None, secondary: JSONObject | None, *, limit_reached: bool = False, plan: str = "plus"
) -> JSONObject:
    """`wham/usage`: integer percents, window lengths and resets in seconds (codex-rs backend models)."""
    return {
        "plan_type": plan,
        "rate_limit": {
            "allowed": not limit_reached,
            "limit_reached": limit_reached,
            "primary_window": primary,
            "secondary_window": secondary,
        },
        "code_review_rate_limit": None,
        "credits": {"has_credits": False, "unlimited": False, "balance": "0"},
    }


def copilot_snapshot(
    entitlement: float, remaining: float, *, unlimited: bool = False, overage_permitted: bool = False, quota_id: str
) -> JSONObject:
    percent = 100.0 if unlimited or entitlement <= 0 else remaining / entitlement * 100
    return {
        "entitlement": entitlement,
        "remaining": remaining,
        "quota_remaining": remaining,
        "percent_remaining": percent,
        "unlimited": unlimited,
        "overage_count": 0,
        "overage_permitted": overage_permitted,
        "quota_id": quota_id,
    }


def copilot_paid(premium_remaining: float = 240, *, reset_date: str = "2026-04-01", **kw: Any) -> JSONObject:
    """`copilot_internal/user` of a paid plan (Pro: 300 premium requests, unlimited chat and completions)."""
    return {
        "login": "octocat",
        "access_type_sku": "plus_monthly_subscriber_quota",
        "copilot_plan": "individual",
        "chat_enabled": True,
        "quota_reset_date": reset_date,
        "quota_snapshots": {
            "chat": copilot_snapshot(0, 0, unlimited=True, quota_id="chat"),
            "completions": copilot_snapshot(0, 0, unlimited=True, quota_id="completions"),
            "premium_interactions": copilot_snapshot(300, premium_remaining, quota_id="premium_interactions", **kw),
        },
    }


def copilot_free(chat_left: int = 410, completions_left: int = 4000, *, reset_date: str = "2026-03-11") -> JSONObject:
    """`copilot_internal/user` of the free plan: what is left (`limited_user_quotas`) of the monthly quotas."""
    return {
        "login": "octocat",
        "access_type_sku": "free_limited_copilot",
        "copilot_plan": "individual",
        "limited_user_quotas": {"chat": chat_left, "completions": completions_left},
        "monthly_quotas": {"chat": 500, "completions": 4000},
        "limited_user_reset_date": reset_date,
    }


# ----- the server ------------------------------------------------------------------------------------------------


class FakeQuotaError(Exception):
    def __init__(self, status: int, payload: object, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(str(payload))
        self.status = status
        self.payload = payload
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return Response(orjson.dumps(self.payload), self.status, self.headers, media_type="application/json")


def _anthropic_error(status: int, type_: str, message: str) -> FakeQuotaError:
    payload = {"type": "error", "error": {"type": type_, "message": message}, "request_id": "req_fake"}
    return FakeQuotaError(status, payload)


def _error_for(kind: str, status: int, message: str) -> FakeQuotaError:
    """An error in the shape of the service behind `kind`."""
    if kind == "claude":
        return _anthropic_error(status, "authentication_error" if status == 401 else "api_error", message)
    if kind == "github":
        return FakeQuotaError(status, {"message": message, "documentation_url": "https://docs.github.com/rest"})
    return FakeQuotaError(status, {"detail": message})


@dataclass
class QuotaEndpointsState(FakeUpstreamState):
    """The control plane's state plus the scripted accounts: documents by (endpoint, token) and failures
    by token."""

    documents: dict[tuple[str, str], Any] = field(default_factory=dict)
    failures: dict[str, Directive] = field(default_factory=dict)

    def account(self, kind: str, token: str, document: Any) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        self.documents[(kind, token)] = document

    def fail(self, token: str, directive: Mapping[str, Any]) -> None:
        self.failures[token] = Directive.from_json(dict(directive))

    def heal(self, token: str) -> None:
        self.failures.pop(token, None)

    def clear_accounts(self) -> None:
        self.documents.clear()
        self.failures.clear()


def _token(request: Request, schemes: tuple[str, ...]) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() in schemes and token else None


class _Handlers:
    def __init__(self, state: QuotaEndpointsState) -> None:
        self.state = state

    def _record(self, request: Request) -> None:
        if self.state.record:
            self.state.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.url.path,
                    query=request.url.query,
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=None,
                )
            )

    async def _serve(self, request: Request, kind: str, token: str | None) -> Response:
        directive = self.state.next_directive()
        if directive is None and token is not None:
            directive = self.state.failures.get(token)
        if directive is not None:
            if directive.delay_ms > 0:
                await asyncio.sleep(directive.delay_ms / 1000)
            if directive.status is not None:
                return self._canned(kind, directive)
            if directive.fault is not None and directive.fault.kind == "error":
                return _error_for(kind, directive.fault.value, f"Injected failure {directive.fault.value}.").response()
            if directive.fault is not None:
                pacing = await pacing_for(directive.fault)
                if not pacing.delivers:
                    return paced_response([b"{}"], {"content-type": "application/json"}, pacing)
        document = self.state.documents.get((kind, token)) if token is not None else None
        if document is None:
            raise self._unauthorized(kind)
        return Response(orjson.dumps(document), media_type="application/json")

    @staticmethod
    def _canned(kind: str, directive: Directive) -> Response:
        status = directive.status
        assert status is not None
        if directive.body is None:
            if status < 400:
                return Response(b"", status, directive.headers)
            return _error_for(kind, status, f"Injected failure {status}.").response()
        content = directive.body.encode() if isinstance(directive.body, str) else orjson.dumps(directive.body)
        return Response(content, status, {"content-type": "application/json", **directive.headers})

    @staticmethod
    def _unauthorized(kind: str) -> FakeQuotaError:
        if kind == "claude":
            return _anthropic_error(401, "authentication_error", "Invalid bearer token")
        if kind == "github":
            return _error_for(kind, 401, "Bad credentials")
        return _error_for(kind, 401, "Could not parse your authentication token. Please try signing in again.")

    async def claude(self, request: Request) -> Response:
        self._record(request)
        betas = {b.strip() for b in request.headers.get("anthropic-beta", "").split(",")}
        if OAUTH_BETA not in betas:
            # What api.anthropic.com says to an OAuth token sent without the OAuth beta.
            raise _anthropic_error(401, "authentication_error", "OAuth authentication is currently not supported.")
        return await self._serve(request, "claude", _token(request, ("bearer",)))

    async def codex(self, request: Request) -> Response:
        self._record(request)
        return await self._serve(request, "codex", _token(request, ("bearer",)))

    async def copilot(self, request: Request) -> Response:
        self._record(request)
        return await self._serve(request, "github", _token(request, ("token", "bearer")))


async def _error_handler(request: Request, exc: Exception) -> Response:
    if isinstance(exc, FakeQuotaError):
        return exc.response()
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return FakeQuotaError(status, {"message": f"{request.method} {request.url.path}: HTTP {status}"}).response()


def create_app(*, record: bool = True) -> Any:
    """A fresh fake with its own state, reachable in-process as `app.state.fake` (a QuotaEndpointsState)."""
    state = QuotaEndpointsState(record=record)
    handlers = _Handlers(state)
    return fake_app(
        state,
        [
            Route(CLAUDE_PATH, handlers.claude, methods=["GET"]),
            Route(CODEX_PATH, handlers.codex, methods=["GET"]),
            Route(COPILOT_PATH, handlers.copilot, methods=["GET"]),
        ],
        error_type=FakeQuotaError,
        error_handler=_error_handler,
        bad_request=lambda message: FakeQuotaError(400, {"message": message}),
    )
