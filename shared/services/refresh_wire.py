"""One refresh call on the wire, per refresh style: the request to send and how to read its answer.

Pure: no I/O. `shared.services.token_refresh` decides when and under which lease; this module knows the four
shapes (`shared.providers.oauth.RefreshStyle`) and the reply fields providers use for the same things:

    oauth2            POST grant_type=refresh_token, refresh_token, client_id, client_secret?, scope? (form or
                      JSON per the row) → access_token, refresh_token?, expires_in, id_token?
    copilot-exchange  GET with `Authorization: token <GitHub token>` and the editor headers
                      → {token, expires_at, refresh_in, endpoints: {api}}
    aws-oidc          POST JSON {clientId, clientSecret, refreshToken, grantType: "refresh_token"}
                      → {accessToken, refreshToken?, expiresIn}
    kiro-social       POST JSON {refreshToken} → {accessToken, refreshToken?, expiresIn, profileArn?}

A failed answer is fatal (the grant is gone: the account needs relinking, never retried) when its OAuth
`error` is one of the row's `fatal_errors`, or when the Copilot exchange answers 401 (the GitHub token was
revoked). Anything else (5xx, 429, other 4xx, a body that is not JSON) is transient. Reasons are built from
the provider's error code and description only, with any token that appears in them blanked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from shared.domain.failures import retry_hint
from shared.domain.oauth import OAuthTokens
from shared.providers.chatgpt import identity, jwt_claims
from shared.providers.oauth import Body, OAuthProvider, RefreshSpec, RefreshStyle, endpoint

_REASON_LIMIT = 300
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d")
# AWS SSO-OIDC names its errors in `error` like OAuth, and also as an exception type (`__type`,
# "...#InvalidGrantException"). An expired refresh token (ExpiredTokenException) is a grant that is gone.
_AWS_ERRORS = {
    "InvalidGrantException": "invalid_grant",
    "ExpiredTokenException": "invalid_grant",
    "InvalidClientException": "invalid_client",
    "UnauthorizedClientException": "unauthorized_client",
}


class CannotRefresh(Exception):
    """The stored account lacks what its refresh style needs (no refresh token, no registered client): only
    linking it again helps. The message is safe to show."""


@dataclass(frozen=True, slots=True)
class RefreshCall:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    def __repr__(self) -> str:  # headers and body carry the refresh token
        return f"RefreshCall({self.method} {self.url})"


@dataclass(frozen=True, slots=True)
class Refreshed:
    """A successful answer: the new token set (old refresh token kept when none came back), the access
    token's expiry (0: unknown), metadata that changed with it, and Copilot's plan host."""

    tokens: OAuthTokens
    expires_at: float
    meta: dict[str, Any] = field(default_factory=dict)
    base_url: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A failed answer. `fatal`: never retry, the account needs relinking. `reason` is safe to store."""

    fatal: bool
    reason: str
    retry_after: float | None = None


def build_call(
    spec: RefreshSpec, provider: OAuthProvider | None, tokens: OAuthTokens, meta: Mapping[str, Any]
) -> RefreshCall:
    """The request that refreshes this account. Raises `CannotRefresh` when the account cannot be refreshed."""
    extra = dict(provider.headers) if provider is not None else {}
    refresh = tokens.refresh_token
    if not refresh:
        raise CannotRefresh("no refresh token was linked with this account")
    if spec.style is RefreshStyle.COPILOT_EXCHANGE:
        headers = {**extra, "accept": "application/json", "authorization": f"token {refresh}"}
        return RefreshCall("GET", endpoint(spec.url), headers, b"")
    if spec.style is RefreshStyle.AWS_OIDC:
        client_id = meta.get("clientId")
        if not isinstance(client_id, str) or not client_id or not tokens.client_secret:
            raise CannotRefresh("the account's registered AWS OIDC client (clientId/clientSecret) is missing")
        doc: dict[str, str] = {
            "clientId": client_id,
            "clientSecret": tokens.client_secret,
            "refreshToken": refresh,
            "grantType": "refresh_token",
        }
        return _json_call(_oidc_url(spec.url, meta.get("region")), extra, doc)
    if spec.style is RefreshStyle.KIRO_SOCIAL:
        return _json_call(endpoint(spec.url), extra, {"refreshToken": refresh})
    fields = {"grant_type": "refresh_token", "refresh_token": refresh}
    if spec.client_id:
        fields["client_id"] = spec.client_id
    if spec.client_secret:
        fields["client_secret"] = spec.client_secret
    if spec.scope:
        fields["scope"] = spec.scope
    if spec.body is Body.JSON:
        return _json_call(endpoint(spec.url), extra, fields)
    headers = {**extra, "accept": "application/json", "content-type": "application/x-www-form-urlencoded"}
    return RefreshCall("POST", endpoint(spec.url), headers, urlencode(fields).encode())


def _json_call(url: str, extra: Mapping[str, str], doc: Mapping[str, str]) -> RefreshCall:
    headers = {**extra, "accept": "application/json", "content-type": "application/json"}
    return RefreshCall("POST", url, headers, orjson.dumps(doc))


def _oidc_url(url: str, region: object) -> str:
    """An IAM Identity Center account refreshes at its own region's OIDC host (the row names us-east-1)."""
    if isinstance(region, str) and _REGION.fullmatch(region):
        url = url.replace("://oidc.us-east-1.", f"://oidc.{region}.", 1)
    return endpoint(url)


