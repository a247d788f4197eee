"""Stream decoders and encoders by wire format (the non-stream codecs are in `registry`)."""

from __future__ import annotations

from typing import Protocol

from shared.formats.anthropic_stream import AnthropicStreamDecoder, AnthropicStreamEncoder
from shared.formats.gemini_stream import GeminiStreamDecoder, GeminiStreamEncoder
from shared.formats.openai_chat_stream import OpenAIStreamDecoder, OpenAIStreamEncoder
from shared.formats.sse import event_name
from shared.formats.stream import StreamEvent
from shared.providers.spec import WireFormat


class Encoder(Protocol):
    def feed(self, event: StreamEvent) -> bytes: ...


Decoder = OpenAIStreamDecoder | AnthropicStreamDecoder | GeminiStreamDecoder


def new_decoder(fmt: WireFormat) -> Decoder:
    if fmt is WireFormat.ANTHROPIC:
        return AnthropicStreamDecoder()
    if fmt is WireFormat.GEMINI:
        return GeminiStreamDecoder()
    return OpenAIStreamDecoder()


def new_encoder(fmt: WireFormat, *, include_usage: bool = False) -> Encoder:
    if fmt is WireFormat.ANTHROPIC:
        return AnthropicStreamEncoder()
    if fmt is WireFormat.GEMINI:
        return GeminiStreamEncoder()
    return OpenAIStreamEncoder(include_usage=include_usage)


def feed_decoder(decoder: Decoder, fmt: WireFormat, frame: bytes, data: bytes) -> list[StreamEvent]:
    if isinstance(decoder, AnthropicStreamDecoder):
        return decoder.feed(event_name(frame), data)
    return decoder.feed(data)
