"""Answers given twice without calling the upstream twice: idempotent retries and the exact response cache.

Idempotency: a request carrying `Idempotency-Key` (or `X-Request-Id`) claims that key for 5 s, scoped to
its API key and to the request's body (the same key with another body is another request). A duplicate
within the window gets the first answer replayed (`X-OmniRoute-Idempotent: true`) — streams too, as the
exact bytes the first client received, up to `MAX_REPLAY_BYTES` — or waits for it while it is still
running. Failed requests drop their claim, so a retry is not refused.

Cache: non-stream requests with temperature exactly 0 are answered from the cache when everything that
changes the answer is the same: the client format, the requested model, the whole body except transport
and bookkeeping fields (`stream`, `user`, `metadata`, ...), and the gateway settings that rewrite requests
(system prompt, thinking mode). `X-OmniRoute-No-Cache: true` skips it. Each instance keeps a small copy
in memory in front of the State table.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from shared.domain.config import GatewaySettings
from shared.domain.routing import StoredReply
from shared.providers.spec import WireFormat
from shared.services.routing_state import RoutingState

IDEMPOTENCY_SECONDS = 5.0
MAX_REPLAY_BYTES = 256 * 1024
LOCAL_CACHE_ENTRIES = 256
LOCAL_CACHE_BYTES = 16 * 1024 * 1024
# Fields that do not change the answer: the cache ignores them.
_VOLATILE = ("stream", "stream_options", "user", "metadata", "prompt_cache_key", "safety_identifier")


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes")


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    misses: int = 0
    replayed: int = 0


class ReplayService:
    def __init__(self, state: RoutingState) -> None:
        self._state = state
        self._local: OrderedDict[str, StoredReply] = OrderedDict()
        self._local_bytes = 0
        self.stats = CacheStats()

    # ----- idempotency -------------------------------------------------------------------------------

    @staticmethod
    def idempotency_scope(headers: Mapping[str, str], key_id: str | None, path: str, raw_body: bytes) -> str | None:
        """The claim's key: the API key, the idempotency key, the endpoint (a Gemini `generateContent` is not
        its `streamGenerateContent`) and the body."""
        value = headers.get("idempotency-key") or headers.get("x-request-id")
        if not value:
            return None
        digest = hashlib.sha256()
        for part in (key_id or "-", value, path):
            digest.update(part.encode() + b"\x00")
        digest.update(raw_body)
        return digest.hexdigest()[:40]

    async def begin(self, scope: str, owner: str) -> StoredReply | None:
        """Claim the key for `owner` (a token of this request): None when this request goes ahead, else the
        first request's answer to replay. A first request still running is waited for until its claim
        lapses; then this one goes ahead (claiming it, or, if a third request was faster, unclaimed: its
        answer is then not stored, as `finish` only stores for the claim's owner)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + IDEMPOTENCY_SECONDS + 1.0
        while True:
            claim = await self._state.claim(scope, owner, IDEMPOTENCY_SECONDS)
            if claim.owned:
                return None
            if claim.reply is not None:
                self.stats.replayed += 1
                return claim.reply
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(0.25)  # each look is a conditional write that fails: not too often

    async def finish(self, scope: str, owner: str, reply: StoredReply | None) -> None:
        """The claimed request's answer (None: it failed, drop the claim). Only the claim's owner writes.
        Awaited before the answer's last byte: a duplicate must find it, and Lambda may freeze right after."""
        if reply is None or not 200 <= reply.status < 300 or len(reply.body) > MAX_REPLAY_BYTES:
            await self._state.abandon(scope, owner)
        else:
            await self._state.complete(scope, owner, reply, IDEMPOTENCY_SECONDS)

    def recording(
        self, scope: str, owner: str, chunks: AsyncIterator[bytes], headers: Mapping[str, str], failed: Any
    ) -> AsyncIterator[bytes]:
        """Relay a stream while keeping its bytes; once it ended cleanly, they are the replay. `failed()`
        says whether the stream ended with an error."""

        async def relay() -> AsyncIterator[bytes]:
            kept: list[bytes] | None = []
            size = 0
            complete = False
            try:
                async for chunk in chunks:
                    if kept is not None:
                        size += len(chunk)
                        if size > MAX_REPLAY_BYTES:
                            kept = None
                        else:
                            kept.append(chunk)
                    yield chunk
                complete = True
            finally:
                if complete and kept is not None and not failed():
                    reply = StoredReply(200, dict(headers), b"".join(kept), "text/event-stream")
                    await self.finish(scope, owner, reply)
                else:
                    await self.finish(scope, owner, None)

        return relay()

    # ----- cache -------------------------------------------------------------------------------------

    @staticmethod
    def cache_key(
        client: WireFormat,
        model: str,
        body: Mapping[str, Any],
        settings: GatewaySettings,
        headers: Mapping[str, str],
        *,
        stream: bool,
    ) -> str | None:
        """The cache key, or None when the request is not cacheable (streamed, not temperature 0, opted out,
        or the cache is off)."""
        if stream or settings.cache_ttl <= 0 or _truthy(headers.get("x-omniroute-no-cache")):
            return None
        if _temperature(client, body) != 0:
            return None
        kept = {k: v for k, v in body.items() if k not in _VOLATILE}
        doc = {
            "client": client.value,
            "model": model,
            "body": kept,
            "beta": headers.get("anthropic-beta"),  # features an Anthropic client opted into
            "systemPrompt": settings.system_prompt,
            "thinking": [settings.thinking_mode, settings.thinking_budget],
        }
        return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()

    async def lookup(self, key: str) -> StoredReply | None:
        reply = self._local.get(key)
        if reply is not None:
            self._local.move_to_end(key)
        else:
            reply = await self._state.cache_get(key)
            if reply is not None:
                self._remember(key, reply)
        if reply is None:
            self.stats.misses += 1
        else:
            self.stats.hits += 1
        return reply

    async def store(self, key: str, reply: StoredReply, ttl: float) -> None:
        if reply.status != 200:
            return
        self._remember(key, reply)
        await self._state.cache_put(key, reply, ttl)

    def _remember(self, key: str, reply: StoredReply) -> None:
        old = self._local.pop(key, None)
        if old is not None:
            self._local_bytes -= len(old.body)
        self._local[key] = reply
        self._local_bytes += len(reply.body)
        while self._local and (len(self._local) > LOCAL_CACHE_ENTRIES or self._local_bytes > LOCAL_CACHE_BYTES):
            _, dropped = self._local.popitem(last=False)
            self._local_bytes -= len(dropped.body)

    def cache_view(self) -> dict[str, float | int]:
        total = self.stats.hits + self.stats.misses
        return {
            "hits": self.stats.hits,
            "misses": self.stats.misses,
            "hitRate": round(self.stats.hits / total, 4) if total else 0.0,
            "entries": len(self._local),
        }


def _temperature(client: WireFormat, body: Mapping[str, Any]) -> object:
    if client is WireFormat.GEMINI:
        config = body.get("generationConfig")
        return config.get("temperature") if isinstance(config, Mapping) else None
    return body.get("temperature")
