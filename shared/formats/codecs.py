"""Stream decoders and encoders by wire format (the non-stream codecs are in `registry`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from shared.formats.anthropic_stream import AnthropicStreamDecoder, AnthropicStreamEncoder
from shared.formats.gemini_stream import GeminiStreamDecoder, GeminiStreamEncoder
from shared.formats.openai_chat_stream import OpenAIStreamDecoder, OpenAIStreamEncoder
from shared.formats.openai_responses_stream import ResponsesStreamDecoder, ResponsesStreamEncoder
from shared.formats.sse import event_name
from shared.formats.stream import StreamEvent
from shared.providers.spec import WireFormat


class Encoder(Protocol):
    def feed(self, event: StreamEvent) -> bytes: ...


Decoder = OpenAIStreamDecoder | AnthropicStreamDecoder | GeminiStreamDecoder | ResponsesStreamDecoder


def new_decoder(fmt: WireFormat) -> Decoder:
    if fmt is WireFormat.ANTHROPIC:
        return AnthropicStreamDecoder()
    if fmt is WireFormat.GEMINI:
        return GeminiStreamDecoder()
    if fmt is WireFormat.RESPONSES:
        return ResponsesStreamDecoder()
    return OpenAIStreamDecoder()


def new_encoder(
    fmt: WireFormat, *, include_usage: bool = False, extensions: Mapping[str, Any] | None = None
) -> Encoder:
    """`extensions`: what the answer echoes of its request (Responses answers do: see `openai_responses.echo`)."""
    if fmt is WireFormat.ANTHROPIC:
        return AnthropicStreamEncoder()
    if fmt is WireFormat.GEMINI:
        return GeminiStreamEncoder()
    if fmt is WireFormat.RESPONSES:
        return ResponsesStreamEncoder(extensions=extensions)
    return OpenAIStreamEncoder(include_usage=include_usage)


def feed_decoder(decoder: Decoder, fmt: WireFormat, frame: bytes, data: bytes) -> list[StreamEvent]:
    if isinstance(decoder, AnthropicStreamDecoder | ResponsesStreamDecoder):
        return decoder.feed(event_name(frame), data)
    return decoder.feed(data)
