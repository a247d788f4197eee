"""One fake authorization server for every linkable provider, over real HTTP on loopback, plus a fake browser.

Every provider origin the rows in `shared.providers.oauth` name (and the resource hosts the post-link steps
call) is mapped by `hosts_env()` to `<fake>/h/<host>`, the value tests give `OMNIROUTE_OAUTH_HOSTS`; the fake
thus knows which host each request was meant for, and takes its expectations from the same rows:

    browser rows   GET authorize: records the params, checks client id, response type, S256 challenge, scope,
                   the row's extra params and that `redirect_uri` is registered (a registered port, or a port a
                   test allowed with `allow_port`, or the row's paste page), then redirects the browser back
                   with code + state, with `error=access_denied` (consent "deny"), or with another state
                   (consent "wrong-state").
                   POST token: the row's body encoding (form or JSON), client id and secret, `state` echoed when
                   the row says so, the code known and unused, `redirect_uri` equal to the authorize step's, and
                   S256(code_verifier) equal to the challenge it saw, else 400 `invalid_grant`. Tokens come back
                   in the provider's shape (Claude's `account`/`organization`, Codex's id_token JWT with the
                   `https://api.openai.com/auth` claim, Kiro's camelCase with `profileArn`).
                   Claude's paste page shows `code#state`.
    device rows    RFC 8628 (GitHub answers its errors with HTTP 200, the others with 400), AWS SSO-OIDC
                   (register, device_authorization, token; camelCase JSON), ChatGPT's device login (403 while
                   pending, then an authorization code + verifier for a PKCE exchange); xAI's endpoints through
                   its OpenID configuration (the row's fallback device URL is not served). Each poll takes the
                   next answer of `device_script` ("pending", "slow_down", "expired", "denied", "success"; empty:
                   success) and is recorded in `polls`.
    resources      Copilot token exchange (needs `Authorization: token <ghu_>` and the editor headers), GitHub
                   /user, Google userinfo, Cloud Code Assist loadCodeAssist and onboardUser (the operation is
                   not done for the first `onboard_pending` calls).

Every token the fake issues is recorded with the reply it came in (`replies`), so a test can compare what the
target stored with what the provider gave.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import io
import json
import queue
import re
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from shared.providers import oauth as rows
from shared.providers.oauth import (
    OAUTH_PROVIDERS,
    Body,
    BrowserLogin,
    DeviceLogin,
    DeviceStyle,
    OAuthProvider,
    endpoint,
)
from tests.fakes.server import ServerThread, free_port

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PREFIX = "/h"
XAI_DEVICE_URL = "https://auth.x.ai/oauth2/device_authorization"  # what the fake's discovery document names
COPILOT_API = "https://api.individual.githubcopilot.com"
ONBOARDED_PROJECT = "fake-project-4711"
EXISTING_PROJECT = "existing-project-42"
JSONObject = dict[str, Any]
Handler = Callable[[Request, str], Awaitable[Response]]


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def make_jwt(claims: JSONObject) -> str:
    def part(doc: JSONObject) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{secrets.token_urlsafe(16)}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def provider_origins() -> set[str]:
    """Every https origin the rows and the post-link constants name."""
    urls = {v for k, v in vars(rows).items() if k.isupper() and isinstance(v, str) and v.startswith("https://")}
    for provider in OAUTH_PROVIDERS:
        urls.add(provider.refresh.url)
        for method in provider.methods:
            login = method.login
            urls.update(
                v for f in fields(login) if isinstance(v := getattr(login, f.name), str) and v.startswith("https://")
            )
    return {_origin(u) for u in urls}


def hosts_env(base_url: str) -> str:
    """The OMNIROUTE_OAUTH_HOSTS value that sends every provider origin to this fake at `base_url`."""
    return json.dumps({o: f"{base_url}{PREFIX}/{urlsplit(o).netloc}" for o in sorted(provider_origins())})


# ----- state ---------------------------------------------------------------------------------------------


@dataclass
class IssuedCode:
    provider: str
    login: BrowserLogin
    challenge: str
    redirect_uri: str
    state: str | None
    client_id: str


@dataclass
class Poll:
    host: str
    at: float
    answer: str


@dataclass
class OAuthFakeState:
    consent: str = "approve"  # approve | deny | wrong-state
    interval: int = 0  # the device interval the fake announces
    device_script: list[str] = field(default_factory=list)
    onboard_pending: int = 1
    code_assist_project: str | None = None  # None: the account must be onboarded
    allowed_ports: set[int] = field(default_factory=set)
    authorize_requests: list[JSONObject] = field(default_factory=list)
    token_requests: list[JSONObject] = field(default_factory=list)
    polls: list[Poll] = field(default_factory=list)
    onboard_calls: list[JSONObject] = field(default_factory=list)
    load_calls: list[JSONObject] = field(default_factory=list)
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (method, host, path)
    replies: list[tuple[str, JSONObject]] = field(default_factory=list)  # (provider id, token reply)
    codes: dict[str, IssuedCode] = field(default_factory=dict)
    access: dict[str, str] = field(default_factory=dict)  # access token → provider id
    clients: dict[str, str] = field(default_factory=dict)  # AWS client id → secret
    devices: dict[str, str] = field(default_factory=dict)  # device code / id → user code

    def allow_port(self, port: int) -> None:
        """Accept redirects to this port too (a test's --port override; real providers would refuse it)."""
        self.allowed_ports.add(port)

    def last_reply(self, provider: str) -> JSONObject:
        return [r for p, r in self.replies if p == provider][-1]

    def next_answer(self) -> str:
        return self.device_script.pop(0) if self.device_script else "success"


def _error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


async def _fields(request: Request, body: Body) -> JSONObject | JSONResponse:
    """The request's fields, if it used the encoding the row names."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    raw = await request.body()
    if body == Body.JSON:
        if content_type != "application/json":
            return _error(400, "invalid_request", f"expected a JSON body, got {content_type or 'none'}")
        try:
            doc = json.loads(raw)
        except ValueError:
            return _error(400, "invalid_request", "the body is not JSON")
        return doc if isinstance(doc, dict) else _error(400, "invalid_request", "the body is not an object")
    if content_type != "application/x-www-form-urlencoded":
        return _error(400, "invalid_request", f"expected a form body, got {content_type or 'none'}")
    return {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}


# ----- the app -------------------------------------------------------------------------------------------


class OAuthFake:
    """The routes of every provider row, by (host, path)."""

    def __init__(self) -> None:
        self.state = OAuthFakeState()
        self.routes: dict[tuple[str, str, str], Handler] = {}
        self.authorize_rows: dict[str, list[tuple[OAuthProvider, BrowserLogin]]] = {}
        for provider in OAUTH_PROVIDERS:
            for method in provider.methods:
                if isinstance(method.login, BrowserLogin):
                    self._browser_routes(provider, method.login)
                else:
                    self._device_routes(provider, method.login)
        self._route("GET", rows.COPILOT_TOKEN_URL, self.copilot_token)
        self._route("GET", rows.GITHUB_USER_URL, self.github_user)
        self._route("GET", rows.GOOGLE_USERINFO, self.google_userinfo)
        self._route("POST", f"{rows.CODE_ASSIST}:loadCodeAssist", self.load_code_assist)
        self._route("POST", f"{rows.CODE_ASSIST_DAILY}:onboardUser", self.onboard_user)
        self.app = Starlette(routes=[Route(PREFIX + "/{host}/{path:path}", self.dispatch, methods=["GET", "POST"])])
        self.app.state.fake = self

    def _route(self, method: str, url: str, handler: Handler) -> None:
        parts = urlsplit(url)
        self.routes[(method, parts.netloc, parts.path)] = handler

    async def dispatch(self, request: Request) -> Response:
        host, path = request.path_params["host"], "/" + request.path_params["path"]
        self.state.calls.append((request.method, host, path))
        handler = self.routes.get((request.method, host, path))
        if handler is None:
            return JSONResponse({"error": "not_found", "error_description": f"{host}{path}"}, status_code=404)
        return await handler(request, host)

    # ----- browser rows ----------------------------------------------------------------------------------

    def _browser_routes(self, provider: OAuthProvider, login: BrowserLogin) -> None:
        # Kiro's Google and GitHub sign-ins share one page, told apart by their `idp` param.
        candidates = self.authorize_rows.setdefault(login.authorize_url, [])
        candidates.append((provider, login))

        async def authorize(request: Request, host: str) -> Response:
            query = request.query_params
            chosen = next((c for c in candidates if all(query.get(k) == v for k, v in c[1].params)), candidates[0])
            return self.authorize(request, *chosen)

        async def token(request: Request, host: str) -> Response:
            return await self.token(request, provider, login)

        self._route("GET", login.authorize_url, authorize)
        self._route("POST", login.token_url, token)
        if login.paste_redirect:
            self._route("GET", login.paste_redirect, self.code_page)

    def authorize(self, request: Request, provider: OAuthProvider, login: BrowserLogin) -> Response:
        params = dict(request.query_params)
        self.state.authorize_requests.append({"provider": provider.id, **params})
        redirect = params.get("redirect_uri", "")
        registered = {login.redirect_uri(p) for p in (*login.ports, *self.state.allowed_ports)}
        if login.paste_redirect:
            registered.add(login.paste_redirect)
        problems = [
            "unknown client_id" if login.client_id and params.get("client_id") != login.client_id else "",
            "response_type must be code" if login.client_id and params.get("response_type") != "code" else "",
            "scope differs" if login.scope and params.get("scope") != login.scope else "",
            "S256 challenge required" if params.get("code_challenge_method") != "S256" else "",
            "no code_challenge" if not params.get("code_challenge") else "",
            "no state" if not params.get("state") else "",
            "redirect_uri is not registered" if redirect not in registered else "",
            *(f"{k} must be {v}" for k, v in login.params if params.get(k) != v),
        ]
        if any(problems):
            return HTMLResponse(f"<h1>Error</h1><p>{html.escape('; '.join(p for p in problems if p))}</p>", 400)
        state = params["state"]
        if self.state.consent == "deny":
            return RedirectResponse(f"{redirect}?{urlencode({'error': 'access_denied', 'state': state})}", 302)
        code = secrets.token_urlsafe(24)
        self.state.codes[code] = IssuedCode(
            provider.id, login, params["code_challenge"], redirect, state, params.get("client_id", "")
        )
        if self.state.consent == "wrong-state":
            state = "forged-" + secrets.token_urlsafe(8)
        return RedirectResponse(f"{redirect}?{urlencode({'code': code, 'state': state})}", 302)

    async def code_page(self, request: Request, host: str) -> Response:
        """Claude's page for headless logins: shows `code#state` to copy."""
        code, state = request.query_params.get("code", ""), request.query_params.get("state", "")
        return HTMLResponse(
            f"<p>Paste this code into Claude Code:</p><code>{html.escape(code)}#{html.escape(state)}</code>"
        )

    async def token(self, request: Request, provider: OAuthProvider, login: BrowserLogin) -> Response:
        got = await _fields(request, login.body)
        if isinstance(got, JSONResponse):
            return got
        self.state.token_requests.append({"provider": provider.id, **got})
        if login.client_id:
            if got.get("grant_type") != "authorization_code":
                return _error(400, "unsupported_grant_type", "expected authorization_code")
            if got.get("client_id") != login.client_id:
                return _error(401, "invalid_client", "unknown client")
        if login.client_secret and got.get("client_secret") != login.client_secret:
            return _error(401, "invalid_client", "client authentication failed")
        issued = self.state.codes.pop(str(got.get(login.code_field, "")), None)
        if issued is None or issued.provider != provider.id:
            return _error(400, "invalid_grant", "unknown or used authorization code")
        if got.get("redirect_uri") != issued.redirect_uri:
            return _error(400, "invalid_grant", "redirect_uri differs from the authorization request")
        if login.state_in_token_request and got.get("state") != issued.state:
            return _error(400, "invalid_request", "state differs from the authorization request")
        verifier = got.get("code_verifier")
        if not isinstance(verifier, str) or s256(verifier) != issued.challenge:
            return _error(400, "invalid_grant", "code_verifier does not match the code_challenge")
        return JSONResponse(self.issue(provider))

    def issue(self, provider: OAuthProvider) -> JSONObject:
        """A token reply in this provider's shape (recorded in `replies`)."""
        access, refresh = (
            f"{provider.id}-at-{secrets.token_urlsafe(18)}",
            f"{provider.id}-rt-{secrets.token_urlsafe(18)}",
        )
        reply: JSONObject
        if provider.id == "claude":
            reply = {
                "token_type": "Bearer",
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": 28800,
                "scope": "user:inference user:profile",
                "account": {"uuid": "acc-1234", "email_address": "ada@example.com"},
                "organization": {"uuid": "org-5678", "name": "Ada's Org"},
            }
        elif provider.id == "codex":
            claims = {
                "email": "grace@example.com",
                "https://api.openai.com/auth": {"chatgpt_account_id": "acct-codex-1", "chatgpt_plan_type": "pro"},
            }
            reply = {
                "access_token": access,
                "refresh_token": refresh,
                "id_token": make_jwt(claims),
                "expires_in": 864000,
            }
        elif provider.id == "kiro":
            arn = "arn:aws:codewhisperer:us-east-1:123456789012:profile/FAKE"
            reply = {"accessToken": access, "refreshToken": refresh, "profileArn": arn, "expiresIn": 3600}
        elif provider.id == "github":
            reply = {"access_token": "ghu_" + secrets.token_hex(18), "token_type": "bearer", "scope": "read:user"}
            access = reply["access_token"]
        else:  # Google, Kimi, xAI: plain OAuth 2.0
            reply = {"access_token": access, "refresh_token": refresh, "expires_in": 3599, "token_type": "Bearer"}
        self.state.access[access] = provider.id
        self.state.replies.append((provider.id, reply))
        return reply

    # ----- device rows -----------------------------------------------------------------------------------

    def _device_routes(self, provider: OAuthProvider, login: DeviceLogin) -> None:
        if login.style == DeviceStyle.RFC8628:

            async def start(request: Request, host: str) -> Response:
                return await self.device_start(request, provider, login)

            async def poll(request: Request, host: str) -> Response:
                return await self.device_poll(request, provider, login, host)

            if login.discovery_url:
                self._route("GET", login.discovery_url, self.discovery)
                self._route("POST", XAI_DEVICE_URL, start)
            else:
                self._route("POST", login.device_url, start)
            self._route("POST", login.token_url, poll)
        elif login.style == DeviceStyle.AWS_OIDC:

            async def register(request: Request, host: str) -> Response:
                return await self.aws_register(request, login)

            async def authorize(request: Request, host: str) -> Response:
                return await self.aws_device(request, login)

            async def token(request: Request, host: str) -> Response:
                return await self.aws_token(request, provider, host)

            self._route("POST", login.register_url, register)
            self._route("POST", login.device_url, authorize)
            self._route("POST", login.token_url, token)
        else:

            async def usercode(request: Request, host: str) -> Response:
                return await self.codex_usercode(request, login)

            async def codex_poll(request: Request, host: str) -> Response:
                return await self.codex_poll(request, provider, login, host)

            self._route("POST", login.device_url, usercode)
            self._route("POST", login.token_url, codex_poll)

    async def discovery(self, request: Request, host: str) -> Response:
        return JSONResponse(
            {
                "issuer": "https://auth.x.ai",
                "device_authorization_endpoint": XAI_DEVICE_URL,
                "token_endpoint": "https://auth.x.ai/oauth2/token",
                "grant_types_supported": [DEVICE_GRANT, "refresh_token"],
            }
        )

    async def device_start(self, request: Request, provider: OAuthProvider, login: DeviceLogin) -> Response:
        got = await _fields(request, Body.FORM)
        if isinstance(got, JSONResponse):
            return got
        if got.get("client_id") != login.client_id:
            return _error(400, "invalid_client", "unknown client")
        if login.scope and got.get("scope") != login.scope:
            return _error(400, "invalid_scope", "scope differs")
        device_code, user_code = secrets.token_urlsafe(20), "WDJB-MJHT"
        self.state.devices[device_code] = user_code
        reply = {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": f"{_origin(login.device_url)}/activate",
            "expires_in": 900,
            "interval": self.state.interval,
        }
        if provider.id != "github":  # GitHub sends no verification_uri_complete
            reply["verification_uri_complete"] = f"{reply['verification_uri']}?user_code={user_code}"
        return JSONResponse(reply)

    def _scripted(self, host: str) -> str:
        answer = self.state.next_answer()
        self.state.polls.append(Poll(host, time.monotonic(), answer))
        return answer

    async def device_poll(self, request: Request, provider: OAuthProvider, login: DeviceLogin, host: str) -> Response:
        got = await _fields(request, Body.FORM)
        if isinstance(got, JSONResponse):
            return got
        if got.get("grant_type") != DEVICE_GRANT or got.get("client_id") != login.client_id:
            return _error(400, "invalid_request", "device_code grant with this client expected")
        if got.get("device_code") not in self.state.devices:
            return _error(400, "invalid_grant", "unknown device code")
        answer = self._scripted(host)
        status = 200 if provider.id == "github" else 400  # GitHub reports these errors with HTTP 200
        errors = {"pending": "authorization_pending", "slow_down": "slow_down", "expired": "expired_token"}
        errors["denied"] = "access_denied"
        if answer in errors:
            body: JSONObject = {"error": errors[answer], "error_description": answer}
            if answer == "slow_down":
                body["interval"] = self.state.interval + 5
            return JSONResponse(body, status_code=status)
        self.state.devices.pop(str(got["device_code"]))
        return JSONResponse(self.issue(provider))

    async def aws_register(self, request: Request, login: DeviceLogin) -> Response:
        got = await _fields(request, Body.JSON)
        if isinstance(got, JSONResponse):
            return got
        if (
            got.get("clientType") != "public"
            or got.get("scopes") != login.scope.split()
            or DEVICE_GRANT not in (got.get("grantTypes") or [])
            or got.get("issuerUrl") != login.start_url
            or not got.get("clientName")
        ):
            return JSONResponse({"error": "InvalidRequestException", "error_description": "bad registration"}, 400)
        client_id, secret = "aws-client-" + secrets.token_hex(6), "aws-secret-" + secrets.token_urlsafe(24)
        self.state.clients[client_id] = secret
        now = int(time.time())
        return JSONResponse(
            {
                "clientId": client_id,
                "clientSecret": secret,
                "clientIdIssuedAt": now,
                "clientSecretExpiresAt": now + 7776000,
            }
        )

    async def aws_device(self, request: Request, login: DeviceLogin) -> Response:
        got = await _fields(request, Body.JSON)
        if isinstance(got, JSONResponse):
            return got
        client = str(got.get("clientId"))
        if self.state.clients.get(client) != got.get("clientSecret") or got.get("startUrl") != login.start_url:
            return JSONResponse({"error": "InvalidClientException", "error_description": "unknown client"}, 401)
        device_code = secrets.token_urlsafe(20)
        self.state.devices[device_code] = "KIRO-CODE"
        uri = "https://view.awsapps.com/start/#/device"
        return JSONResponse(
            {
                "deviceCode": device_code,
                "userCode": "KIRO-CODE",
                "verificationUri": uri,
                "verificationUriComplete": f"{uri}?user_code=KIRO-CODE",
                "expiresIn": 600,
                "interval": self.state.interval,
            }
        )

    async def aws_token(self, request: Request, provider: OAuthProvider, host: str) -> Response:
        got = await _fields(request, Body.JSON)
        if isinstance(got, JSONResponse):
            return got
        if self.state.clients.get(str(got.get("clientId"))) != got.get("clientSecret"):
            return JSONResponse({"error": "invalid_client", "error_description": "unknown client"}, 401)
        if got.get("grantType") != DEVICE_GRANT or got.get("deviceCode") not in self.state.devices:
            return JSONResponse({"error": "invalid_grant", "error_description": "unknown device code"}, 400)
        answer = self._scripted(host)
        errors = {"pending": "authorization_pending", "slow_down": "slow_down", "expired": "expired_token"}
        errors["denied"] = "access_denied"
        if answer in errors:
            return JSONResponse({"error": errors[answer], "error_description": answer}, 400)
        access, refresh = f"kiro-at-{secrets.token_urlsafe(18)}", f"kiro-rt-{secrets.token_urlsafe(18)}"
        reply = {"accessToken": access, "refreshToken": refresh, "expiresIn": 3600, "tokenType": "Bearer"}
        self.state.access[access] = provider.id
        self.state.replies.append((provider.id, reply))
        return JSONResponse(reply)

    async def codex_usercode(self, request: Request, login: DeviceLogin) -> Response:
        got = await _fields(request, Body.JSON)
        if isinstance(got, JSONResponse):
            return got
        if got.get("client_id") != login.client_id:
            return JSONResponse({"error": {"message": "unknown client", "code": "invalid_client"}}, 400)
        auth_id = "deviceauth_" + secrets.token_hex(8)
        self.state.devices[auth_id] = "CODX-1234"
        return JSONResponse({"device_auth_id": auth_id, "user_code": "CODX-1234", "interval": str(self.state.interval)})

    async def codex_poll(self, request: Request, provider: OAuthProvider, login: DeviceLogin, host: str) -> Response:
        got = await _fields(request, Body.JSON)
        if isinstance(got, JSONResponse):
            return got
        if self.state.devices.get(str(got.get("device_auth_id"))) != got.get("user_code"):
            return JSONResponse({"error": {"message": "unknown device auth", "code": "bad_request"}}, 400)
        if self._scripted(host) != "success":
            return JSONResponse({"error": {"message": "Device authorization is pending", "code": "pending"}}, 403)
        verifier = secrets.token_urlsafe(48)
        code = secrets.token_urlsafe(24)
        browser = next(m.login for m in provider.methods if isinstance(m.login, BrowserLogin))
        self.state.codes[code] = IssuedCode(provider.id, browser, s256(verifier), login.exchange_redirect, None, "")
        return JSONResponse({"authorization_code": code, "code_verifier": verifier, "code_challenge": s256(verifier)})

    # ----- resources the post-link steps read ------------------------------------------------------------

    def _holder(self, request: Request, scheme: str, provider: str) -> str | None:
        presented = request.headers.get("authorization", "")
        token = presented.removeprefix(scheme + " ")
        return token if presented.startswith(scheme + " ") and self.state.access.get(token) == provider else None

    async def copilot_token(self, request: Request, host: str) -> Response:
        if self._holder(request, "token", "github") is None:
            return JSONResponse({"message": "Bad credentials"}, 401)
        if not request.headers.get("editor-version"):
            return JSONResponse({"message": "missing Editor-Version header for IDE auth"}, 400)
        expires = int(time.time()) + 1740
        token = (
            f"tid={secrets.token_hex(16)};exp={expires};sku=copilot_for_individual_user;8kp=1:{secrets.token_hex(32)}"
        )
        self.state.access[token] = "copilot"
        reply = {
            "token": token,
            "expires_at": expires,
            "refresh_in": 1500,
            "endpoints": {"api": COPILOT_API, "proxy": "https://proxy.individual.githubcopilot.com"},
            "sku": "copilot_for_individual_user",
        }
        self.state.replies.append(("copilot", reply))
        return JSONResponse(reply)

    async def github_user(self, request: Request, host: str) -> Response:
        if self._holder(request, "token", "github") is None:
            return JSONResponse({"message": "Bad credentials"}, 401)
        return JSONResponse({"login": "octo-fake", "id": 583231, "email": "octo@example.com"})

    async def google_userinfo(self, request: Request, host: str) -> Response:
        if self._holder(request, "Bearer", "antigravity") is None:
            return JSONResponse(
                {"error": {"code": 401, "message": "invalid credentials", "status": "UNAUTHENTICATED"}}, 401
            )
        return JSONResponse({"id": "1089", "email": "lin@example.com", "verified_email": True})

    async def load_code_assist(self, request: Request, host: str) -> Response:
        if self._holder(request, "Bearer", "antigravity") is None:
            return JSONResponse(
                {"error": {"code": 401, "message": "invalid credentials", "status": "UNAUTHENTICATED"}}, 401
            )
        got = await _fields(request, Body.JSON)
        if isinstance(got, JSONResponse):
            return got
        self.state.load_calls.append(got)
        if (got.get("metadata") or {}).get("ideType") != "ANTIGRAVITY":
            return JSONResponse({"error": {"code": 400, "message": "bad metadata", "status": "INVALID_ARGUMENT"}}, 400)
        if self.state.code_assist_project:
            return JSONResponse(
                {"currentTier": {"id": "standard-tier"}, "cloudaicompanionProject": self.state.code_assist_project}
            )
        return JSONResponse({"allowedTiers": [{"id": "legacy-tier"}, {"id": "free-tier", "isDefault": True}]})

    async def onboard_user(self, request: Request, host: str) -> Response:
        if self._holder(request, "Bearer", "antigravity") is None:
            return JSONResponse(
                {"error": {"code": 401, "message": "invalid credentials", "status": "UNAUTHENTICATED"}}, 401
            )
        got = await _fields(request, Body.JSON)
        if isinstance(got, JSONResponse):
            return got
        self.state.onboard_calls.append(got)
        if not got.get("tier_id"):
            return JSONResponse(
                {"error": {"code": 400, "message": "tier_id required", "status": "INVALID_ARGUMENT"}}, 400
            )
        if self.state.onboard_pending > 0:
            self.state.onboard_pending -= 1
            return JSONResponse({"name": "operations/onboard-1", "done": False})
        project = {"id": ONBOARDED_PROJECT, "name": "projects/" + ONBOARDED_PROJECT}
        return JSONResponse(
            {"name": "operations/onboard-1", "done": True, "response": {"cloudaicompanionProject": project}}
        )


@contextlib.contextmanager
def serve_oauth_fake() -> Iterator[tuple[OAuthFake, str]]:
    """The fake on a free loopback port, and the OMNIROUTE_OAUTH_HOSTS value pointing every provider at it."""
    fake = OAuthFake()
    with ServerThread(fake.app) as server:
        yield fake, hosts_env(server.base_url)


# ----- the owner's browser -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    url: str  # what the address bar shows (the real provider address, before any test mapping)
    status: int  # 0: the page did not load (a loopback address nothing answers on)
    text: str


class FakeBrowser:
    """Stands in for the owner's browser (monkeypatched in as `webbrowser.get()`'s controller, or handed to a
    flow as its `browser`): opening a URL fetches it on a thread and follows redirects as a browser does,
    provider addresses through `endpoint()` like every call of the tests. `reach_loopback=False` is a
    headless machine's browser elsewhere: a redirect to the loopback callback does not load, but its address
    is what the user copies."""

    def __init__(self, *, reach_loopback: bool = True) -> None:
        self.reach_loopback = reach_loopback
        self.opened: list[str] = []
        self.pages: queue.Queue[Page] = queue.Queue()
        self._threads: list[threading.Thread] = []

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.opened.append(url)
        thread = threading.Thread(target=self._navigate, args=(url,), daemon=True)
        self._threads.append(thread)
        thread.start()
        return True

    def __call__(self, url: str) -> bool:
        return self.open(url)

    def _navigate(self, url: str) -> None:
        with httpx.Client(trust_env=False, timeout=10) as client:
            for _ in range(10):
                parts = urlsplit(url)
                callback = parts.hostname in ("127.0.0.1", "localhost") and not parts.path.startswith(PREFIX + "/")
                if callback and not self.reach_loopback:
                    self.pages.put(Page(url, 0, ""))
                    return
                try:
                    response = client.get(endpoint(url))
                except httpx.TransportError as exc:
                    self.pages.put(Page(url, 0, type(exc).__name__))
                    return
                if response.is_redirect:
                    url = urljoin(url, response.headers["location"])
                    continue
                self.pages.put(Page(url, response.status_code, response.text))
                return

    def next_page(self, timeout: float = 10.0) -> Page:
        return self.pages.get(timeout=timeout)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(10)


def shown_code(page: Page) -> str:
    """The `code#state` a provider's code page shows."""
    found = re.search(r"<code>([^<]+)</code>", page.text)
    assert found, page.text
    return html.unescape(found.group(1))


class PastingUser(io.RawIOBase):
    """Standard input typed by a user who waits for the browser's page and pastes what `answer` reads off it
    (the shown `code#state`, or the address bar). Hand `io.BufferedReader(PastingUser(...))` to CliRunner."""

    def __init__(self, browser: FakeBrowser, answer: Callable[[Page], str]) -> None:
        self.browser = browser
        self.answer = answer
        self._pending: bytes | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._pending is None:
            self._pending = (self.answer(self.browser.next_page()) + "\n").encode()
        chunk, self._pending = self._pending[: len(buffer)], self._pending[len(buffer) :]
        buffer[: len(chunk)] = chunk
        return len(chunk)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the callback server binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def override_port(state: OAuthFakeState, registered: int) -> int | None:
    """None when the provider's registered callback port is free here (the test uses it); otherwise a free port
    the fake accepts too, for the test to pass as `--port` (CI machines may have the registered one taken)."""
    if port_is_free(registered):
        return None
    port = free_port()
    state.allow_port(port)
    return port
