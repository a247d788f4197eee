"""Device logins: the user opens a page on any device and types a code while this process polls.

Three wire styles, named by the row's `DeviceStyle`:
- `rfc8628` (GitHub, Kimi, xAI): form POST to the device URL, then poll the token URL with grant type
  `urn:ietf:params:oauth:grant-type:device_code`; `authorization_pending` means wait, `slow_down` means add
  5 s to the interval from then on (RFC 8628 §3.5). GitHub answers these errors with HTTP 200, the RFC with
  400: the `error` field decides, not the status. xAI publishes its endpoints by OpenID discovery.
- `aws-oidc` (Kiro Builder ID): register a public client, start device authorization with its id and secret,
  poll with JSON camelCase bodies; the client's id and secret are needed again to refresh, so they are kept
  (id in `meta`, secret encrypted with the tokens).
- `codex` (ChatGPT): a user code, then a poll that answers 403/404 until approved and then hands back an
  authorization code and its PKCE verifier, exchanged like the browser login's code.

`poll()` takes the context's `sleep`, so tests drive the intervals without waiting for them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from companion.oauth.browser import exchange_code
from companion.oauth.grant import Grant, grant_from_reply
from companion.oauth.session import FlowOptions, LinkContext, LinkError, Reply, call, error_text, post
from shared.domain.oauth import OAuthTokens
from shared.providers.oauth import Body, BrowserLogin, DeviceLogin, DeviceStyle, LoginMethod, OAuthProvider

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_SECONDS = 5.0  # RFC 8628 §3.5
DEFAULT_EXPIRY_SECONDS = 900.0  # when the provider does not say how long its code lives (Codex)
CLIENT_NAME = "OmniRoute Edge"

Pending = Literal["pending", "slow_down"]
PENDING: Pending = "pending"
SLOW_DOWN: Pending = "slow_down"
MIN_INTERVAL_SECONDS = 1.0


def poll(
    ctx: LinkContext, attempt: Callable[[], Mapping[str, Any] | Pending], interval: float, lifetime: float
) -> Mapping[str, Any]:
    """Call `attempt` every `interval` seconds (growing by 5 s at each `slow_down`) until it returns an answer;
    LinkError once the code's `lifetime` has passed. Time is counted in the intervals slept."""
    waited = 0.0
    interval = max(interval, MIN_INTERVAL_SECONDS)  # a provider announcing 0 would otherwise be polled flat out
    while waited < lifetime:
        ctx.sleep(interval)
        waited += interval
        outcome = attempt()
        if outcome == SLOW_DOWN:
            interval += SLOW_DOWN_SECONDS
        elif outcome != PENDING:
            assert not isinstance(outcome, str)
            return outcome
    raise LinkError(f"the code was not approved within {lifetime:g} s; run the login again")


def _number(value: Any, default: float) -> float:
    """A count of seconds a provider sent as a number or a string (Codex sends `"5"`)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if number >= 0 else default


def _lifetime(options: FlowOptions, expires_in: float) -> float:
    return min(options.timeout, expires_in) if options.timeout else expires_in


def _ask_user(
    ctx: LinkContext, provider: OAuthProvider, uri: str, code: str, options: FlowOptions, complete: str | None = None
) -> None:
    ctx.say(f"To link {provider.name}, open {uri} and enter the code:  {code}")
    if complete and complete != uri:
        ctx.say(f"  (or open {complete}, which fills the code in)")
    if options.open_browser and ctx.browser is not None:
        ctx.browser(complete or uri)
    ctx.say("Waiting for you to approve it...")


def _classify(reply: Reply, provider: OAuthProvider) -> Mapping[str, Any] | Pending:
    """An RFC 8628 token poll's answer (AWS SSO-OIDC speaks the same errors in its JSON body)."""
    error = reply.body.get("error")
    if error == "authorization_pending":
        return PENDING
    if error == "slow_down":
        return SLOW_DOWN
    if error == "expired_token":
        raise LinkError("the code expired before it was approved; run the login again")
    if error == "access_denied":
        raise LinkError(f"access was denied on {provider.name}'s page; nothing was linked")
    if error or not reply.ok:
        raise LinkError(f"{provider.name} refused the device login ({error_text(reply)})")
    return reply.body


# ----- RFC 8628 ---------------------------------------------------------------------------------------------


def _discover(ctx: LinkContext, login: DeviceLogin) -> tuple[str, str]:
    """xAI's device and token endpoints from its OpenID configuration; the row's URLs when that fails. Only
    https addresses are taken from the document."""
    if not login.discovery_url:
        return login.device_url, login.token_url
    try:
        doc = call(ctx, "GET", login.discovery_url).body
    except LinkError:
        doc = {}

    def pick(name: str, fallback: str) -> str:
        value = doc.get(name)
        return value if isinstance(value, str) and value.startswith("https://") else fallback

    return pick("device_authorization_endpoint", login.device_url), pick("token_endpoint", login.token_url)


