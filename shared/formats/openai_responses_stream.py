"""OpenAI Responses streams: semantic SSE events ↔ canonical stream events.

Decoder input is each frame's event name and `data:` payload (the payload's `type` is used when a frame
has no `event:` line); encoder output is whole frames, `event: <type>\\ndata: <json>\\n\\n`, every payload
carrying its `type` and a `sequence_number` counting from 0.

The encoder writes the event order OpenAI sends and the `openai` SDK's stream accumulator checks:
`response.created`, `response.in_progress`, then per part one output item — `response.output_item.added`,
its content events, `response.output_item.done` — and last `response.completed` (`response.incomplete`
when the answer was cut by the token limit or a content filter, `response.failed` on an upstream error)
carrying the whole Response. Content events per item:
- message: `content_part.added`, `output_text.delta`..., `output_text.done`, `content_part.done`;
- reasoning: `reasoning_summary_part.added`, `reasoning_summary_text.delta`..., `.done`,
  `reasoning_summary_part.done` (only when there is summary text; the signature arrives as the item's
  `encrypted_content` in `output_item.done`);
- function_call: `function_call_arguments.delta`..., `.done`;
- custom_tool_call (a freeform tool, see `openai_responses`): `custom_tool_call_input.delta` once and
  `.done`, at the end of the part, because the canonical arguments are JSON (`{"input": ...}`) that can only
  be unwrapped whole.
Items are opened as their parts start and closed as their parts end (an OpenAI Chat upstream keeps its
tool calls open until the end: their items interleave, which the format allows). Item ids and the final
Response are built with `openai_responses.output_item`/`render_response`, so a stream and the complete
answer name everything alike. Give the encoder `openai_responses.echo(request)` so freeform and namespaced
calls come out as such and the Response echoes its request.

The decoder reads any such stream: a message's content part, a reasoning item and a call are each one
part; summary parts of one reasoning item are joined by a blank line (as `parse_response` joins them);
deltas an upstream skipped are recovered from `output_item.done`, and a stream carrying only the final
Response is read from it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from shared.formats.canonical import ChatResponse, FinishReason, Part, Reasoning, Text, ToolCall
from shared.formats.openai_responses import (
    ITEM_IDS,
    ToolKinds,
    finish_for,
    namespaced_name,
    output_item,
    parse_response,
    render_response,
    response_object,
    unwrap_custom_input,
    usage_from_responses,
)
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
    events_for,
)

# StreamFailed.type (OpenAI/Anthropic error types) ↔ a Response's error code.
_CODES_OUT = {"rate_limit_error": "rate_limit_exceeded", "invalid_request_error": "invalid_prompt"}
_CODES_IN = {v: k for k, v in _CODES_OUT.items()}


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _escaped(text: str) -> str:
    """`text` as it appears inside a JSON string (escaping is per character, so pieces concatenate)."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


@dataclass(slots=True)
class _Slot:
    """One canonical part being read: what it is and whether any content arrived as deltas."""

    index: int
    kind: str  # text | reasoning | tool | custom
    streamed: bool = False
    open: bool = True
    summaries: set[int] = field(default_factory=set)


