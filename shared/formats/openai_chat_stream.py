"""OpenAI Chat Completions streams: chunks ↔ canonical stream events.

Decoder input is each SSE `data:` payload (`[DONE]` included); encoder output is whole SSE frames, ending
with exactly one `data: [DONE]`. Text and reasoning (`reasoning_content`, DeepSeek's field; `reasoning`
is read too) are parts that end when another part starts; tool calls are parts keyed by their wire
`index`, which stay open until the stream ends (OpenAI streams each call's arguments in order, but the
index is what ties a fragment to its call).
"""

from __future__ import annotations

from typing import Any

import orjson

from shared.domain.usage import Usage
from shared.formats.canonical import FinishReason
from shared.formats.openai_chat import FINISH_REASONS_IN, FINISH_REASONS_OUT, usage_from_openai, usage_to_openai
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
from shared.formats.think_tags import ThinkTagSplitter

DONE_FRAME = b"data: [DONE]\n\n"


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class OpenAIStreamDecoder:
    def __init__(self) -> None:
        self._started = False
        self._ended = False
        self._next = 0
        self._open: tuple[str, int] | None = None  # the text or reasoning part being written
        self._tools: dict[int, int] = {}  # wire tool index → part index
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None
        self._tags: ThinkTagSplitter | None = ThinkTagSplitter()  # until the upstream sends real reasoning

    def feed(self, data: bytes) -> list[StreamEvent]:
        if data.strip() == b"[DONE]":
            return self.finish()
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise StreamOrderError(f"an OpenAI stream chunk is not JSON: {data[:80]!r}") from exc
        if not isinstance(chunk, dict):
            raise StreamOrderError("an OpenAI stream chunk is not a JSON object")
        if isinstance(chunk.get("error"), dict):
            error = chunk["error"]
            self._ended = True
            return [StreamFailed(str(error.get("message") or "upstream error"), str(error.get("type") or "api_error"))]
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            created = chunk.get("created")
            out.append(
                StreamStart(
                    id=str(chunk.get("id") or ""),
                    model=str(chunk.get("model") or ""),
                    created=created if isinstance(created, int) else None,
                )
            )
        if isinstance(chunk.get("usage"), dict):
            self._usage = usage_from_openai(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = _obj(choice.get("delta"))
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                self._tags = None  # reasoning has a field of its own: content is only content
                out += self._write("reasoning", reasoning)
            if isinstance(delta.get("content"), str) and delta["content"]:
                if self._tags is None:
                    out += self._write("text", delta["content"])
                else:
                    for kind, piece in self._tags.feed(delta["content"]):
                        out += self._write(kind, piece)
            for call in delta.get("tool_calls") or ():
                out += self._tool(call)
            if choice.get("finish_reason"):
                self._finish = FINISH_REASONS_IN.get(str(choice["finish_reason"]), FinishReason.UNKNOWN)
        return out

    def _close_open(self) -> list[StreamEvent]:
        if self._open is None:
            return []
        index = self._open[1]
        self._open = None
        return [PartEnd(index)]

    def _write(self, kind: str, text: str) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if self._open is None or self._open[0] != kind:
            out += self._close_open()
            self._open = (kind, self._next)
            self._next += 1
        index = self._open[1]
        out.append(TextDelta(index, text) if kind == "text" else ReasoningDelta(index, text))
        return out

    def _tool(self, call: Any) -> list[StreamEvent]:
        if not isinstance(call, dict):
            return []
        wire = call.get("index", 0)
        fn = _obj(call.get("function"))
        out: list[StreamEvent] = []
        if wire not in self._tools:
            out += self._close_open()
            index = self._next
            self._next += 1
            self._tools[wire] = index
            out.append(ToolCallStart(index, str(call.get("id") or f"call_{index}"), str(fn.get("name") or "")))
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments:
            out.append(ToolCallDelta(self._tools[wire], arguments))
        return out

    def finish(self) -> list[StreamEvent]:
        """The stream ended (`[DONE]`, or the connection closed)."""
        if self._ended:
            return []
        self._ended = True
        if self._finish is None:
            return [StreamFailed("The upstream ended the stream before finishing its answer.", "api_error")]
        out: list[StreamEvent] = []
        if self._tags is not None:
            for kind, piece in self._tags.flush():
                out += self._write(kind, piece)
        out += self._close_open()
        out += [PartEnd(index) for index in self._tools.values()]
        out.append(StreamEnd(self._finish, self._usage))
        return out


class OpenAIStreamEncoder:
    """Canonical events as OpenAI chunks. `include_usage`: send the usage chunk the client asked for."""

    def __init__(self, *, include_usage: bool = False) -> None:
        self._include_usage = include_usage
        self._id = ""
        self._model = ""
        self._created = 0
        self._tools: dict[int, int] = {}  # part index → wire tool index
        self._done = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        return b"data: " + orjson.dumps(body) + b"\n\n"

    def feed(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        if isinstance(event, StreamStart):
            self._id, self._model, self._created = event.id, event.model, event.created or 0
            return self._chunk({"role": "assistant", "content": ""})
        if isinstance(event, TextDelta):
            return self._chunk({"content": event.text}) if event.text else b""
        if isinstance(event, ReasoningDelta):
            return self._chunk({"reasoning_content": event.text}) if event.text else b""
        if isinstance(event, ToolCallStart):
            wire = len(self._tools)
            self._tools[event.index] = wire
            call = {
                "index": wire,
                "id": event.id,
                "type": "function",
                "function": {"name": event.name, "arguments": ""},
            }
            return self._chunk({"tool_calls": [call]})
        if isinstance(event, ToolCallDelta):
            wire = self._tools[event.index]
            return self._chunk({"tool_calls": [{"index": wire, "function": {"arguments": event.arguments}}]})
        if isinstance(event, PartEnd):
            return b""
        self._done = True
        if isinstance(event, StreamFailed):
            error = {"message": event.message, "type": event.type, "param": None, "code": None}
            return b"data: " + orjson.dumps({"error": error}) + b"\n\n"
        out = self._chunk({}, FINISH_REASONS_OUT[event.finish_reason])
        if self._include_usage:
            usage = usage_to_openai(event.usage or Usage())
            body = {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": usage,
            }
            out += b"data: " + orjson.dumps(body) + b"\n\n"
        return out + DONE_FRAME