def _rfc8628(ctx: LinkContext, provider: OAuthProvider, login: DeviceLogin, options: FlowOptions) -> Grant:
    device_url, token_url = _discover(ctx, login)
    fields = {"client_id": login.client_id} | ({"scope": login.scope} if login.scope else {})
    start = post(ctx, device_url, fields, Body.FORM, provider.headers)
    device_code, user_code = start.body.get("device_code"), start.body.get("user_code")
    uri = start.body.get("verification_uri") or start.body.get("verification_url")
    if not start.ok or not isinstance(device_code, str) or not isinstance(user_code, str) or not uri:
        raise LinkError(f"{provider.name} did not start a device login ({error_text(start)})")
    _ask_user(ctx, provider, str(uri), user_code, options, start.body.get("verification_uri_complete"))
    body = {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": login.client_id}
    reply = poll(
        ctx,
        lambda: _classify(post(ctx, token_url, body, Body.FORM, provider.headers), provider),
        _number(start.body.get("interval"), login.default_interval),
        _lifetime(options, _number(start.body.get("expires_in"), DEFAULT_EXPIRY_SECONDS)),
    )
    return grant_from_reply(reply, ctx.now(), what=f"{provider.name}'s token endpoint")


# ----- AWS SSO-OIDC -----------------------------------------------------------------------------------------

_REGION = re.compile(r"^https://oidc\.([a-z0-9-]+)\.amazonaws\.com(/|$)")


def _aws_oidc(ctx: LinkContext, provider: OAuthProvider, login: DeviceLogin, options: FlowOptions) -> Grant:
    registered = post(
        ctx,
        login.register_url,
        {
            "clientName": CLIENT_NAME,
            "clientType": "public",
            "scopes": login.scope.split(),
            "grantTypes": [DEVICE_GRANT, "refresh_token"],
            "issuerUrl": login.start_url,
        },
        Body.JSON,
        provider.headers,
    )
    client_id, client_secret = registered.body.get("clientId"), registered.body.get("clientSecret")
    if not registered.ok or not isinstance(client_id, str) or not isinstance(client_secret, str):
        raise LinkError(f"AWS did not register a client for {provider.name} ({error_text(registered)})")
    start = post(
        ctx,
        login.device_url,
        {"clientId": client_id, "clientSecret": client_secret, "startUrl": login.start_url},
        Body.JSON,
        provider.headers,
    )
    device_code, user_code = start.body.get("deviceCode"), start.body.get("userCode")
    uri = start.body.get("verificationUri")
    if not start.ok or not isinstance(device_code, str) or not isinstance(user_code, str) or not uri:
        raise LinkError(f"AWS did not start a device login for {provider.name} ({error_text(start)})")
    _ask_user(ctx, provider, str(uri), user_code, options, start.body.get("verificationUriComplete"))
    body = {"clientId": client_id, "clientSecret": client_secret, "deviceCode": device_code, "grantType": DEVICE_GRANT}
    reply = poll(
        ctx,
        lambda: _classify(post(ctx, login.token_url, body, Body.JSON, provider.headers), provider),
        _number(start.body.get("interval"), login.default_interval),
        _lifetime(options, _number(start.body.get("expiresIn"), DEFAULT_EXPIRY_SECONDS)),
    )
    grant = grant_from_reply(reply, ctx.now(), what="AWS's token endpoint")
    tokens = OAuthTokens(
        access_token=grant.tokens.access_token,
        refresh_token=grant.tokens.refresh_token,
        id_token=grant.tokens.id_token,
        client_secret=client_secret,
    )
    region = _REGION.match(login.token_url)
    return Grant(
        tokens=tokens,
        expires_at=grant.expires_at,
        meta={**grant.meta, "clientId": client_id, "startUrl": login.start_url}
        | ({"region": region.group(1)} if region else {}),
        reply=grant.reply,
    )


# ----- ChatGPT (Codex) --------------------------------------------------------------------------------------


def _codex(ctx: LinkContext, provider: OAuthProvider, login: DeviceLogin, options: FlowOptions) -> Grant:
    browser = next((m.login for m in provider.methods if isinstance(m.login, BrowserLogin)), None)
    if browser is None:
        raise TypeError(f"{provider.id}: the codex device style exchanges at the browser method's token URL")
    start = post(ctx, login.device_url, {"client_id": login.client_id}, Body.JSON, provider.headers)
    auth_id = start.body.get("device_auth_id")
    user_code = start.body.get("user_code") or start.body.get("usercode")
    if not start.ok or not isinstance(auth_id, str) or not isinstance(user_code, str):
        raise LinkError(f"{provider.name} did not start a device login ({error_text(start)})")
    _ask_user(ctx, provider, login.verification_url, user_code, options)

    def attempt() -> Mapping[str, Any] | Pending:
        reply = post(ctx, login.token_url, {"device_auth_id": auth_id, "user_code": user_code}, Body.JSON)
        if reply.status in (403, 404):  # not approved yet
            return PENDING
        if not reply.ok:
            raise LinkError(f"{provider.name} refused the device login ({error_text(reply)})")
        return reply.body

    approved = poll(
        ctx,
        attempt,
        _number(start.body.get("interval"), login.default_interval),
        _lifetime(options, DEFAULT_EXPIRY_SECONDS),
    )
    code, verifier = approved.get("authorization_code"), approved.get("code_verifier")
    if not isinstance(code, str) or not isinstance(verifier, str):
        raise LinkError(f"{provider.name} approved the device but sent no authorization code; nothing was linked")
    return exchange_code(ctx, provider, browser, code=code, verifier=verifier, redirect_uri=login.exchange_redirect)


_STYLES = {DeviceStyle.RFC8628: _rfc8628, DeviceStyle.AWS_OIDC: _aws_oidc, DeviceStyle.CODEX: _codex}


def run_device(ctx: LinkContext, provider: OAuthProvider, method: LoginMethod, options: FlowOptions) -> Grant:
    login = method.login
    if not isinstance(login, DeviceLogin):
        raise TypeError(f"{provider.id} {method.name} is not a device login")
    return _STYLES[login.style](ctx, provider, login, options)
