"""What a login obtained: the tokens, when the access token expires, and what the account is.

Token endpoints name their fields in snake_case (OAuth 2.0: `access_token`, `expires_in`) or in camelCase (AWS
SSO-OIDC and Kiro's auth service: `accessToken`, `expiresIn`); `grant_from_reply` reads either. The reply
itself is kept (never printed) because a post-link step may read more of it (Claude's `account`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from companion.oauth.session import LinkError
from shared.domain.oauth import OAuthTokens
from shared.services.refresh_wire import tokens_from_reply

# Fields of a token reply that say what the account is (never a secret); kept in the account's `meta`.
_REPLY_META = ("profileArn",)


@dataclass(frozen=True, slots=True)
class Grant:
    """`expires_at`: epoch seconds (0: the provider did not say). `base_url`: an API host this account must
    use (Copilot's plan host). `meta`: plain facts (email, plan, account id), never a secret."""

    tokens: OAuthTokens
    expires_at: float = 0.0
    meta: Mapping[str, Any] = field(default_factory=dict)
    base_url: str | None = None
    reply: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def with_meta(self, **facts: Any) -> Grant:
        """This grant with `facts` added to its meta (None values are left out)."""
        return replace(self, meta={**self.meta, **{k: v for k, v in facts.items() if v not in (None, "")}})

    def __repr__(self) -> str:
        return f"Grant(expires_at={self.expires_at}, meta={dict(self.meta)!r})"


def grant_from_reply(reply: Mapping[str, Any], now: float, *, what: str = "the token endpoint") -> Grant:
    """The grant a successful token reply carries; LinkError when it holds no access token."""
    read = tokens_from_reply(reply, now)
    if read is None:
        raise LinkError(f"{what} answered without an access token; nothing was linked")
    tokens, expires_at = read
    meta = {name: reply[name] for name in _REPLY_META if isinstance(reply.get(name), str) and reply[name]}
    return Grant(tokens=tokens, expires_at=expires_at, meta=meta, reply=dict(reply))
