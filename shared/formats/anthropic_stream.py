"""Anthropic Messages streams: SSE events ↔ canonical stream events.

Decoder input is each frame's event name and `data:` payload; encoder output is whole frames
(`event: <type>\\ndata: <json>\\n\\n`). The encoder writes what Anthropic's SDKs and Claude Code expect:
`message_start` first; one content block per part, started before its deltas, blocks strictly one after
another (a new part closes the open block); every block closed before `message_delta`, then
`message_stop`. Usage is split as Anthropic splits it: what is known at the start in `message_start`,
the totals in `message_delta`.
"""

from __future__ import annotations

from typing import Any

import orjson

from shared.domain.usage import Usage
from shared.formats.anthropic_messages import (
    STOP_REASONS_IN,
    STOP_REASONS_OUT,
    usage_from_anthropic,
    usage_to_anthropic,
)
from shared.formats.canonical import FinishReason, compact_json
from shared.formats.stream import (
    PartEnd,
    ReasoningDelta,
    StreamEnd,
    StreamEvent,
    StreamFailed,
    StreamOrderError,
    StreamStart,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
)


def _merge(start: Usage | None, delta: Usage | None, delta_raw: dict[str, Any]) -> Usage | None:
    """message_delta usage is cumulative; fields it leaves out keep their message_start values."""
    if start is None and delta is None:
        return None
    start = start or Usage()
    if delta is None:
        return start
    has_input = any(k in delta_raw for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))
    return Usage(
        input=delta.input if has_input else start.input,
        output=delta.output or start.output,
        cached=delta.cached if "cache_read_input_tokens" in delta_raw else start.cached,
        cache_creation=delta.cache_creation if "cache_creation_input_tokens" in delta_raw else start.cache_creation,
    )


class AnthropicStreamDecoder:
    def __init__(self) -> None:
        self._parts: dict[int, int] = {}  # wire block index → part index
        self._next = 0
        self._start_usage: Usage | None = None
        self._usage: Usage | None = None
        self._finish: FinishReason | None = None
        self._stop_sequence: str | None = None
        self._ended = False

    def feed(self, event: str | None, data: bytes) -> list[StreamEvent]:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise StreamOrderError(f"an Anthropic stream event is not JSON: {data[:80]!r}") from exc
        kind = event or (body.get("type") if isinstance(body, dict) else None)
        if not isinstance(body, dict):
            raise StreamOrderError("an Anthropic stream event is not a JSON object")
        if kind == "message_start":
            message = body.get("message") or {}
            self._start_usage = usage_from_anthropic(message.get("usage"))
            return [StreamStart(str(message.get("id") or ""), str(message.get("model") or ""), usage=self._start_usage)]
        if kind == "content_block_start":
            return self._block_start(body)
        if kind == "content_block_delta":
            return self._block_delta(body)
        if kind == "content_block_stop":
            index = self._parts.get(int(body.get("index", -1)))
            return [PartEnd(index)] if index is not None else []
        if kind == "message_delta":
            delta = body.get("delta") or {}
            if delta.get("stop_reason"):
                self._finish = STOP_REASONS_IN.get(str(delta["stop_reason"]), FinishReason.UNKNOWN)
            if isinstance(delta.get("stop_sequence"), str):
                self._stop_sequence = delta["stop_sequence"]
            raw: dict[str, Any] = body["usage"] if isinstance(body.get("usage"), dict) else {}
            self._usage = _merge(self._start_usage, usage_from_anthropic(raw) if raw else None, raw)
            return []
        if kind == "message_stop":
            return self.finish()
        if kind == "error":
            error = body.get("error") or {}
            self._ended = True
            return [StreamFailed(str(error.get("message") or "upstream error"), str(error.get("type") or "api_error"))]
        return []  # ping, and event types added later

    def _block_start(self, body: dict[str, Any]) -> list[StreamEvent]:
        wire = int(body.get("index", len(self._parts)))
        block = body.get("content_block") or {}
        index = self._next
        self._next += 1
        self._parts[wire] = index
        kind = block.get("type")
        if kind == "text":
            return [TextDelta(index, str(block.get("text") or ""))]
        if kind == "thinking":
            return [ReasoningDelta(index, str(block.get("thinking") or ""), signature=block.get("signature") or None)]
        if kind == "redacted_thinking":
            return [ReasoningDelta(index, redacted=str(block.get("data") or ""))]
        if kind == "tool_use":
            out: list[StreamEvent] = [ToolCallStart(index, str(block.get("id") or ""), str(block.get("name") or ""))]
            if block.get("input"):
                out.append(ToolCallDelta(index, compact_json(block["input"])))
            return out
        self._ended = True
        return [StreamFailed(f"The upstream sent a {kind!r} content block, which cannot be translated.")]

    def _block_delta(self, body: dict[str, Any]) -> list[StreamEvent]:
        index = self._parts.get(int(body.get("index", -1)))
        if index is None:
            raise StreamOrderError("a content_block_delta for a block that never started")
        delta = body.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return [TextDelta(index, str(delta.get("text") or ""))]
        if kind == "thinking_delta":
            return [ReasoningDelta(index, str(delta.get("thinking") or ""))]
        if kind == "signature_delta":
            return [ReasoningDelta(index, signature=str(delta.get("signature") or ""))]
        if kind == "input_json_delta":
            fragment = str(delta.get("partial_json") or "")
            return [ToolCallDelta(index, fragment)] if fragment else []
        return []  # citations and later delta types carry nothing the canonical answer holds

    def finish(self) -> list[StreamEvent]:
        if self._ended:
            return []
        self._ended = True
        if self._finish is None:
            return [StreamFailed("The upstream ended the stream before finishing its answer.", "api_error")]
        return [StreamEnd(self._finish, self._usage or self._start_usage, self._stop_sequence)]


