"""GitHub Copilot chat: OpenAI Chat Completions at the plan's API host, with a short-lived Copilot token.

The token (`Authorization: Bearer`, minted from the GitHub token by the refresher) and the editor identity
(the catalogue row's extra headers) are already on the call. What the service wants beyond that, as the
VS Code extension sends it (CLIProxyAPIPlus `github_copilot_executor.go`; 9router `executors/github.js`;
project notes `oauth-providers.md` §6):
- `X-Request-Id` per request, and `X-Initiator`: `user` when a person typed the last message, `agent` when
  a tool result or the model's own turn leads it on (premium requests are counted on user turns);
- `Copilot-Vision-Request: true` on a request carrying an image, which is refused without it;
- content parts of the `text` and `image_url` types only: anything else (tool or thinking blocks a
  translated client left, files) is flattened to text;
- Claude models take no reasoning parameters here; GPT-5 and o-series models take
  `max_completion_tokens` and refuse `max_tokens`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson

from shared.domain.config import Connection
from shared.ports import UpstreamResponse
from shared.providers.catalog import get_provider
from shared.providers.executors import UpstreamCall
from shared.providers.spec import WireFormat

_KEPT_PARTS = ("text", "image_url")
_BINARY_PARTS = ("input_audio", "file", "image", "document")  # their data is no use as text
_REASONING_FIELDS = ("thinking", "reasoning", "reasoning_effort")
_CLAUDE = re.compile(r"^claude-", re.IGNORECASE)
_COMPLETION_TOKENS = re.compile(r"^(gpt-5|o\d)", re.IGNORECASE)


def _editor_headers() -> tuple[tuple[str, str], ...]:
    spec = get_provider("github")
    return spec.extra_headers if spec is not None else ()


def _part_text(part: dict[str, Any]) -> str:
    """A content part that Copilot does not take, as text."""
    kind = str(part.get("type") or "")
    for key in ("text", "thinking", "refusal"):
        if isinstance(part.get(key), str):
            return str(part[key])
    if kind in _BINARY_PARTS:
        return f"[{kind} omitted: not supported by GitHub Copilot]"
    if kind == "redacted_thinking":
        return ""
    if kind == "tool_result":
        content = part.get("content")
        inner = _flattened(content) if isinstance(content, list) else content
        return _as_text(inner)
    fields = {k: v for k, v in part.items() if k != "type"}
    return f"[{kind}] {orjson.dumps(fields).decode()}" if kind else orjson.dumps(fields).decode()


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(str(p.get("text", "")) for p in value if isinstance(p, dict))
    return "" if value is None else orjson.dumps(value).decode()


def _flattened(parts: list[Any]) -> list[Any]:
    out: list[Any] = []
    for part in parts:
        if not isinstance(part, dict) or part.get("type") in _KEPT_PARTS:
            out.append(part)
            continue
        text = _part_text(part)
        if text:
            out.append({"type": "text", "text": text})
    return out


def _has_image(messages: list[Any]) -> bool:
    return any(
        isinstance(m, dict)
        and isinstance(m.get("content"), list)
        and any(isinstance(p, dict) and p.get("type") == "image_url" for p in m["content"])
        for m in messages
    )


def copilot_body(payload: dict[str, Any]) -> dict[str, Any]:
    """A Chat Completions request as Copilot accepts it (a new dict; `payload` is not touched)."""
    body = dict(payload)
    model = str(body.get("model") or "")
    messages = body.get("messages")
    if isinstance(messages, list):
        body["messages"] = [
            {**m, "content": _flattened(m["content"])} if isinstance(m, dict) and isinstance(m.get("content"), list)
            else m
            for m in messages
        ]  # fmt: skip
    if _CLAUDE.match(model):
        for name in _REASONING_FIELDS:
            body.pop(name, None)
        if isinstance(body.get("messages"), list):
            body["messages"] = [
                {k: v for k, v in m.items() if k != "reasoning_content"} if isinstance(m, dict) else m
                for m in body["messages"]
            ]
    if _COMPLETION_TOKENS.match(model) and "max_tokens" in body:
        limit = body.pop("max_tokens")
        body.setdefault("max_completion_tokens", limit)
    return body


def initiator(messages: object) -> str:
    """`user` when the last message is the person's, `agent` when the conversation goes on by itself."""
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        return "user" if messages[-1].get("role") == "user" else "agent"
    return "user"


class CopilotExecutor:
    wire_format = WireFormat.OPENAI

    def prepare(self, call: UpstreamCall, connection: Connection | None) -> UpstreamCall:
        body = copilot_body(call.payload)
        headers = dict(call.headers)
        for name, value in _editor_headers():
            headers.setdefault(name, value)
        headers["x-request-id"] = str(uuid.uuid4())
        headers["x-initiator"] = initiator(body.get("messages"))
        messages = body.get("messages")
        if isinstance(messages, list) and _has_image(messages):
            headers["copilot-vision-request"] = "true"
        return UpstreamCall(call.url, headers, body, call.stream, call.notes)

    def adapt(self, resp: UpstreamResponse, call: UpstreamCall, *, client_stream: bool) -> UpstreamResponse:
        return resp