class ResponsesStreamDecoder:
    def __init__(self) -> None:
        self._started = False
        self._ended = False
        self._next = 0
        self._slots: dict[tuple[int, int], _Slot] = {}  # (output index, content index) → part
        self._skipped: set[int] = set()  # output items with no canonical place (OpenAI's tool records)
        self._calls = False
        self._refusal = False

    def feed(self, event: str | None, data: bytes) -> list[StreamEvent]:
        if data.strip() == b"[DONE]":
            return []
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise StreamOrderError(f"a Responses stream event is not JSON: {data[:80]!r}") from exc
        if not isinstance(body, dict):
            raise StreamOrderError("a Responses stream event is not a JSON object")
        kind = body.get("type") if isinstance(body.get("type"), str) else event
        out: list[StreamEvent] = []
        if not self._started and kind not in ("error", "response.failed"):
            self._started = True
            response = _obj(body.get("response"))
            created = response.get("created_at")
            out.append(
                StreamStart(
                    id=str(response.get("id") or ""),
                    model=str(response.get("model") or ""),
                    created=int(created) if isinstance(created, int | float) and created else None,
                )
            )
        if kind == "response.output_item.added":
            out += self._item_added(body)
        elif kind == "response.content_part.added":
            out += self._content_part(body)
        elif kind in ("response.output_text.delta", "response.refusal.delta"):
            self._refusal |= kind == "response.refusal.delta"
            out += self._text_delta(body)
        elif kind in ("response.reasoning_summary_part.added", "response.reasoning_summary_text.delta"):
            out += self._summary(body, delta=kind.endswith(".delta"))
        elif kind == "response.reasoning_text.delta":
            out += self._delta(body, ("reasoning",), lambda i, d: ReasoningDelta(i, d))
        elif kind == "response.function_call_arguments.delta":
            out += self._delta(body, ("tool",), lambda i, d: ToolCallDelta(i, d))
        elif kind == "response.custom_tool_call_input.delta":
            out += self._delta(body, ("custom",), lambda i, d: ToolCallDelta(i, _escaped(d)))
        elif kind == "response.output_item.done":
            out += self._item_done(body)
        elif kind in ("response.completed", "response.incomplete"):
            out += self._terminal(_obj(body.get("response")))
        elif kind == "response.failed":
            error = _obj(_obj(body.get("response")).get("error"))
            out += self._fail(error.get("message"), error.get("code"))
        elif kind == "error":
            error = _obj(body.get("error")) or body
            out += self._fail(error.get("message"), error.get("code"))
        return out  # created, in_progress, *.done of content, and event types added later carry nothing new

    # -- items -----------------------------------------------------------------------------------------------

    def _open(self, output_index: int, content_index: int, kind: str) -> _Slot:
        slot = _Slot(self._next, kind)
        self._next += 1
        self._slots[(output_index, content_index)] = slot
        return slot

    def _item_added(self, body: dict[str, Any]) -> list[StreamEvent]:
        item = _obj(body.get("item"))
        n = int(body.get("output_index", len({k[0] for k in self._slots} | self._skipped)))
        kind = item.get("type")
        if kind == "reasoning":
            return [ReasoningDelta(self._open(n, 0, "reasoning").index, "")]
        if kind == "function_call":
            self._calls = True
            slot = self._open(n, 0, "tool")
            out: list[StreamEvent] = [ToolCallStart(slot.index, self._call_id(item), _call_name(item))]
            if isinstance(item.get("arguments"), str) and item["arguments"]:
                slot.streamed = True
                out.append(ToolCallDelta(slot.index, item["arguments"]))
            return out
        if kind == "custom_tool_call":
            self._calls = True
            slot = self._open(n, 0, "custom")
            out = [ToolCallStart(slot.index, self._call_id(item), str(item.get("name") or ""))]
            out.append(ToolCallDelta(slot.index, '{"input":"'))
            if isinstance(item.get("input"), str) and item["input"]:
                slot.streamed = True
                out.append(ToolCallDelta(slot.index, _escaped(item["input"])))
            return out
        if kind != "message":
            self._skipped.add(n)
        return []  # a message's parts start with their content parts

    @staticmethod
    def _call_id(item: dict[str, Any]) -> str:
        return str(item.get("call_id") or item.get("id") or "")

    def _content_part(self, body: dict[str, Any]) -> list[StreamEvent]:
        key = (int(body.get("output_index", 0)), int(body.get("content_index", 0)))
        if key in self._slots or key[0] in self._skipped:
            return []
        part = _obj(body.get("part"))
        self._refusal |= part.get("type") == "refusal"
        return [TextDelta(self._open(*key, "text").index, "")]

    def _text_delta(self, body: dict[str, Any]) -> list[StreamEvent]:
        key = (int(body.get("output_index", 0)), int(body.get("content_index", 0)))
        if key[0] in self._skipped:
            return []
        out: list[StreamEvent] = []
        slot = self._slots.get(key)
        if slot is None:  # a delta without its content_part.added
            slot = self._open(*key, "text")
        delta = body.get("delta")
        if isinstance(delta, str) and delta:
            slot.streamed = True
            out.append(TextDelta(slot.index, delta))
        return out

    def _summary(self, body: dict[str, Any], *, delta: bool) -> list[StreamEvent]:
        slot = self._slots.get((int(body.get("output_index", 0)), 0))
        if slot is None or slot.kind != "reasoning":
            return []
        out: list[StreamEvent] = []
        summary = int(body.get("summary_index", 0))
        if summary not in slot.summaries:
            if slot.summaries:
                out.append(ReasoningDelta(slot.index, "\n\n"))  # as parse_response joins summary parts
            slot.summaries.add(summary)
        text = body.get("delta")
        if delta and isinstance(text, str) and text:
            slot.streamed = True
            out.append(ReasoningDelta(slot.index, text))
        return out

    def _delta(self, body: dict[str, Any], kinds: tuple[str, ...], make: Any) -> list[StreamEvent]:
        slot = self._slots.get((int(body.get("output_index", 0)), 0))
        text = body.get("delta")
        if slot is None or slot.kind not in kinds or not isinstance(text, str) or not text:
            return []
        slot.streamed = True
        event: StreamEvent = make(slot.index, text)
        return [event]

    def _item_done(self, body: dict[str, Any]) -> list[StreamEvent]:
        n = int(body.get("output_index", -1))
        item = _obj(body.get("item"))
        kind = item.get("type")
        out: list[StreamEvent] = []
        if kind == "message":
            for content_index, content in enumerate(item.get("content") or ()):
                content = _obj(content)
                text = content.get("text") if content.get("type") == "output_text" else content.get("refusal")
                slot = self._slots.get((n, content_index))
                if slot is None:
                    if not isinstance(text, str):
                        continue
                    self._refusal |= content.get("type") == "refusal"
                    slot = self._open(n, content_index, "text")
                    out.append(TextDelta(slot.index, ""))
                if not slot.streamed and isinstance(text, str) and text:
                    out.append(TextDelta(slot.index, text))
                out += self._close(slot)
            for (index, _), slot in sorted(self._slots.items()):
                if index == n:
                    out += self._close(slot)  # content parts the done item no longer lists
            return out
        slot = self._slots.get((n, 0))
        if slot is None:
            return []
        if slot.kind == "reasoning":
            if not slot.streamed:
                parsed = parse_response({"output": [item]})
                text = parsed.parts[0].text if parsed.parts and isinstance(parsed.parts[0], Reasoning) else ""
                if text:
                    out.append(ReasoningDelta(slot.index, text))
            if isinstance(item.get("encrypted_content"), str):
                out.append(ReasoningDelta(slot.index, signature=item["encrypted_content"]))
        elif slot.kind == "tool":
            if not slot.streamed and isinstance(item.get("arguments"), str) and item["arguments"]:
                out.append(ToolCallDelta(slot.index, item["arguments"]))
        elif slot.kind == "custom":
            if not slot.streamed and isinstance(item.get("input"), str) and item["input"]:
                out.append(ToolCallDelta(slot.index, _escaped(item["input"])))
            out.append(ToolCallDelta(slot.index, '"}'))
        return out + self._close(slot)

    def _close(self, slot: _Slot) -> list[StreamEvent]:
        if not slot.open:
            return []
        slot.open = False
        return [PartEnd(slot.index)]

    # -- the end ---------------------------------------------------------------------------------------------

    def _terminal(self, response: dict[str, Any]) -> list[StreamEvent]:
        if self._ended:
            return []
        out: list[StreamEvent] = []
        if not self._slots and isinstance(response.get("output"), list) and response["output"]:
            # Only the final Response came: read the answer from it.
            answer = parse_response(response)
            out += [e for e in events_for(answer) if not isinstance(e, StreamStart | StreamEnd)]
            self._calls |= any(isinstance(p, ToolCall) for p in answer.parts)
            self._refusal |= answer.finish_reason is FinishReason.REFUSAL
        for slot in sorted(self._slots.values(), key=lambda s: s.index):
            if slot.open and slot.kind == "custom":
                out.append(ToolCallDelta(slot.index, '"}'))
            out += self._close(slot)
        self._ended = True
        finish = finish_for(
            response.get("status"), response.get("incomplete_details"), calls=self._calls, refusal=self._refusal
        )
        out.append(StreamEnd(finish, usage_from_responses(response.get("usage"))))
        return out

    def _fail(self, message: object, code: object) -> list[StreamEvent]:
        if self._ended:
            return []
        self._ended = True
        kind = _CODES_IN.get(str(code), "api_error")
        return [StreamFailed(str(message or "upstream error"), kind)]

    def finish(self) -> list[StreamEvent]:
        """The stream ended (the connection closed)."""
        if self._ended:
            return []
        self._ended = True
        return [StreamFailed("The upstream ended the stream before finishing its answer.", "api_error")]


