"""Gemini `streamGenerateContent?alt=sse` streams ↔ canonical stream events.

Each SSE `data:` payload is a whole GenerateContentResponse holding the next piece of the answer: text
and thought text arrive in pieces, a `functionCall` arrives whole in one chunk, and the last chunk
carries `finishReason` and `usageMetadata`. There is no terminator: the stream ends when the connection
does, so `finish()` decides between a complete answer (a finish reason was seen) and a cut one.

Thought signatures: the decoder reads each chunk with the non-stream parser, which keeps a signature as
a signed (possibly empty) reasoning part before the part it rode on. The encoder puts a reasoning part's
signature on an empty thought part right after its thought text, or, for a signed reasoning part without
text, on the part that follows it (a function call, or text) or an empty thought part at the end.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from shared.domain.usage import Usage
from shared.formats import gemini
from shared.formats.canonical import FinishReason, Reasoning, Text, ToolCall
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


class GeminiStreamDecoder:
    def __init__(self) -> None:
        self._started = False
        self._ended = False
        self._next = 0
        self._open: tuple[str, int] | None = None
        self._finish: FinishReason | None = None
        self._saw_calls = False
        self._usage: Usage | None = None

    def _close(self) -> list[StreamEvent]:
        if self._open is None:
            return []
        index = self._open[1]
        self._open = None
        return [PartEnd(index)]

    def _part(self, kind: str) -> tuple[list[StreamEvent], int]:
        out: list[StreamEvent] = []
        if self._open is None or self._open[0] != kind:
            out = self._close()
            self._open = (kind, self._next)
            self._next += 1
        return out, self._open[1]

    def feed(self, data: bytes) -> list[StreamEvent]:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise StreamOrderError(f"a Gemini stream chunk is not JSON: {data[:80]!r}") from exc
        if isinstance(chunk, dict) and isinstance(chunk.get("error"), dict):
            self._ended = True
            error = chunk["error"]
            return [
                StreamFailed(str(error.get("message") or "upstream error"), str(error.get("status") or "api_error"))
            ]
        if not isinstance(chunk, dict):
            raise StreamOrderError("a Gemini stream chunk is not a JSON object")
        answer = gemini.parse_response(chunk)
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            out.append(StreamStart(answer.id, answer.model))
        for part in answer.parts:
            if isinstance(part, Text):
                events, index = self._part("text")
                out += [*events, TextDelta(index, part.text)]
            elif isinstance(part, Reasoning):
                events, index = self._part("reasoning")
                out += events
                if part.redacted is not None:
                    out.append(ReasoningDelta(index, redacted=part.redacted))
                if part.text:
                    out.append(ReasoningDelta(index, part.text))
                if part.signature:
                    out += [ReasoningDelta(index, signature=part.signature), *self._close()]
            elif isinstance(part, ToolCall):
                self._saw_calls = True
                out += self._close()
                index = self._next
                self._next += 1
                out += [ToolCallStart(index, part.id, part.name), ToolCallDelta(index, part.arguments), PartEnd(index)]
        candidates = chunk.get("candidates")
        first = candidates[0] if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict) else {}
        if first.get("finishReason") or (candidates == [] and answer.finish_reason is FinishReason.CONTENT_FILTER):
            finish = answer.finish_reason
            self._finish = FinishReason.TOOL_CALLS if finish is FinishReason.STOP and self._saw_calls else finish
        if answer.usage is not None:
            self._usage = answer.usage
        return out

    def finish(self) -> list[StreamEvent]:
        if self._ended:
            return []
        self._ended = True
        if self._finish is None:
            return [StreamFailed("The upstream ended the stream before finishing its answer.", "api_error")]
        return [*self._close(), StreamEnd(self._finish, self._usage)]


class GeminiStreamEncoder:
    def __init__(self) -> None:
        self._id = ""
        self._model = ""
        self._calls: dict[int, list[str]] = {}  # part index → [id, name, arguments]
        self._signature: str | None = None  # waiting for the part that follows its reasoning
        self._thought_text: set[int] = set()  # reasoning parts that had text
        self._done = False

    def _chunk(self, parts: list[dict[str, Any]], **candidate: Any) -> bytes:
        body: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": parts}, **candidate, "index": 0}]}
        if self._model:
            body["modelVersion"] = self._model
        if self._id:
            body["responseId"] = self._id
        return b"data: " + orjson.dumps(body) + b"\r\n\r\n"

    def _signed(self, part: dict[str, Any]) -> dict[str, Any]:
        if self._signature is not None:
            part["thoughtSignature"] = self._signature
            self._signature = None
        return part

    def feed(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        if isinstance(event, StreamStart):
            self._id, self._model = event.id, event.model
            return b""
        if isinstance(event, TextDelta):
            return self._chunk([self._signed({"text": event.text})]) if event.text or self._signature else b""
        if isinstance(event, ReasoningDelta):
            out = b""
            if event.text:
                self._thought_text.add(event.index)
                out += self._chunk([{"text": event.text, "thought": True}])
            if event.signature:
                if event.index in self._thought_text:
                    # the signature of thought text rides on a thought part of its own, right after it
                    out += self._chunk([{"text": "", "thought": True, "thoughtSignature": event.signature}])
                else:
                    self._signature = event.signature  # an empty signed thought: sign the part that follows
            return out
        if isinstance(event, ToolCallStart):
            self._calls[event.index] = [event.id, event.name, ""]
            return b""
        if isinstance(event, ToolCallDelta):
            self._calls[event.index][2] += event.arguments
            return b""
        if isinstance(event, PartEnd):
            call = self._calls.pop(event.index, None)
            if call is None:
                return b""
            call_id, name, arguments = call
            try:
                args = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError:
                args = {}
            function_call: dict[str, Any] = {"name": name, "args": args}
            if call_id:
                function_call["id"] = call_id
            return self._chunk([self._signed({"functionCall": function_call})])
        self._done = True
        if isinstance(event, StreamFailed):
            error = {"code": 500, "message": event.message, "status": "INTERNAL"}
            return b"data: " + orjson.dumps({"error": error}) + b"\r\n\r\n"
        parts = [self._signed({"text": "", "thought": True})] if self._signature else []
        out = self._chunk(parts, finishReason=gemini.finish_reason_out(event.finish_reason))
        if event.usage is not None:
            body = orjson.loads(out[len(b"data: ") :])
            body["usageMetadata"] = gemini.usage_metadata(event.usage)
            out = b"data: " + orjson.dumps(body) + b"\r\n\r\n"
        return out
