"""A fake OAuth token service with rotating, single-use refresh tokens grouped in token families, over real HTTP.

What it enforces is what makes refreshing hard (OpenAI's behaviour, the strictest: openai/codex#17340,
CLIProxyAPI#3783): a refresh token works once and the answer carries its successor; presenting a spent one
answers 400 `{"error": "refresh_token_reused"}` AND revokes the whole family, so every token of it, the
newest included, stops working. A family that does not rotate (Google, Copilot's GitHub token) keeps its
refresh token and sends none back.

    POST <any path>                  a refresh, in whichever shape the body has:
        form or JSON `grant_type=refresh_token, refresh_token, client_id, client_secret?, scope?`  (OAuth 2)
            → {access_token, token_type, expires_in, refresh_token?, id_token?}
        JSON `{clientId, clientSecret, refreshToken, grantType: "refresh_token"}`              (AWS SSO-OIDC)
            → {accessToken, tokenType, expiresIn, refreshToken?}
        JSON `{refreshToken}`                                                                 (Kiro social)
            → {accessToken, expiresIn, refreshToken?, profileArn?}
    GET /copilot_internal/v2/token   `Authorization: token <GitHub token>` → {token, expires_at, refresh_in,
                                     endpoints: {api}, sku}; an unknown or revoked token → 401 Bad credentials

Errors use RFC 6749's `{"error", "error_description"}`: an unknown or revoked token `invalid_grant`, the wrong
client `invalid_client` (401). Failures are scripted per call (`state.fail_next(...)`) and answered before the
presented token is looked at (it stays valid): `{"status": 500}`, `{"status": 429, "retry_after": 30}`,
`{"status": 400, "error": "invalid_grant"}`. Every call is recorded (`state.calls`); `state.delay` and
`state.hold` (an Event) hold each answer back after the token was spent (to widen race windows, or to act
while a refresh is in flight), and `state.max_in_flight` says how many calls were ever open at once.
Tokens are random and fake; the tests point provider origins here with OMNIROUTE_OAUTH_HOSTS.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

COPILOT_PATH = "/copilot_internal/v2/token"
COPILOT_API = "https://api.individual.githubcopilot.com"


def fake_jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT carrying `claims` (what a provider's id token looks like to a reader that does not verify)."""

    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(doc)).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.fake-signature"


@dataclass
class Family:
    """One login's tokens: every refresh token it ever issued, the access tokens, and whether it was revoked."""

    id: str
    rotates: bool
    returns_refresh: bool
    expires_in: int
    client_id: str | None = None
    client_secret: str | None = None
    id_claims: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    revoked: str | None = None  # why, once revoked
    refresh_tokens: list[str] = field(default_factory=list)  # oldest first; the last is current
    access_tokens: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Call:
    path: str
    shape: str  # oauth2 | aws-oidc | kiro-social | copilot
    status: int
    fields: dict[str, Any]
    headers: dict[str, str]
    content_type: str