def read_reply(
    spec: RefreshSpec,
    provider: OAuthProvider | None,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    old: OAuthTokens,
    now: float,
) -> Refreshed | Rejected:
    """What the token endpoint's answer means for the account."""
    text = body.decode("utf-8", "replace")
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        doc = None
    if not 200 <= status < 300:
        return _rejected(spec, status, headers, text, doc if isinstance(doc, dict) else {}, old, now)
    if not isinstance(doc, dict):
        return Rejected(False, f"the token endpoint answered HTTP {status} without a JSON object")
    if spec.style is RefreshStyle.COPILOT_EXCHANGE:
        return _copilot(doc, old, now)
    read = tokens_from_reply(doc, now, old)
    if read is None:
        return Rejected(False, f"the token endpoint answered HTTP {status} without an access token")
    tokens, expires_at = read
    meta: dict[str, Any] = {}
    if provider is not None and "codex-id-token" in provider.post_link and (claims := jwt_claims(tokens.id_token)):
        meta.update(identity(claims))
    if isinstance(arn := doc.get("profileArn"), str) and arn:
        meta["profileArn"] = arn  # Kiro's social refresh names the profile the account calls with
    return Refreshed(tokens, expires_at, meta)


def tokens_from_reply(
    doc: Mapping[str, Any], now: float, old: OAuthTokens | None = None
) -> tuple[OAuthTokens, float] | None:
    """The tokens and access-token expiry of a successful token reply, in OAuth's snake case or AWS's camel
    case; a refresh token or id token the reply leaves out is kept from `old`. None without an access token.
    Linking reads its first reply with this too, so link and refresh agree."""
    access = _text(doc, "access_token", "accessToken")
    if access is None:
        return None
    tokens = OAuthTokens(
        access_token=access,
        refresh_token=_text(doc, "refresh_token", "refreshToken") or (old.refresh_token if old else None),
        id_token=_text(doc, "id_token", "idToken") or (old.id_token if old else None),
        client_secret=old.client_secret if old else None,
    )
    return tokens, _expiry(doc, access, now)


def _copilot(doc: Mapping[str, Any], old: OAuthTokens, now: float) -> Refreshed | Rejected:
    token = _text(doc, "token")
    if token is None:
        return Rejected(False, "the Copilot token exchange answered without a token")
    # The GitHub token is the refresh token and does not change; the Copilot token is the access token.
    tokens = OAuthTokens(access_token=token, refresh_token=old.refresh_token, id_token=old.id_token)
    endpoints = doc.get("endpoints")
    api = endpoints.get("api") if isinstance(endpoints, dict) else None
    # the plan's API host goes on the connection (`baseUrl`), as linking put it there; only ever over TLS
    base = api.rstrip("/") if isinstance(api, str) and api.startswith("https://") else None
    sku = _text(doc, "sku")
    return Refreshed(tokens, _expiry(doc, token, now), {"plan": sku} if sku else {}, base)


def _rejected(
    spec: RefreshSpec,
    status: int,
    headers: Mapping[str, str],
    text: str,
    doc: Mapping[str, Any],
    old: OAuthTokens,
    now: float,
) -> Rejected:
    code, description = _error(doc)
    if code:
        reason = f"{code}: {description}" if description else code
        reason = f"{reason} (HTTP {status})"
    else:
        reason = f"the token endpoint answered HTTP {status}" + (f": {description}" if description else "")
    reason = _scrub(reason, old)
    if spec.style is RefreshStyle.COPILOT_EXCHANGE and status == 401:
        return Rejected(True, reason)
    if code is not None and code in spec.fatal_errors:
        return Rejected(True, reason)
    wait = retry_hint(headers, text, now) if status in (429, 503) else None
    return Rejected(False, reason, wait)


def _error(doc: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(OAuth error code, description) from the shapes providers answer with: RFC 6749 `error` +
    `error_description`, OpenAI's `error: {code, message}`, AWS's `__type`, GitHub's `message`."""
    error = doc.get("error")
    code: str | None = None
    description = _text(doc, "error_description", "message")
    if isinstance(error, str) and error:
        code = error
    elif isinstance(error, dict):
        code = _text(error, "code", "type")
        description = _text(error, "message") or description
    kind = doc.get("__type")
    if isinstance(kind, str) and kind:
        name = kind.rsplit("#", 1)[-1]
        code = _AWS_ERRORS.get(name, code or name)
    if code in _AWS_ERRORS:
        code = _AWS_ERRORS[code]
    return code, description


def _scrub(reason: str, tokens: OAuthTokens) -> str:
    for secret in (tokens.access_token, tokens.refresh_token, tokens.id_token, tokens.client_secret):
        if secret and len(secret) >= 8:
            reason = reason.replace(secret, "<redacted>")
    reason = " ".join(reason.split())
    return reason if len(reason) <= _REASON_LIMIT else reason[: _REASON_LIMIT - 1] + "…"


def _text(doc: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = doc.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _expiry(doc: Mapping[str, Any], access: str, now: float) -> float:
    """Epoch seconds the access token expires: expires_in/expiresIn from `now`, an absolute expires_at
    (Copilot: epoch seconds) or expiresAt (ISO 8601), else the token's own `exp` claim, else 0 (unknown)."""
    for name in ("expires_in", "expiresIn"):
        seconds = _number(doc.get(name))
        if seconds is not None and seconds > 0:
            return now + seconds
    for name in ("expires_at", "expiresAt"):
        value = doc.get(name)
        at = _number(value)
        if at is None and isinstance(value, str):
            try:
                at = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                at = None
        if at is not None and at > 0:
            return at / 1000 if at > 1e12 else at
    claims = jwt_claims(access)
    exp = _number(claims.get("exp")) if claims else None
    return exp if exp is not None and exp > 0 else 0.0