def _call_name(item: dict[str, Any]) -> str:
    name = str(item.get("name") or "")
    namespace = item.get("namespace")
    return namespaced_name(namespace, name) if isinstance(namespace, str) and namespace else name


@dataclass(slots=True)
class _Item:
    """An output item being written: its output index, the part it comes from, what arrived so far."""

    output_index: int
    part: Part  # Text / Reasoning / ToolCall with the content so far
    item_id: str
    custom: bool = False
    summary_open: bool = False
    open: bool = True


class ResponsesStreamEncoder:
    """Canonical events as Responses events. `extensions`: `openai_responses.echo(request)`."""

    def __init__(self, *, extensions: Mapping[str, Any] | None = None) -> None:
        # Streamed items always take the deterministic ids, so the final Response must too.
        self._ext = {k: v for k, v in (extensions or {}).items() if k != ITEM_IDS}
        self._kinds = ToolKinds.of_response(self._ext)
        self._seq = 0
        self._start: StreamStart | None = None
        self._items: dict[int, _Item] = {}  # part index → item
        self._done = False

    def _frame(self, kind: str, body: dict[str, Any]) -> bytes:
        payload = {"type": kind, "sequence_number": self._seq, **body}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def _response(self, status: str, **extra: Any) -> dict[str, Any]:
        start = self._start or StreamStart("", "")
        body = response_object(start.id, start.model, start.created, status, self._ext)
        body["output"] = []
        body["usage"] = None
        body.update(extra)
        return body

    def feed(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        if isinstance(event, StreamStart):
            self._start = event
            return self._frame("response.created", {"response": self._response("in_progress")}) + self._frame(
                "response.in_progress", {"response": self._response("in_progress")}
            )
        if isinstance(event, TextDelta):
            return self._text(event)
        if isinstance(event, ReasoningDelta):
            return self._reasoning(event)
        if isinstance(event, ToolCallStart):
            return self._call_start(event)
        if isinstance(event, ToolCallDelta):
            return self._call_delta(event)
        if isinstance(event, PartEnd):
            item = self._items.get(event.index)
            return self._close(item) if item is not None else b""
        self._done = True
        if isinstance(event, StreamFailed):
            return self._failed(event)
        return self._end(event)

    # -- opening and writing items ---------------------------------------------------------------------------

    def _open(self, index: int, part: Part) -> _Item:
        if index in self._items:
            raise StreamOrderError(f"part {index} started twice")
        start = self._start or StreamStart("", "")
        n = len(self._items)
        full = output_item(part, start.id, n, self._kinds)
        assert full is not None
        item = _Item(n, part, full["id"], custom=full["type"] == "custom_tool_call")
        self._items[index] = item
        return item

    def _get(self, index: int) -> _Item:
        item = self._items.get(index)
        if item is None or not item.open:
            raise StreamOrderError(f"a delta for part {index}, which is not open")
        return item

    def _text(self, event: TextDelta) -> bytes:
        out = b""
        if event.index not in self._items:
            item = self._open(event.index, Text(""))
            added = {"id": item.item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
            out += self._frame("response.output_item.added", {"output_index": item.output_index, "item": added})
            out += self._frame(
                "response.content_part.added",
                {
                    "item_id": item.item_id,
                    "output_index": item.output_index,
                    "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": []},
                },
            )
        item = self._get(event.index)
        if event.text:
            assert isinstance(item.part, Text)
            item.part = Text(item.part.text + event.text)
            out += self._frame(
                "response.output_text.delta",
                {
                    "item_id": item.item_id,
                    "output_index": item.output_index,
                    "content_index": 0,
                    "delta": event.text,
                    "logprobs": [],
                },
            )
        return out

    def _reasoning(self, event: ReasoningDelta) -> bytes:
        out = b""
        if event.index not in self._items:
            item = self._open(event.index, Reasoning())
            added = {"id": item.item_id, "type": "reasoning", "summary": []}
            out += self._frame("response.output_item.added", {"output_index": item.output_index, "item": added})
        item = self._get(event.index)
        part = item.part
        assert isinstance(part, Reasoning)
        if event.redacted is not None:
            item.part = Reasoning(part.text, part.signature, event.redacted)
        if event.signature:
            item.part = Reasoning(part.text, (part.signature or "") + event.signature, part.redacted)
        if event.text:
            if not item.summary_open:
                item.summary_open = True
                out += self._frame(
                    "response.reasoning_summary_part.added",
                    {
                        "item_id": item.item_id,
                        "output_index": item.output_index,
                        "summary_index": 0,
                        "part": {"type": "summary_text", "text": ""},
                    },
                )
            current = item.part
            assert isinstance(current, Reasoning)
            item.part = Reasoning(current.text + event.text, current.signature, current.redacted)
            out += self._frame(
                "response.reasoning_summary_text.delta",
                {"item_id": item.item_id, "output_index": item.output_index, "summary_index": 0, "delta": event.text},
            )
        return out

    def _call_start(self, event: ToolCallStart) -> bytes:
        item = self._open(event.index, ToolCall(event.id, event.name, ""))
        full = output_item(item.part, (self._start or StreamStart("", "")).id, item.output_index, self._kinds)
        assert full is not None
        if item.custom:
            full["input"] = ""
        else:
            full["status"] = "in_progress"
            full["arguments"] = ""
        return self._frame("response.output_item.added", {"output_index": item.output_index, "item": full})

    def _call_delta(self, event: ToolCallDelta) -> bytes:
        item = self._get(event.index)
        call = item.part
        assert isinstance(call, ToolCall)
        item.part = ToolCall(call.id, call.name, call.arguments + event.arguments)
        if item.custom or not event.arguments:
            return b""  # a freeform input is unwrapped whole, when the part ends
        return self._frame(
            "response.function_call_arguments.delta",
            {"item_id": item.item_id, "output_index": item.output_index, "delta": event.arguments},
        )

    # -- closing ---------------------------------------------------------------------------------------------

    def _final(self, item: _Item) -> dict[str, Any]:
        full = output_item(item.part, (self._start or StreamStart("", "")).id, item.output_index, self._kinds)
        assert full is not None
        return full

    def _close(self, item: _Item) -> bytes:
        if not item.open:
            return b""
        item.open = False
        where = {"item_id": item.item_id, "output_index": item.output_index}
        part = item.part
        out = b""
        if isinstance(part, Text):
            content = {"type": "output_text", "text": part.text, "annotations": []}
            out += self._frame(
                "response.output_text.done", {**where, "content_index": 0, "text": part.text, "logprobs": []}
            )
            out += self._frame("response.content_part.done", {**where, "content_index": 0, "part": content})
        elif isinstance(part, Reasoning) and item.summary_open:
            out += self._frame("response.reasoning_summary_text.done", {**where, "summary_index": 0, "text": part.text})
            out += self._frame(
                "response.reasoning_summary_part.done",
                {**where, "summary_index": 0, "part": {"type": "summary_text", "text": part.text}},
            )
        elif isinstance(part, ToolCall) and item.custom:
            text = unwrap_custom_input(part.arguments)
            if text:
                out += self._frame("response.custom_tool_call_input.delta", {**where, "delta": text})
            out += self._frame("response.custom_tool_call_input.done", {**where, "input": text})
        elif isinstance(part, ToolCall):
            out += self._frame("response.function_call_arguments.done", {**where, "arguments": part.arguments})
        return out + self._frame(
            "response.output_item.done", {"output_index": item.output_index, "item": self._final(item)}
        )

    def _answer(self, finish: FinishReason, event: StreamEnd | None) -> ChatResponse:
        start = self._start or StreamStart("", "")
        parts = tuple(item.part for item in sorted(self._items.values(), key=lambda i: i.output_index))
        return ChatResponse(
            id=start.id,
            model=start.model,
            parts=parts,
            finish_reason=finish,
            usage=event.usage if event is not None else None,
            created=start.created,
            extensions=self._ext,
        )

    def _end(self, event: StreamEnd) -> bytes:
        out = b""
        for item in sorted(self._items.values(), key=lambda i: i.output_index):
            out += self._close(item)
        response = render_response(self._answer(event.finish_reason, event))
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        return out + self._frame(kind, {"response": response})

    def _failed(self, event: StreamFailed) -> bytes:
        done = [self._final(i) for i in sorted(self._items.values(), key=lambda i: i.output_index) if not i.open]
        error = {"code": _CODES_OUT.get(event.type, "server_error"), "message": event.message}
        return self._frame("response.failed", {"response": self._response("failed", output=done, error=error)})
