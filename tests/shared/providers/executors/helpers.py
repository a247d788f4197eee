"""Helpers of the executor tests: linked accounts routed like any connection, and reading replies."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from shared.domain.config import ConfigSnapshot, Connection
from shared.domain.oauth import OAuthAccount, OAuthTokens
from shared.domain.resolve import Route, resolve_model
from shared.services.chat import JsonReply, StreamReply


def linked(
    provider: str,
    access_token: str,
    base_url: str,
    *,
    meta: Mapping[str, Any] | None = None,
    refresh_token: str | None = "rt-secret",
    conn_id: str = "conn_linked1",
) -> Connection:
    """A linked subscription account as the snapshot builds it: the access token is the connection's key."""
    account = OAuthAccount(
        provider=provider,
        tokens=OAuthTokens(access_token=access_token, refresh_token=refresh_token),
        expires_at=time.time() + 3600,
        token_version=1,
        meta=dict(meta or {}),
    )
    return Connection(
        id=conn_id,
        provider=provider,
        name=f"{provider} account",
        api_key=access_token,
        base_url=base_url,
        priority=0,
        enabled=True,
        oauth=account,
    )


def route(model: str, *connections: Connection) -> Route:
    return resolve_model(model, ConfigSnapshot.build(connections=connections))


def json_of(reply: JsonReply | StreamReply) -> Any:
    assert isinstance(reply, JsonReply), reply
    return orjson.loads(reply.body)


def sse_events(raw: bytes) -> list[Any]:
    """The JSON payloads of an event stream, in order (`[DONE]` left out)."""
    return [
        orjson.loads(line[6:])
        for line in raw.splitlines()
        if line.startswith(b"data: ") and line[6:].strip() != b"[DONE]"
    ]


def chat_text(raw: bytes) -> str:
    """The answer text of a Chat Completions stream."""
    return "".join(str(e["choices"][0]["delta"].get("content") or "") for e in sse_events(raw) if e.get("choices"))


async def streamed(reply: JsonReply | StreamReply) -> bytes:
    """Every byte of a streamed reply (its upstream connection released afterwards)."""
    assert isinstance(reply, StreamReply), reply
    try:
        return b"".join([chunk async for chunk in reply.chunks])
    finally:
        await reply.aclose()
