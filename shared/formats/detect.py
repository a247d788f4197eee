"""Which wire format, and whether request or response, a JSON body is (for the translator playground).

Decided by the fields only one format has; a body that fits two (a bare `{"model", "messages",
"max_tokens"}` is both an OpenAI and an Anthropic request) goes to OpenAI unless something Anthropic-only
is present. Explicit `from`/`kind` always win over detection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from shared.errors import InvalidRequest

Kind = Literal["request", "response"]
_ANTHROPIC_BLOCKS = {"tool_use", "tool_result", "thinking", "redacted_thinking", "document"}
_ANTHROPIC_FIELDS = {"system", "stop_sequences", "top_k", "thinking", "anthropic_version"}


def _anthropic_blocks(messages: object) -> bool:
    if not isinstance(messages, list):
        return False
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list):
            for block in content:
                if isinstance(block, Mapping) and (
                    block.get("type") in _ANTHROPIC_BLOCKS or (block.get("type") == "image" and "source" in block)
                ):
                    return True
    return False


def detect(body: Mapping[str, Any]) -> tuple[str, Kind]:
    """(format, kind) of a body: format one of openai, anthropic, gemini, responses."""
    if "choices" in body:
        return "openai", "response"
    if body.get("type") == "message" and "content" in body:
        return "anthropic", "response"
    if "candidates" in body or ("usageMetadata" in body and "contents" not in body):
        return "gemini", "response"
    if body.get("object") == "response" or ("output" in body and "status" in body):
        return "responses", "response"
    if "contents" in body:
        return "gemini", "request"
    if "input" in body or "instructions" in body:
        return "responses", "request"
    if "messages" in body:
        if _ANTHROPIC_FIELDS & set(body) or _anthropic_blocks(body["messages"]):
            return "anthropic", "request"
        return "openai", "request"
    raise InvalidRequest(
        "Cannot tell the format of this body: give `from` (openai, anthropic, gemini, responses) and `kind`.",
        param="body",
        code="undetectable_format",
    )
