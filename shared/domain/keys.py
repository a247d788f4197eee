"""Gateway API keys: generated with 256 bits of randomness, stored only as SHA-256 hashes.

A fast hash is the right tool for high-entropy random keys (no dictionary to attack), and it keeps the
per-request check to one hash and one dictionary look-up.
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "sk-omni-"


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def display_form(key: str) -> str:
    """What lists show: enough to recognise a key, never enough to use it."""
    return f"{key[: len(KEY_PREFIX) + 4]}…{key[-4:]}"


def mask_secret(secret: str) -> str:
    """Masked form of an upstream credential for admin responses: enough to tell two keys apart.

    Short secrets show nothing; long ones show their first and last four characters (at most a third of
    the key: the first characters are usually a public prefix such as `sk-` or `gsk_`).
    """
    if len(secret) < 24:
        return "****"
    return f"{secret[:4]}…{secret[-4:]}"
