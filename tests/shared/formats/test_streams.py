"""Stream decoders and encoders: every golden answer streamed out in a format and read back in gives
the same answer; splitting the bytes anywhere changes nothing; order rules hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.usage import Usage
from shared.formats.anthropic_stream import AnthropicStreamDecoder, AnthropicStreamEncoder
from shared.formats.canonical import ChatResponse, FinishReason, Text, ToolCall, response_from_json, to_json
from shared.formats.codecs import feed_decoder, new_decoder, new_encoder
from shared.formats.openai_chat_stream import OpenAIStreamDecoder, OpenAIStreamEncoder
from shared.formats.sse import SseFramer, frame_data
from shared.formats.stream import (
    Collector,
    PartEnd,
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
from shared.providers.spec import WireFormat

GOLDEN = Path(__file__).parent / "golden"
ANSWERS = sorted(GOLDEN.glob("*/response.canonical.json"))


def _event_name(frame: bytes) -> str | None:
    for line in frame.splitlines():
        if line.startswith(b"event:"):
            return line[6:].strip().decode()
    return None


def encode(fmt: str, events: list[StreamEvent]) -> bytes:
    encoder = new_encoder(WireFormat(fmt), include_usage=True)
    return b"".join(encoder.feed(e) for e in events)


def decode(fmt: str, chunks: list[bytes]) -> list[StreamEvent]:
    framer = SseFramer()
    events: list[StreamEvent] = []
    decoder = new_decoder(WireFormat(fmt))
    for chunk in chunks:
        for frame in framer.feed(chunk):
            data = frame_data(frame)
            if data is None:
                continue
            events += feed_decoder(decoder, WireFormat(fmt), frame, data)
    return events + decoder.finish()


def collect(events: list[StreamEvent]) -> ChatResponse:
    collector = Collector()
    for e in events:
        collector.feed(e)
    return collector.response()


# What each wire stream cannot carry, by design of that format.
def _comparable(fmt: str, answer: ChatResponse) -> dict[str, Any]:
    out = to_json(answer)
    out.pop("extensions", None)  # vendor extras ride on complete answers only
    if fmt == "anthropic":
        out.pop("created", None)
        if "usage" in out:
            out["usage"].pop("reasoning", None)
    if fmt == "openai":
        out.pop("stop_sequence", None)
        if out.get("created") == 0:  # chunks always carry one; 0 stands for "not given"
            out.pop("created")
        if "usage" in out:
            out["usage"].pop("cache_creation", None)
        # OpenAI chunks have no signatures or redacted reasoning
        out["parts"] = [{k: v for k, v in p.items() if k != "signature"} for p in out["parts"] if "redacted" not in p]
    return out


STREAM_CASES = [
    pytest.param(path, fmt, id=f"{path.parent.name}-{fmt}")
    for path in ANSWERS
    for fmt in ("openai", "anthropic", "gemini", "responses")
    if (path.parent / f"response.{fmt}.json").exists()  # the answers this format can express
    and '"type": "image"' not in path.read_text()  # generated images are not streamed as deltas
]


@pytest.mark.parametrize(("path", "fmt"), STREAM_CASES)
def test_streamed_answer_reads_back_as_the_answer(fmt: str, path: Path) -> None:
    answer = response_from_json(json.loads(path.read_text()))
    wire = encode(fmt, events_for(answer))
    assert _comparable(fmt, collect(decode(fmt, [wire]))) == _comparable(fmt, answer)


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12), fmt=st.sampled_from(["openai", "anthropic"])
)
def test_splitting_the_bytes_anywhere_gives_the_same_events(cuts: list[int], fmt: str) -> None:
    answer = response_from_json(json.loads((GOLDEN / "tools-round-trip" / "response.canonical.json").read_text()))
    wire = encode(fmt, events_for(answer))
    points = sorted({c % (len(wire) + 1) for c in cuts})
    pieces = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    assert decode(fmt, pieces) == decode(fmt, [wire])


def test_openai_stream_ends_with_exactly_one_done_and_usage_when_asked() -> None:
    answer = ChatResponse("id1", "m", (Text("hi"),), FinishReason.STOP, Usage(input=3, output=1))
    with_usage = OpenAIStreamEncoder(include_usage=True)
    wire = b"".join(with_usage.feed(e) for e in events_for(answer))
    assert wire.count(b"data: [DONE]") == 1 and wire.endswith(b"data: [DONE]\n\n")
    assert b'"choices":[],"usage":{"prompt_tokens":3' in wire
    without = OpenAIStreamEncoder(include_usage=False)
    assert b'"usage"' not in b"".join(without.feed(e) for e in events_for(answer))


def test_anthropic_blocks_are_closed_before_message_delta_and_one_per_part() -> None:
    answer = ChatResponse(
        "msg", "m", (Text("a"), ToolCall("t1", "f", '{"x":1}'), ToolCall("t2", "g", "{}")), FinishReason.TOOL_CALLS
    )
    frames = [f for f in encode("anthropic", events_for(answer)).split(b"\n\n") if f]
    names = [_event_name(f + b"\n\n") for f in frames]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    starts = [json.loads(f.split(b"data: ", 1)[1]) for f in frames if f.startswith(b"event: content_block_start")]
    assert [s["index"] for s in starts] == [0, 1, 2]
    assert names.count("content_block_start") == names.count("content_block_stop") == 3
    # strictly one block at a time: every start follows the previous block's stop
    open_blocks = 0
    for name in names:
        open_blocks += name == "content_block_start"
        open_blocks -= name == "content_block_stop"
        assert open_blocks in (0, 1)


def test_openai_tool_call_fragments_become_one_part_per_wire_index() -> None:
    def call(index: int, arguments: str, id: str | None = None, name: str | None = None) -> dict[str, Any]:
        fn: dict[str, Any] = {"arguments": arguments}
        tool: dict[str, Any] = {"index": index, "function": fn}
        if id is not None:
            tool.update(id=id, type="function")
            fn["name"] = name
        return {"choices": [{"index": 0, "delta": {"tool_calls": [tool]}}]}

    chunks = [
        {
            "id": "c",
            "model": "m",
            "created": 1,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
        },
        call(0, "", id="a", name="f"),
        call(0, '{"q":'),
        call(0, '"x"}'),
        call(1, "{}", id="b", name="g"),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    decoder = OpenAIStreamDecoder()
    events: list[StreamEvent] = []
    for chunk in chunks:
        events += decoder.feed(json.dumps(chunk).encode())
    events += decoder.feed(b"[DONE]")
    answer = collect(events)
    assert answer.parts == (ToolCall("a", "f", '{"q":"x"}'), ToolCall("b", "g", "{}"))
    assert answer.finish_reason is FinishReason.TOOL_CALLS
    assert isinstance(events[-1], StreamEnd) and [e for e in events if isinstance(e, PartEnd)] == [
        PartEnd(0),
        PartEnd(1),
    ]


def test_a_stream_that_stops_without_finishing_is_a_failure_not_a_short_answer() -> None:
    decoder = OpenAIStreamDecoder()
    decoder.feed(b'{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"Hel"}}]}')
    assert isinstance(decoder.finish()[-1], StreamFailed)
    anthropic = AnthropicStreamDecoder()
    anthropic.feed(
        "message_start", b'{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":5}}}'
    )
    assert isinstance(anthropic.finish()[-1], StreamFailed)


def test_anthropic_usage_is_split_and_merged_like_anthropic_does() -> None:
    decoder = AnthropicStreamDecoder()
    events = decoder.feed(
        "message_start",
        b'{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":10,'
        b'"cache_read_input_tokens":90,"cache_creation_input_tokens":5,"output_tokens":1}}}',
    )
    assert isinstance(events[0], StreamStart) and events[0].usage == Usage(
        input=105, output=1, cached=90, cache_creation=5
    )
    decoder.feed(
        "message_delta", b'{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":42}}'
    )
    end = decoder.feed("message_stop", b'{"type":"message_stop"}')[-1]
    assert isinstance(end, StreamEnd) and end.usage == Usage(input=105, output=42, cached=90, cache_creation=5)


def test_interleaved_parts_cannot_be_written_as_anthropic_blocks() -> None:
    encoder = AnthropicStreamEncoder()
    encoder.feed(StreamStart("m", "c"))
    encoder.feed(ToolCallStart(0, "a", "f"))
    encoder.feed(ToolCallStart(1, "b", "g"))
    with pytest.raises(StreamOrderError):
        encoder.feed(ToolCallDelta(0, "{}"))


def test_errors_inside_a_stream_reach_the_client_in_its_format() -> None:
    failed = StreamFailed("Overloaded", "overloaded_error")
    anthropic = AnthropicStreamEncoder()
    anthropic.feed(StreamStart("m", "c"))
    frame = anthropic.feed(failed)
    assert frame.startswith(b"event: error\n") and b'"type":"overloaded_error"' in frame
    openai = OpenAIStreamEncoder()
    openai.feed(StreamStart("m", "c"))
    assert openai.feed(TextDelta(0, "x")).startswith(b"data: ")
    assert b'"error":{"message":"Overloaded"' in openai.feed(failed)


SSE_FILES = sorted(GOLDEN.glob("*/response.*.sse"))


@pytest.mark.parametrize("path", SSE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_streams_both_ways(path: Path) -> None:
    """`response.<format>.sse` is what the encoder writes for the scenario's answer, and reads back as it."""
    fmt = path.name.split(".")[1]
    answer = response_from_json(json.loads((path.parent / "response.canonical.json").read_text()))
    assert encode(fmt, events_for(answer)) == path.read_bytes()
    assert _comparable(fmt, collect(decode(fmt, [path.read_bytes()]))) == _comparable(fmt, answer)


def test_tool_input_given_whole_reads_the_same_streamed_or_not() -> None:
    """Non-ASCII input in an Anthropic `content_block_start` gives the same text as the complete answer."""
    from shared.formats import anthropic_messages

    block = {"type": "tool_use", "id": "t", "name": "f", "input": {"city": "Zürich"}}
    decoder = AnthropicStreamDecoder()
    decoder.feed("message_start", b'{"type":"message_start","message":{"id":"m","model":"c"}}')
    events = decoder.feed("content_block_start", json.dumps({"index": 0, "content_block": block}).encode())
    streamed = "".join(e.arguments for e in events if isinstance(e, ToolCallDelta))
    whole = anthropic_messages.parse_response({"content": [block], "stop_reason": "tool_use"}).parts[0]
    assert isinstance(whole, ToolCall) and streamed == whole.arguments == '{"city":"Zürich"}'