def _frame(kind: str, body: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **body}) + b"\n\n"


class AnthropicStreamEncoder:
    def __init__(self) -> None:
        self._wire: dict[int, int] = {}  # part index → block index
        self._open: int | None = None  # part index of the open block
        self._closed: set[int] = set()
        self._start_usage: Usage | None = None
        self._done = False

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        part = self._open
        self._open = None
        self._closed.add(part)
        return _frame("content_block_stop", {"index": self._wire[part]})

    def _start(self, part: int, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._wire[part] = len(self._wire)
        self._open = part
        return out + _frame("content_block_start", {"index": self._wire[part], "content_block": block})

    def _delta(self, part: int, delta: dict[str, Any]) -> bytes:
        if part in self._closed or part != self._open:
            raise StreamOrderError(f"a delta for part {part} after its block was closed (interleaved parts)")
        return _frame("content_block_delta", {"index": self._wire[part], "delta": delta})

    def feed(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        if isinstance(event, StreamStart):
            self._start_usage = event.usage
            usage = usage_to_anthropic(event.usage or Usage())
            message: dict[str, Any] = {
                "id": event.id,
                "type": "message",
                "role": "assistant",
                "model": event.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage,
            }
            return _frame("message_start", {"message": message})
        if isinstance(event, TextDelta):
            out = b""
            if event.index not in self._wire:
                out += self._start(event.index, {"type": "text", "text": ""})
            if event.text:
                out += self._delta(event.index, {"type": "text_delta", "text": event.text})
            return out
        if isinstance(event, ReasoningDelta):
            out = b""
            if event.index not in self._wire:
                if event.redacted is not None:
                    return self._start(event.index, {"type": "redacted_thinking", "data": event.redacted})
                out += self._start(event.index, {"type": "thinking", "thinking": "", "signature": ""})
            if event.text:
                out += self._delta(event.index, {"type": "thinking_delta", "thinking": event.text})
            if event.signature:
                out += self._delta(event.index, {"type": "signature_delta", "signature": event.signature})
            return out
        if isinstance(event, ToolCallStart):
            return self._start(event.index, {"type": "tool_use", "id": event.id, "name": event.name, "input": {}})
        if isinstance(event, ToolCallDelta):
            return self._delta(event.index, {"type": "input_json_delta", "partial_json": event.arguments})
        if isinstance(event, PartEnd):
            return self._close() if event.index == self._open else b""
        self._done = True
        if isinstance(event, StreamFailed):
            return _frame("error", {"error": {"type": event.type, "message": event.message}})
        out = self._close()
        stop_reason = STOP_REASONS_OUT[event.finish_reason]
        if event.finish_reason is FinishReason.STOP and event.stop_sequence is not None:
            stop_reason = "stop_sequence"
        usage = usage_to_anthropic(event.usage or self._start_usage or Usage())
        out += _frame(
            "message_delta",
            {"delta": {"stop_reason": stop_reason, "stop_sequence": event.stop_sequence}, "usage": usage},
        )
        return out + _frame("message_stop", {})
