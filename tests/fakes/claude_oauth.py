"""The fake Anthropic API as it answers a Claude Pro/Max OAuth access token.

`api.anthropic.com` takes a subscription's OAuth token as `Authorization: Bearer` only next to the
`oauth-2025-04-20` beta, and answers 401 "OAuth authentication is currently not supported." without it
(project notes `oauth-providers.md` §2); the token is no API key, so `x-api-key` carrying it is refused as an
invalid key. This wrapper puts those rules in front of `anthropic_upstream` (which answers, records every
request it accepts and keeps its control plane at `/_fake/*`).
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from starlette.types import Receive, Scope, Send

from tests.fakes.anthropic_upstream import create_app

OAUTH_BETA: Final = "oauth-2025-04-20"


class ClaudeOAuthUpstream:
    """An ASGI app; `state` is the Anthropic fake's (`requests`, `script`), so `fake_states` works on it."""

    def __init__(self, access_token: str) -> None:
        self.inner = create_app(api_key=access_token)
        self.state = self.inner.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
            betas = {b.strip() for name, value in headers if name == "anthropic-beta" for b in value.split(",")}
            if any(name == "x-api-key" for name, _ in headers):
                await _refuse(send, "invalid x-api-key")
                return
            if OAUTH_BETA not in betas:
                await _refuse(send, "OAuth authentication is currently not supported.")
                return
        await self.inner(scope, receive, send)


async def _refuse(send: Send, message: str) -> None:
    body = orjson.dumps(
        {"type": "error", "error": {"type": "authentication_error", "message": message}, "request_id": "req_oauth"}
    )
    headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})
