"""Local credential encryption: AES-256-GCM with a key file in the data dir (KMS replaces it in the cloud).

Ciphertext format: `enc:v1:<base64url(nonce || ciphertext+tag)>`. The record context (kind, id) is the
associated data, so a ciphertext copied onto another record does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.ports import DecryptionFailed

_PREFIX = "enc:v1:"


class CipherError(DecryptionFailed):
    pass


class KeyFileError(ValueError):
    """The key file exists but is not a key (truncated, edited, another format)."""


def _aad(context: Mapping[str, str]) -> bytes:
    return "&".join(f"{k}={context[k]}" for k in sorted(context)).encode("utf-8")


class AesGcmCipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._aead = AESGCM(key)

    @classmethod
    def from_key_file(cls, path: Path, *, create: bool = True) -> AesGcmCipher:
        """Load the key, creating it (0600, atomically) on first use when `create` allows."""
        if not path.exists():
            if not create:
                raise FileNotFoundError(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(base64.b64encode(secrets.token_bytes(32)))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        try:
            return cls(base64.b64decode(path.read_bytes().strip(), validate=True))
        except (ValueError, binascii.Error) as exc:
            raise KeyFileError(f"{path} does not hold a base64 256-bit key ({exc})") from exc

    def encrypt(self, plaintext: str, context: Mapping[str, str]) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), _aad(context))
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, ciphertext: str, context: Mapping[str, str]) -> str:
        if not ciphertext.startswith(_PREFIX):
            raise CipherError("not an OmniRoute ciphertext")
        try:
            raw = base64.urlsafe_b64decode(ciphertext[len(_PREFIX) :])
            return self._aead.decrypt(raw[:12], raw[12:], _aad(context)).decode("utf-8")
        except (InvalidTag, ValueError, binascii.Error) as exc:
            raise CipherError("credential does not decrypt with this key and record") from exc
