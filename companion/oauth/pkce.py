"""PKCE (RFC 7636) and the `state` that ties a callback to the login that asked for it.

The verifier is 43 characters of the unreserved alphabet (32 random bytes, base64url without padding), the
challenge `BASE64URL(SHA256(verifier))` (method S256, the only one any provider here accepts). `state` is as
random: a callback whose state differs did not come from the authorisation this process started.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass

# RFC 7636 §4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"
VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def challenge_for(verifier: str) -> str:
    """The S256 code challenge of `verifier`."""
    if not VERIFIER_RE.match(verifier):
        raise ValueError("a PKCE verifier is 43 to 128 unreserved characters (RFC 7636 §4.1)")
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


@dataclass(frozen=True, slots=True)
class Pkce:
    verifier: str
    challenge: str
    method: str = "S256"

    def __repr__(self) -> str:  # the verifier is what makes a stolen code useless: never print it
        return f"Pkce(challenge={self.challenge!r})"


def new_pkce(random_bytes: int = 32) -> Pkce:
    """A fresh verifier (32 random bytes give 43 characters; at most 96 bytes fit in 128) and its challenge."""
    if not 32 <= random_bytes <= 96:
        raise ValueError("a PKCE verifier needs 32 to 96 random bytes (43 to 128 characters)")
    verifier = _b64url(secrets.token_bytes(random_bytes))
    return Pkce(verifier, challenge_for(verifier))


def new_state() -> str:
    """An unguessable `state` value (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)