class TokenServerState:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.families: dict[str, Family] = {}
        self._owner: dict[str, str] = {}  # refresh token → family id
        self._spent: set[str] = set()
        self.calls: list[Call] = []
        self.script: deque[dict[str, Any]] = deque()
        self.delay = 0.0
        self.hold: threading.Event | None = None  # when set: answers wait until the event is set
        self.in_flight = 0
        self.max_in_flight = 0
        self.copilot_api = COPILOT_API
        self._lock = threading.Lock()

    # ----- set-up -------------------------------------------------------------------------------------

    def family(
        self,
        *,
        rotates: bool = True,
        returns_refresh: bool | None = None,
        expires_in: int = 3600,
        client_id: str | None = None,
        client_secret: str | None = None,
        id_claims: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        prefix: str = "rt",
    ) -> str:
        """Start a family (a login) and return its first refresh token. `returns_refresh` defaults to `rotates`."""
        fid = f"fam-{secrets.token_hex(4)}"
        fam = Family(
            fid,
            rotates,
            rotates if returns_refresh is None else returns_refresh,
            expires_in,
            client_id,
            client_secret,
            id_claims,
            dict(extra or {}),
        )
        with self._lock:
            self.families[fid] = fam
            return self._new_refresh(fam, prefix)

    def fail_next(self, *directives: dict[str, Any]) -> None:
        self.script.extend(directives)

    def revoke(self, refresh_token: str, why: str = "revoked by the test") -> None:
        with self._lock:
            self.families[self._owner[refresh_token]].revoked = why

    # ----- what tests read -----------------------------------------------------------------------------

    def family_of(self, token: str) -> Family:
        fid = self._owner.get(token) or next(f.id for f in self.families.values() if token in f.access_tokens)
        return self.families[fid]

    def current_refresh_token(self, token: str) -> str:
        return self.family_of(token).refresh_tokens[-1]

    def is_valid_access(self, token: str) -> bool:
        fam = next((f for f in self.families.values() if token in f.access_tokens), None)
        return fam is not None and fam.revoked is None

    def refresh_calls(self, path: str | None = None) -> list[Call]:
        return [c for c in self.calls if path is None or c.path == path]

    # ----- the protocol --------------------------------------------------------------------------------

    def _new_refresh(self, fam: Family, prefix: str = "rt") -> str:
        token = f"{prefix}-{fam.id}-{len(fam.refresh_tokens)}-{secrets.token_hex(6)}"
        fam.refresh_tokens.append(token)
        self._owner[token] = fam.id
        return token

    def _new_access(self, fam: Family, prefix: str = "at") -> str:
        token = f"{prefix}-{fam.id}-{len(fam.access_tokens)}-{secrets.token_hex(6)}"
        fam.access_tokens.append(token)
        return token

    def redeem(
        self, refresh_token: str, client_id: str | None, client_secret: str | None
    ) -> tuple[int, Family | None, dict[str, Any]]:
        """Spend a refresh token: (status, family, reply fields in snake case) or an RFC 6749 error."""
        with self._lock:
            fid = self._owner.get(refresh_token)
            if fid is None:
                return 400, None, _error("invalid_grant", "The refresh token is not valid.")
            fam = self.families[fid]
            if fam.client_id is not None and client_id != fam.client_id:
                return 401, None, _error("invalid_client", "Unknown client.")
            if fam.client_secret is not None and client_secret != fam.client_secret:
                return 401, None, _error("invalid_client", "Client authentication failed.")
            if fam.revoked is not None:
                return 400, None, _error("invalid_grant", f"The refresh token was revoked ({fam.revoked}).")
            if refresh_token in self._spent:
                fam.revoked = "a spent refresh token was presented again"
                return 400, None, _error("refresh_token_reused", "This refresh token has already been used.")
            reply: dict[str, Any] = {"access_token": self._new_access(fam), "expires_in": fam.expires_in}
            if fam.rotates:
                self._spent.add(refresh_token)
                reply["refresh_token"] = self._new_refresh(fam)
            elif fam.returns_refresh:
                reply["refresh_token"] = refresh_token
            if fam.id_claims is not None:
                reply["id_token"] = fake_jwt(fam.id_claims)
            return 200, fam, reply


def _error(code: str, description: str) -> dict[str, Any]:
    return {"error": code, "error_description": description}


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type="application/json", headers=headers)


async def _fields(request: Request) -> tuple[dict[str, Any], str]:
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        doc = orjson.loads(raw) if raw else {}
        return (doc if isinstance(doc, dict) else {}), "json"
    return dict(parse_qsl(raw.decode())), "form"


def _shape(fields: dict[str, Any]) -> str:
    if "grant_type" in fields:
        return "oauth2"
    if "grantType" in fields:
        return "aws-oidc"
    return "kiro-social"


class _Flight:
    """Counts the calls open at once around one handler."""

    def __init__(self, state: TokenServerState) -> None:
        self.state = state

    async def __aenter__(self) -> None:
        self.state.in_flight += 1
        self.state.max_in_flight = max(self.state.max_in_flight, self.state.in_flight)

    async def __aexit__(self, *exc: object) -> None:
        self.state.in_flight -= 1


