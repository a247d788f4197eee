"""Grok CLI through an xAI OAuth login: the Responses API of the Grok CLI proxy (cli-chat-proxy.grok.com/v1).

The proxy serves the Grok CLI; CLIProxyAPI (`xai_executor.go`) calls it with the CLI's identity
(`X-XAI-Token-Auth: xai-grok-cli`, `x-grok-client-version`, a matching `User-Agent`) and the conversation id
in `x-grok-conv-id`, always streaming and rebuilding a JSON answer's output from the stream's items, as for
Codex (`responses_sse`). The request body is sent as it is.
"""

from __future__ import annotations

from shared.domain.config import Connection
from shared.ports import UpstreamResponse
from shared.providers.executors import UpstreamCall
from shared.providers.executors.responses_sse import backfilled_stream, final_response
from shared.providers.spec import WireFormat

CLIENT_VERSION = "0.2.93"


class GrokExecutor:
    wire_format = WireFormat.RESPONSES
    keeps_state = False  # `store: false` only: the gateway keeps the conversation for the client

    def prepare(self, call: UpstreamCall, connection: Connection | None) -> UpstreamCall:
        headers = {
            **call.headers,
            "accept": "text/event-stream",
            "x-xai-token-auth": "xai-grok-cli",
            "x-grok-client-version": CLIENT_VERSION,
            "user-agent": f"xai-grok-workspace/{CLIENT_VERSION}",
        }
        conversation = call.payload.get("prompt_cache_key")
        if isinstance(conversation, str) and conversation:
            headers["x-grok-conv-id"] = conversation
        return UpstreamCall(call.url, headers, {**call.payload, "stream": True}, True, call.notes)

    def adapt(self, resp: UpstreamResponse, call: UpstreamCall, *, client_stream: bool) -> UpstreamResponse:
        return backfilled_stream(resp) if client_stream else final_response(resp, "grok-cli")
