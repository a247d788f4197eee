"""Hand a grant to the target (`POST /api/oauth/link`), which encrypts and keeps it from then on.

The companion writes no file with a token and keeps nothing once this process ends; what it prints is the
account's id, provider, email/plan and expiry, never a token.
"""

from __future__ import annotations

from typing import Any

from companion.admin_client import AdminClient
from companion.oauth.grant import Grant
from shared.providers.oauth import OAuthProvider


def link_body(
    provider: OAuthProvider, grant: Grant, *, name: str | None = None, relink: str | None = None
) -> dict[str, Any]:
    """The `/api/oauth/link` request for `grant`."""
    t = grant.tokens
    tokens: dict[str, Any] = {"accessToken": t.access_token}
    for key, value in (("refreshToken", t.refresh_token), ("idToken", t.id_token), ("clientSecret", t.client_secret)):
        if value:
            tokens[key] = value
    if grant.expires_at > 0:
        tokens["expiresAt"] = grant.expires_at
    body: dict[str, Any] = {"provider": provider.id, "tokens": tokens, "meta": dict(grant.meta)}
    label = name or (None if grant.meta.get("email") else grant.meta.get("login"))
    if label:
        body["name"] = str(label)
    if grant.base_url:
        body["baseUrl"] = grant.base_url
    if relink:
        body["connectionId"] = relink
    return body


def push(
    client: AdminClient, provider: OAuthProvider, grant: Grant, *, name: str | None = None, relink: str | None = None
) -> dict[str, Any]:
    """The stored account as the target shows it (`{id, provider, name, oauth: {status, expiresAt, meta}}`).
    Raises AdminFailure when the target does not take it."""
    answer = client.post("/api/oauth/link", link_body(provider, grant, name=name, relink=relink))
    account = answer.get("account")
    return account if isinstance(account, dict) else {}