def _scripted(state: TokenServerState) -> Response | None:
    if not state.script:
        return None
    directive = state.script.popleft()
    status = int(directive.get("status", 500))
    headers = {"retry-after": str(directive["retry_after"])} if "retry_after" in directive else None
    body = _error(directive["error"], "Scripted failure.") if "error" in directive else {"error": "server_error"}
    return _json(body, status, headers)


async def refresh(request: Request) -> Response:
    state: TokenServerState = request.app.state.fake
    async with _Flight(state):
        fields, encoding = await _fields(request)
        shape = _shape(fields)
        answer = _scripted(state)
        if answer is None:
            answer = _refresh_answer(state, shape, fields)
        state.calls.append(
            Call(
                "/" + request.path_params["rest"],
                shape,
                answer.status_code,
                fields,
                dict(request.headers),
                encoding,
            )
        )
        await _held_back(state)
        return answer


async def _held_back(state: TokenServerState) -> None:
    """The provider has done its work; its answer is late (a slow network, or a test that acts meanwhile)."""
    if state.delay:
        await asyncio.sleep(state.delay)
    if state.hold is not None:
        await asyncio.to_thread(state.hold.wait, 10)


def _refresh_answer(state: TokenServerState, shape: str, fields: dict[str, Any]) -> Response:
    if shape == "oauth2":
        if fields.get("grant_type") != "refresh_token":
            return _json(_error("unsupported_grant_type", "Only refresh_token here."), 400)
        status, fam, reply = state.redeem(
            str(fields.get("refresh_token")), fields.get("client_id"), fields.get("client_secret")
        )
        if status != 200 or fam is None:
            return _json(reply, status)
        return _json({**reply, "token_type": "Bearer", **fam.extra})
    if shape == "aws-oidc":
        if fields.get("grantType") != "refresh_token":
            return _json(_error("unsupported_grant_type", "Only refresh_token here."), 400)
        status, fam, reply = state.redeem(
            str(fields.get("refreshToken")), fields.get("clientId"), fields.get("clientSecret")
        )
    else:
        status, fam, reply = state.redeem(str(fields.get("refreshToken")), None, None)
    if status != 200 or fam is None:
        return _json(reply, status)
    camel = {"accessToken": reply["access_token"], "expiresIn": reply["expires_in"]}
    if "refresh_token" in reply:
        camel["refreshToken"] = reply["refresh_token"]
    if shape == "aws-oidc":
        camel["tokenType"] = "Bearer"
    return _json({**camel, **fam.extra})


async def copilot_token(request: Request) -> Response:
    state: TokenServerState = request.app.state.fake
    async with _Flight(state):
        github = request.headers.get("authorization", "").removeprefix("token ").strip()
        answer = _scripted(state) or _copilot_answer(state, github)
        state.calls.append(Call(COPILOT_PATH, "copilot", answer.status_code, {}, dict(request.headers), ""))
        await _held_back(state)
        return answer


def _copilot_answer(state: TokenServerState, github: str) -> Response:
    fid = state._owner.get(github)
    fam = state.families.get(fid) if fid else None
    if fam is None or fam.revoked is not None:
        return _json({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, 401)
    expires = int(state.clock()) + fam.expires_in
    token = state._new_access(fam, prefix=f"tid={fam.id};exp={expires};sku=copilot_individual;proxy-ep")
    return _json(
        {
            "token": token,
            "expires_at": expires,
            "refresh_in": max(fam.expires_in - 300, 60),
            "endpoints": {"api": state.copilot_api, "proxy": "https://proxy.individual.githubcopilot.com"},
            "sku": "copilot_individual",
        }
    )


def create_app(state: TokenServerState | None = None) -> Starlette:
    app = Starlette(
        routes=[
            Route(COPILOT_PATH, copilot_token, methods=["GET"]),
            Route("/{rest:path}", refresh, methods=["POST"]),
        ]
    )
    app.state.fake = state or TokenServerState()
    return app
