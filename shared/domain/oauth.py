"""A linked subscription account's credentials, as stored and as the gateway uses them.

One `oauth` record per linked connection (Config table, `kind = "oauth"`, id = the connection's id), kept apart
from the connection record so the refresher's version-conditioned writes never race an owner renaming the
connection. Its data:

    {"provider": "codex",
     "secret": "<ciphertext of {accessToken, refreshToken, idToken?, clientSecret?}>",
     "expiresAt": 1732300000.0,          # the access token's expiry, epoch seconds (0: unknown)
     "tokenVersion": 3,                  # +1 on every new token pair
     "status": "active" | "relink_needed",
     "relinkReason": "...",              # why the grant is gone (the provider's error), when relink_needed
     "lastError": "...", "failures": 2, "retryAt": 1732290000.0,   # transient refresh failures
     "linkedAt": iso, "refreshedAt": iso,
     "meta": {"email", "accountId", "plan", "projectId", "apiBase", "clientId", "region", "authMethod",
              "profileArn", ...}}

Everything secret is inside `secret`, encrypted under the context `{kind: "oauth", id: <connection id>}`;
`meta` is plain (shown by `omniroute accounts`), and never holds a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson

ACTIVE = "active"
RELINK_NEEDED = "relink_needed"


def _frozen(value: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True, slots=True)
class OAuthTokens:
    """The secret half of a linked account. For GitHub Copilot the access token is the short-lived Copilot
    token and the refresh token is the long-lived GitHub (`ghu_`) token it is minted from."""

    access_token: str
    refresh_token: str | None = None
    id_token: str | None = None
    client_secret: str | None = None  # Kiro Builder ID: the registered OIDC client's secret

    def to_json(self) -> str:
        doc = {
            "accessToken": self.access_token,
            "refreshToken": self.refresh_token,
            "idToken": self.id_token,
            "clientSecret": self.client_secret,
        }
        return orjson.dumps({k: v for k, v in doc.items() if v is not None}).decode()

    @classmethod
    def from_json(cls, text: str) -> OAuthTokens:
        doc = orjson.loads(text)
        if not isinstance(doc, dict) or not isinstance(doc.get("accessToken"), str):
            raise ValueError("stored OAuth tokens have no access token")
        return cls(
            access_token=doc["accessToken"],
            refresh_token=doc.get("refreshToken"),
            id_token=doc.get("idToken"),
            client_secret=doc.get("clientSecret"),
        )

    def __repr__(self) -> str:  # never print a token by accident
        return "OAuthTokens(<redacted>)"


@dataclass(frozen=True, slots=True)
class OAuthAccount:
    """What the gateway knows of a linked account (in memory only; built from the `oauth` record).

    `tokens` is None when the secret could not be decrypted.
    """

    provider: str
    tokens: OAuthTokens | None
    expires_at: float
    token_version: int
    status: str = ACTIVE
    relink_reason: str | None = None
    meta: Mapping[str, Any] = field(default_factory=_frozen)

    def expired(self, now: float, margin: float = 0.0) -> bool:
        """Whether the access token is past its expiry (minus `margin` seconds). Unknown expiry: not expired."""
        return self.expires_at > 0 and now >= self.expires_at - margin

    @property
    def relink_needed(self) -> bool:
        return self.status == RELINK_NEEDED

    def __repr__(self) -> str:
        return f"OAuthAccount(provider={self.provider!r}, status={self.status!r}, expires_at={self.expires_at})"


def account_from_data(data: Mapping[str, Any], tokens: OAuthTokens | None) -> OAuthAccount:
    """The account an `oauth` record describes (its secret already decrypted into `tokens`)."""
    meta = data.get("meta")
    expires = data.get("expiresAt")
    version = data.get("tokenVersion")
    return OAuthAccount(
        provider=str(data.get("provider") or ""),
        tokens=tokens,
        expires_at=float(expires) if isinstance(expires, int | float) and not isinstance(expires, bool) else 0.0,
        token_version=int(version) if isinstance(version, int) and not isinstance(version, bool) else 1,
        status=RELINK_NEEDED if data.get("status") == RELINK_NEEDED else ACTIVE,
        relink_reason=str(data["relinkReason"]) if data.get("relinkReason") else None,
        meta=_frozen(meta if isinstance(meta, Mapping) else None),
    )


def credential_view(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What may be shown of a linked account's credentials (admin API, `omniroute accounts`): never a token."""
    if data is None:
        return None
    return {
        "status": data.get("status") or ACTIVE,
        "expiresAt": data.get("expiresAt") or None,
        "tokenVersion": data.get("tokenVersion"),
        "relinkReason": data.get("relinkReason"),
        "lastError": data.get("lastError"),
        "failures": data.get("failures") or 0,
        "retryAt": data.get("retryAt"),
        "linkedAt": data.get("linkedAt"),
        "refreshedAt": data.get("refreshedAt"),
        "meta": dict(data.get("meta") or {}),
    }
