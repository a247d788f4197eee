"""Cloud credential encryption with AWS KMS (locally an AES-GCM key file does this, see crypto.py).

Each secret is one KMS `Encrypt` under the stack's key, with an encryption context naming the record
(`{"app": "omniroute-edge", "kind": ..., "id": ...}`): KMS refuses to decrypt a ciphertext presented with
any other context, so a ciphertext copied onto another record is useless, and CloudTrail shows which
record each decrypt was for. The context is not secret; the plaintext never appears in it.

Decrypted values are cached in memory by (ciphertext, context): a gateway instance reloads its
configuration every few seconds, and each stored ciphertext costs one KMS call per instance, not one
per reload. Ciphertext format: `kms:v1:<base64url(CiphertextBlob)>`.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from shared.errors import InvalidRequest
from shared.ports import DecryptionFailed

_PREFIX = "kms:v1:"
APP_CONTEXT = {"app": "omniroute-edge"}
MAX_PLAINTEXT = 4096  # KMS Encrypt's limit
MAX_BLOB = 6144  # KMS Decrypt's limit on CiphertextBlob (and at least 1 byte)
_NOT_OURS = {"InvalidCiphertextException", "IncorrectKeyException"}


class KmsCipher:
    def __init__(self, key_id: str, region: str, *, client: Any = None, cache_size: int = 1024) -> None:
        self._key_id = key_id
        self._region = region
        self._client = client
        self._cache: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], str] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _kms(self) -> Any:
        if self._client is None:
            # botocore only: boto3 adds import time and nothing we use. Endpoint and credentials come from
            # the SDK's usual environment (the function's role in Lambda; AWS_ENDPOINT_URL_KMS in tests).
            import botocore.config
            import botocore.session

            config = botocore.config.Config(
                connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
            )
            self._client = botocore.session.get_session().create_client("kms", region_name=self._region, config=config)
        return self._client

    @staticmethod
    def _context(context: Mapping[str, str]) -> dict[str, str]:
        return {**APP_CONTEXT, **{k: str(v) for k, v in context.items()}}

    def encrypt(self, plaintext: str, context: Mapping[str, str]) -> str:
        raw = plaintext.encode("utf-8")
        if len(raw) > MAX_PLAINTEXT:
            raise InvalidRequest(f"A stored secret may be at most {MAX_PLAINTEXT} bytes.", code="secret_too_large")
        resp = self._kms().encrypt(KeyId=self._key_id, Plaintext=raw, EncryptionContext=self._context(context))
        ciphertext = _PREFIX + base64.urlsafe_b64encode(resp["CiphertextBlob"]).decode("ascii")
        self._remember((ciphertext, tuple(sorted(context.items()))), plaintext)
        return ciphertext

    def decrypt(self, ciphertext: str, context: Mapping[str, str]) -> str:
        cache_key = (ciphertext, tuple(sorted(context.items())))
        with self._lock:
            cached = self._cache.get(cache_key)
            if cached is not None:
                self._cache.move_to_end(cache_key)
                return cached
        if not ciphertext.startswith(_PREFIX):
            raise DecryptionFailed("not a KMS ciphertext of this gateway")
        try:
            blob = base64.urlsafe_b64decode(ciphertext[len(_PREFIX) :])
        except (ValueError, binascii.Error) as exc:
            raise DecryptionFailed("malformed KMS ciphertext") from exc
        if not 1 <= len(blob) <= MAX_BLOB:
            # KMS would answer ValidationException, which is no verdict on the credential: decided here instead.
            raise DecryptionFailed("malformed KMS ciphertext")
        try:
            resp = self._kms().decrypt(
                CiphertextBlob=blob, KeyId=self._key_id, EncryptionContext=self._context(context)
            )
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in _NOT_OURS:
                raise DecryptionFailed(f"KMS refused the ciphertext for this key and record ({code})") from exc
            raise  # throttling, permissions, network: not the credential's fault; the caller keeps its old copy
        plaintext = bytes(resp["Plaintext"]).decode("utf-8")
        self._remember(cache_key, plaintext)
        return plaintext

    def _remember(self, cache_key: tuple[str, tuple[tuple[str, str], ...]], plaintext: str) -> None:
        with self._lock:
            self._cache[cache_key] = plaintext
            self._cache.move_to_end(cache_key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
