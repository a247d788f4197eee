"""Canonical stream events, and the decoders/encoders that turn wire streams into them and back.

A stream is translated incrementally, event by event, never buffered whole. Every format has a decoder
(wire events → canonical events) and an encoder (canonical events → wire frames). Parts of the answer
are numbered in the order they start (`index`); a part's deltas carry its index, and `PartEnd` closes it.

Event order a decoder guarantees: one `StreamStart` first; for each part a `*Start`/first delta before its
other deltas, and a `PartEnd` before `StreamEnd`; `StreamEnd` (or `StreamFailed`) last. Encoders rely on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.domain.usage import Usage
from shared.formats.canonical import ChatResponse, FinishReason, Part, Reasoning, Text, ToolCall


@dataclass(frozen=True, slots=True)
class StreamStart:
    id: str
    model: str
    created: int | None = None
    usage: Usage | None = None  # what is known at the start (Anthropic: input tokens)


@dataclass(frozen=True, slots=True)
class TextDelta:
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    index: int
    text: str = ""
    signature: str | None = None  # arrives last, in one piece
    redacted: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    index: int
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    index: int
    arguments: str  # a fragment of the JSON text


@dataclass(frozen=True, slots=True)
class PartEnd:
    index: int


@dataclass(frozen=True, slots=True)
class StreamEnd:
    finish_reason: FinishReason
    usage: Usage | None = None
    stop_sequence: str | None = None


@dataclass(frozen=True, slots=True)
class StreamFailed:
    """The upstream reported an error inside the stream (after the status line was sent)."""

    message: str
    type: str = "api_error"


StreamEvent = (
    StreamStart | TextDelta | ReasoningDelta | ToolCallStart | ToolCallDelta | PartEnd | StreamEnd | StreamFailed
)


class StreamOrderError(ValueError):
    """A wire stream broke an ordering rule the translation relies on."""


def events_for(response: ChatResponse) -> list[StreamEvent]:
    """A complete answer as the stream that would have produced it (to stream a non-stream upstream's
    answer, and in tests: encode, decode, collect must give the answer back)."""
    events: list[StreamEvent] = [StreamStart(response.id, response.model, response.created)]
    for index, part in enumerate(response.parts):
        if isinstance(part, Text):
            events.append(TextDelta(index, part.text))
        elif isinstance(part, Reasoning):
            if part.redacted is not None:
                events.append(ReasoningDelta(index, redacted=part.redacted))
            else:
                events.append(ReasoningDelta(index, part.text))
                if part.signature:
                    events.append(ReasoningDelta(index, signature=part.signature))
        elif isinstance(part, ToolCall):
            events.append(ToolCallStart(index, part.id, part.name))
            if part.arguments:
                events.append(ToolCallDelta(index, part.arguments))
        else:
            continue  # images and tool results are not part of an assistant answer stream
        events.append(PartEnd(index))
    events.append(StreamEnd(response.finish_reason, response.usage, response.stop_sequence))
    return events


class Collector:
    """Canonical events back into a complete answer; `response()` once the stream ended."""

    def __init__(self) -> None:
        self.start: StreamStart | None = None
        self.end: StreamEnd | None = None
        self.failed: StreamFailed | None = None
        self._parts: dict[int, list[Any]] = {}  # index → [kind, pieces...]

    def feed(self, event: StreamEvent) -> None:
        if isinstance(event, StreamStart):
            self.start = event
        elif isinstance(event, TextDelta):
            self._parts.setdefault(event.index, ["text", ""])[1] += event.text
        elif isinstance(event, ReasoningDelta):
            slot = self._parts.setdefault(event.index, ["reasoning", "", None, None])
            slot[1] += event.text
            if event.signature:
                slot[2] = (slot[2] or "") + event.signature
            if event.redacted is not None:
                slot[3] = event.redacted
        elif isinstance(event, ToolCallStart):
            self._parts[event.index] = ["tool", event.id, event.name, ""]
        elif isinstance(event, ToolCallDelta):
            self._parts[event.index][3] += event.arguments
        elif isinstance(event, StreamEnd):
            self.end = event
        elif isinstance(event, StreamFailed):
            self.failed = event

    def response(self) -> ChatResponse:
        if self.start is None or self.end is None:
            raise StreamOrderError("the stream has not ended")
        return ChatResponse(
            id=self.start.id,
            model=self.start.model,
            parts=self.parts(),
            finish_reason=self.end.finish_reason,
            usage=self.end.usage,
            created=self.start.created,
            stop_sequence=self.end.stop_sequence,
        )

    def parts(self) -> tuple[Part, ...]:
        """The answer's parts so far."""
        parts: list[Part] = []
        for _, slot in sorted(self._parts.items()):
            if slot[0] == "text":
                parts.append(Text(slot[1]))
            elif slot[0] == "reasoning":
                parts.append(Reasoning(redacted=slot[3]) if slot[3] is not None else Reasoning(slot[1], slot[2]))
            else:
                parts.append(ToolCall(slot[1], slot[2], slot[3]))
        return tuple(parts)
