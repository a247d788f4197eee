"""What a ChatGPT (Codex) token says about its account, read from the JWT without verifying it.

The tokens come over TLS from auth.openai.com, and what is read here only names the account (the
`ChatGPT-Account-Id` header, the plan and email shown to the owner); chatgpt.com checks the token itself.
Claims as the Codex CLI reads them (openai/codex `codex-rs/login`): `https://api.openai.com/auth` holds
`chatgpt_account_id` and `chatgpt_plan_type`; the email is top-level or under `https://api.openai.com/profile`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson

AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"


def jwt_claims(token: str | None) -> dict[str, Any] | None:
    """A JWT's payload, unverified; None when `token` is not a JWT with a JSON object payload."""
    parts = (token or "").split(".")
    if len(parts) != 3:
        return None
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def identity(claims: Mapping[str, Any]) -> dict[str, str]:
    """`accountId`, `plan` and `email` from a ChatGPT token's claims: only the fields present."""
    auth = claims.get(AUTH_CLAIM)
    auth = auth if isinstance(auth, Mapping) else {}
    profile = claims.get(PROFILE_CLAIM)
    found = {
        "accountId": _text(auth.get("chatgpt_account_id")),
        "plan": _text(auth.get("chatgpt_plan_type")),
        "email": _text(claims.get("email")) or _text(profile.get("email") if isinstance(profile, Mapping) else None),
    }
    return {k: v for k, v in found.items() if v is not None}


def account_id(token: str | None) -> str | None:
    """The ChatGPT account a token (access or id token) names; None for anything else."""
    claims = jwt_claims(token)
    return identity(claims).get("accountId") if claims is not None else None
