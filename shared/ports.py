"""Protocols the core needs from the outside world. Adapters in `shared.adapters` implement them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from shared.domain.config import Record


class ConfigStore(Protocol):
    """Durable configuration records (the Config table). Synchronous: callers run it off the event loop."""

    def list_all(self) -> list[Record]: ...

    def list(self, kind: str) -> list[Record]: ...

    def get(self, kind: str, id: str) -> Record | None: ...

    def create(self, kind: str, id: str, data: Mapping[str, Any]) -> Record:
        """Store a new record; raises `Conflict` if one with that id exists."""
        ...

    def update(self, kind: str, id: str, data: Mapping[str, Any], expected_version: int) -> Record:
        """Replace a record's data; raises `Conflict` on a stale version and `NotFound` if it is gone."""
        ...

    def put(self, kind: str, id: str, data: Mapping[str, Any]) -> Record:
        """Create or replace unconditionally (single documents such as settings)."""
        ...

    def delete(self, kind: str, id: str) -> bool: ...


class DecryptionFailed(Exception):
    """A stored secret does not decrypt: the key is not the one it was sealed with, or the record moved."""


class Cipher(Protocol):
    """Encrypts stored credentials. `context` names the record, so a ciphertext moved to another record fails.

    `decrypt` raises `DecryptionFailed` for a ciphertext it cannot open.
    """

    def encrypt(self, plaintext: str, context: Mapping[str, str]) -> str: ...

    def decrypt(self, ciphertext: str, context: Mapping[str, str]) -> str: ...


class UpstreamResponse(Protocol):
    status: int
    headers: Mapping[str, str]

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aread(self) -> bytes: ...

    async def aclose(self) -> None: ...


class UpstreamClient(Protocol):
    """Sends one HTTP request upstream and returns as soon as the status line and headers arrived."""

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, *, stream: bool
    ) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


class ConversationStore(Protocol):
    """Stored Responses conversations by response id (State table). Synchronous, like ConfigStore."""

    def save(self, response_id: str, conversation: dict[str, Any], ttl_seconds: int) -> None: ...

    def load(self, response_id: str) -> dict[str, Any] | None: ...
