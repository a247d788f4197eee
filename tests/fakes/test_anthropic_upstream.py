"""The fake Anthropic upstream, driven over loopback HTTP by the official `anthropic` SDK.

The SDK is the reference client here: if it parses the fake's messages, streams and errors the way
it parses Anthropic's, the fake is a faithful stand-in for gateway tests. Raw `httpx` is used where
the SDK hides the wire (exact SSE framing, header checks, validation errors, connection cuts).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
from anthropic.types import MessageParam, ToolParam
from starlette.applications import Starlette

from .anthropic_upstream import (
    REPLY_PREFIX,
    THINKING_PREFIX,
    TOOL_REPLY_PREFIX,
    create_app,
    is_fault_model,
    parse_stream_error,
    sign_thinking,
    signature_matches,
    sse_frame,
)
from .openai_upstream import FakeUpstreamState
from .server import ServerThread, free_port

API_KEY = "sk-ant-test-fake-key"
MODEL = "claude-sonnet-4-6"
VERSION = "2023-06-01"
THINKING: Any = {"type": "enabled", "budget_tokens": 1024}

WEATHER_TOOL: ToolParam = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "verbose": {"type": "boolean"},
        },
        "required": ["city", "days"],
    },
}
TIME_TOOL: ToolParam = {
    "name": "get_time",
    "input_schema": {
        "type": "object",
        "properties": {"timezone": {"type": "string", "enum": ["UTC", "CET"]}},
        "required": ["timezone"],
    },
}


def user(text: str) -> list[MessageParam]:
    return [{"role": "user", "content": text}]


def assistant(content: Sequence[Any]) -> MessageParam:
    """An assistant turn from blocks, e.g. the `to_dict()` of a previous answer's content."""
    return {"role": "assistant", "content": list(content)}


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Split a raw stream into (event name, data) pairs, checking Anthropic's framing on the way."""
    frames = raw.split(b"\n\n")
    assert frames[-1] == b""  # every frame ends with a blank line
    events = []
    for frame in frames[:-1]:
        event_line, data_line = frame.decode().split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        name, data = event_line.removeprefix("event: "), json.loads(data_line.removeprefix("data: "))
        assert data["type"] == name
        events.append((name, data))
    return events


def shape(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Event names, with the delta type for content_block_delta and the block type for starts."""
    out = []
    for name, data in events:
        if name == "content_block_delta":
            out.append(f"delta:{data['delta']['type']}")
        elif name == "content_block_start":
            out.append(f"start:{data['content_block']['type']}")
        else:
            out.append(name)
    return out


# --------------------------------------------------------------------------------------------
# Fixtures: one server per module (start/stop costs ~0.2 s), state reset before every test.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread[Starlette]]:
    with ServerThread(create_app(api_key=API_KEY)) as running:
        yield running


@pytest.fixture
def fake(server: ServerThread[Starlette]) -> FakeUpstreamState:
    state: FakeUpstreamState = server.app.state.fake
    state.clear_requests()
    state.clear_script()
    return state


@pytest.fixture
def client(server: ServerThread[Starlette], fake: FakeUpstreamState) -> Iterator[anthropic.Anthropic]:
    # max_retries=0: an injected error must surface at once rather than after SDK back-off.
    with anthropic.Anthropic(base_url=server.base_url, api_key=API_KEY, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def http(server: ServerThread[Starlette], fake: FakeUpstreamState) -> Iterator[httpx.Client]:
    headers = {"x-api-key": API_KEY, "anthropic-version": VERSION}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=10.0) as raw:
        yield raw


def post_stream(http: httpx.Client, payload: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    with http.stream("POST", "/v1/messages", json=payload | {"stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        return sse_events(response.read())


# --------------------------------------------------------------------------------------------
# Plain messages
# --------------------------------------------------------------------------------------------


def test_plain_message_text_usage_and_shape(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=1024, system="be brief", messages=user("hi there")
    )
    message = raw.parse()
    assert message.id.startswith("msg_01")
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == MODEL
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].type == "text" and message.content[0].text == REPLY_PREFIX + "hi there"
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    # 2 system words + (2 words + 3) for the message; the reply has 5 words.
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 5)
    assert (message.usage.cache_creation_input_tokens, message.usage.cache_read_input_tokens) == (0, 0)
    assert raw.request_id is not None and raw.request_id.startswith("req_011C")


def test_raw_body_has_exactly_anthropics_fields(http: httpx.Client) -> None:
    response = http.post("/v1/messages", json={"model": MODEL, "max_tokens": 50, "messages": user("x")})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["request-id"].startswith("req_")
    body = response.json()
    assert list(body) == ["id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"]
    assert body["content"] == [{"type": "text", "text": REPLY_PREFIX + "x"}]
    assert set(body["usage"]) >= {
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    }


def test_content_blocks_and_multi_turn_use_the_last_user_text(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=[
            {"role": "user", "content": "earlier question"},
            {"role": "assistant", "content": "earlier answer"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "part one"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                    {"type": "text", "text": "part two"},
                ],
            },
        ],
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == REPLY_PREFIX + "part one part two"


@pytest.mark.anyio
async def test_async_client_message_and_stream(server: ServerThread[Starlette], fake: FakeUpstreamState) -> None:
    async with anthropic.AsyncAnthropic(base_url=server.base_url, api_key=API_KEY, max_retries=0) as sdk:
        message = await sdk.messages.create(model=MODEL, max_tokens=100, messages=user("async hi"))
        async with sdk.messages.stream(model=MODEL, max_tokens=100, messages=user("async stream")) as stream:
            pieces = [text async for text in stream.text_stream]
    assert message.content[0].type == "text" and message.content[0].text == REPLY_PREFIX + "async hi"
    assert "".join(pieces) == REPLY_PREFIX + "async stream"


# --------------------------------------------------------------------------------------------
# Streaming
# --------------------------------------------------------------------------------------------


def test_stream_helper_text_and_final_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=MODEL, max_tokens=100, messages=user("stream me please")) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) >= 3  # one delta per word
    assert "".join(pieces) == REPLY_PREFIX + "stream me please"
    assert final.content[0].type == "text" and final.content[0].text == REPLY_PREFIX + "stream me please"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (6, 6)


def test_stream_event_sequence_for_text(http: httpx.Client) -> None:
    events = post_stream(http, {"model": MODEL, "max_tokens": 100, "messages": user("frame it")})
    assert shape(events) == [
        "message_start",
        "start:text",
        "ping",
        *["delta:text_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["stop_sequence"] is None
    assert start["usage"]["input_tokens"] == 5 and start["usage"]["output_tokens"] == 1
    assert events[1][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == 5 and delta["usage"]["input_tokens"] == 5
    assert events[-1][1] == {"type": "message_stop"}


def test_streamed_and_non_streamed_answers_agree(client: anthropic.Anthropic) -> None:
    kwargs: Any = {"model": MODEL, "max_tokens": 2048, "thinking": THINKING, "messages": user("agree?")}
    created = client.messages.create(**kwargs)
    with client.messages.stream(**kwargs) as stream:
        streamed = stream.get_final_message()
    assert [b.to_dict() for b in streamed.content] == [b.to_dict() for b in created.content]
    assert streamed.usage.to_dict() == created.usage.to_dict()


def test_drip_sends_each_frame_separately(http: httpx.Client) -> None:
    payload = {"model": "drip-40", "max_tokens": 100, "messages": user("a b c"), "stream": True}
    with http.stream("POST", "/v1/messages", json=payload) as response:
        reads = [chunk for chunk in response.iter_raw() if chunk]
    frame_count = b"".join(reads).count(b"\n\n")
    # 40 ms between frames is far above loopback latency: reads follow frames one to one.
    assert len(reads) >= frame_count - 1
    assert reads[-1] == b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


def test_ttfb_sends_headers_before_delaying_the_body(http: httpx.Client) -> None:
    payload = {"model": "ttfb-600", "max_tokens": 100, "messages": user("late"), "stream": True}
    started = time.perf_counter()
    with http.stream("POST", "/v1/messages", json=payload) as response:
        headers_at = time.perf_counter() - started
        chunks = response.iter_raw()
        first = next(chunks)
        first_at = time.perf_counter() - started
        rest = b"".join(chunks)
    assert response.status_code == 200
    assert headers_at < 0.5
    assert first_at >= 0.55
    assert first.startswith(b"event: message_start\n")
    assert (first + rest).endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


def test_slow_delays_before_headers(client: anthropic.Anthropic) -> None:
    started = time.perf_counter()
    message = client.messages.create(model="slow-250", max_tokens=100, messages=user("wait"))
    assert time.perf_counter() - started >= 0.24
    assert message.model == "slow-250"
    assert message.content[0].type == "text" and message.content[0].text == REPLY_PREFIX + "wait"


# --------------------------------------------------------------------------------------------
# Stop sequences and max_tokens
# --------------------------------------------------------------------------------------------


def test_stop_sequences_cut_the_text(client: anthropic.Anthropic) -> None:
    kwargs: Any = {"model": MODEL, "max_tokens": 100, "messages": user("one two three"), "stop_sequences": ["two", "o"]}
    message = client.messages.create(**kwargs)
    assert message.content[0].type == "text" and message.content[0].text == "Hell"  # "o" comes first
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "o")
    with client.messages.stream(**kwargs | {"stop_sequences": ["three"]}) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == REPLY_PREFIX + "one two "
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "three")


def test_max_tokens_truncates_with_stop_reason_max_tokens(client: anthropic.Anthropic) -> None:
    kwargs: Any = {"model": MODEL, "max_tokens": 4, "messages": user("a long question here")}
    message = client.messages.create(**kwargs)
    assert message.content[0].type == "text" and message.content[0].text == "Hello from fake-anthropic: a"
    assert (message.stop_reason, message.stop_sequence, message.usage.output_tokens) == ("max_tokens", None, 4)
    with client.messages.stream(**kwargs) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == "Hello from fake-anthropic: a"
    assert (final.stop_reason, final.usage.output_tokens) == ("max_tokens", 4)
    # A stop sequence beyond the max_tokens cut is never reached.
    later = client.messages.create(**kwargs | {"stop_sequences": ["question"]})
    assert later.stop_reason == "max_tokens" and later.stop_sequence is None


# --------------------------------------------------------------------------------------------
# Tool use
# --------------------------------------------------------------------------------------------


def only_tool_use(message: anthropic.types.Message) -> anthropic.types.ToolUseBlock:
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["tool_use"]
    block = message.content[0]
    assert block.type == "tool_use"
    return block


def test_non_stream_tool_use(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL, max_tokens=1024, messages=user("weather in Paris?"), tools=[WEATHER_TOOL, TIME_TOOL]
    )
    block = only_tool_use(message)
    assert block.id.startswith("toolu_01")
    assert block.name == "get_weather"
    assert block.input == {"city": "test", "days": 1}


def test_stream_helper_assembles_tool_input(client: anthropic.Anthropic) -> None:
    partials = 0
    with client.messages.stream(
        model=MODEL, max_tokens=1024, messages=user("weather in Paris?"), tools=[WEATHER_TOOL]
    ) as stream:
        for event in stream:
            if event.type == "input_json":
                partials += 1
        final = stream.get_final_message()
    assert partials >= 3
    block = only_tool_use(final)
    assert block.name == "get_weather"
    assert block.input == {"city": "test", "days": 1}


def test_stream_tool_input_arrives_as_partial_json(http: httpx.Client) -> None:
    events = post_stream(
        http, {"model": MODEL, "max_tokens": 1024, "messages": user("weather?"), "tools": [WEATHER_TOOL]}
    )
    start = events[1][1]["content_block"]
    assert start["type"] == "tool_use" and start["input"] == {} and start["id"].startswith("toolu_")
    pieces = [d["delta"]["partial_json"] for n, d in events if n == "content_block_delta"]
    assert pieces[0] == ""  # the API opens with an empty piece
    assert len(pieces) >= 4
    assert json.loads("".join(pieces)) == {"city": "test", "days": 1}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_tool_choice_variants(client: anthropic.Anthropic) -> None:
    tools = [WEATHER_TOOL, TIME_TOOL]
    named = client.messages.create(
        model=MODEL,
        max_tokens=1024,
        messages=user("what time is it"),
        tools=tools,
        tool_choice={"type": "tool", "name": "get_time"},
    )
    assert only_tool_use(named).input == {"timezone": "UTC"}
    forced = client.messages.create(
        model=MODEL, max_tokens=1024, messages=user("x"), tools=tools, tool_choice={"type": "any"}
    )
    assert only_tool_use(forced).name == "get_weather"
    none = client.messages.create(
        model=MODEL, max_tokens=1024, messages=user("no tools"), tools=tools, tool_choice={"type": "none"}
    )
    assert none.stop_reason == "end_turn"
    assert none.content[0].type == "text" and none.content[0].text == REPLY_PREFIX + "no tools"
    with pytest.raises(anthropic.BadRequestError, match="not found"):
        client.messages.create(
            model=MODEL, max_tokens=1024, messages=user("x"), tools=tools, tool_choice={"type": "tool", "name": "nope"}
        )


def test_parallel_tool_use(client: anthropic.Anthropic) -> None:
    messages = user("check both in parallel please")
    message = client.messages.create(model=MODEL, max_tokens=1024, messages=messages, tools=[WEATHER_TOOL, TIME_TOOL])
    assert message.stop_reason == "tool_use"
    assert [(b.type, getattr(b, "name", None)) for b in message.content] == [
        ("tool_use", "get_weather"),
        ("tool_use", "get_time"),
    ]
    with client.messages.stream(model=MODEL, max_tokens=1024, messages=messages, tools=[WEATHER_TOOL, TIME_TOOL]) as s:
        final = s.get_final_message()
    assert [b.input for b in final.content if b.type == "tool_use"] == [
        {"city": "test", "days": 1},
        {"timezone": "UTC"},
    ]
    single = client.messages.create(
        model=MODEL,
        max_tokens=1024,
        messages=messages,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )
    assert len(single.content) == 1


def test_tool_result_round_trip(client: anthropic.Anthropic) -> None:
    first = client.messages.create(model=MODEL, max_tokens=1024, messages=user("weather?"), tools=[WEATHER_TOOL])
    call = only_tool_use(first)
    messages: list[MessageParam] = [
        *user("weather?"),
        assistant([b.to_dict() for b in first.content]),
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "22C and sunny"}]},
    ]
    second = client.messages.create(model=MODEL, max_tokens=1024, messages=messages, tools=[WEATHER_TOOL])
    assert second.stop_reason == "end_turn"
    assert [b.type for b in second.content] == ["text"]
    assert second.content[0].type == "text" and second.content[0].text == TOOL_REPLY_PREFIX + "22C and sunny"


def test_tool_result_content_blocks_and_parallel_results(client: anthropic.Anthropic) -> None:
    messages: list[MessageParam] = [
        *user("both"),
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}},
                {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": [{"type": "text", "text": "rain"}]},
                {"type": "tool_result", "tool_use_id": "toolu_b", "content": "noon"},
            ],
        },
    ]
    message = client.messages.create(model=MODEL, max_tokens=1024, messages=messages)
    assert message.content[0].type == "text" and message.content[0].text == TOOL_REPLY_PREFIX + "rain | noon"


def test_tool_use_and_tool_result_must_pair_up(client: anthropic.Anthropic) -> None:
    call: MessageParam = {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_x", "name": "get_weather", "input": {}}],
    }
    with pytest.raises(anthropic.BadRequestError) as unanswered:
        client.messages.create(model=MODEL, max_tokens=100, messages=[*user("q"), call, *user("no result")])
    assert unanswered.value.api_message is not None
    assert "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_x" in (
        unanswered.value.api_message
    )
    stray: MessageParam = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_y"}]}
    with pytest.raises(anthropic.BadRequestError) as unexpected:
        client.messages.create(model=MODEL, max_tokens=100, messages=[stray])
    assert unexpected.value.api_message is not None
    assert "unexpected `tool_use_id` found in `tool_result` blocks: toolu_y" in unexpected.value.api_message


# --------------------------------------------------------------------------------------------
# Extended thinking
# --------------------------------------------------------------------------------------------


def test_thinking_block_with_signature(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=MODEL, max_tokens=2048, thinking=THINKING, messages=user("ponder this"))
    assert [b.type for b in message.content] == ["thinking", "text"]
    thinking = message.content[0]
    assert thinking.type == "thinking"
    assert thinking.thinking == THINKING_PREFIX + "ponder this"
    assert thinking.signature == sign_thinking(thinking.thinking)
    assert signature_matches(thinking.thinking, thinking.signature)
    assert not signature_matches("tampered", thinking.signature)
    assert message.content[1].type == "text" and message.content[1].text == REPLY_PREFIX + "ponder this"
    assert message.usage.output_tokens == 4 + 5  # thinking words count as output


def test_stream_helper_thinking_and_signature_events(client: anthropic.Anthropic) -> None:
    thinking_parts: list[str] = []
    signatures: list[str] = []
    with client.messages.stream(model=MODEL, max_tokens=2048, thinking=THINKING, messages=user("ponder")) as stream:
        for event in stream:
            if event.type == "thinking":
                thinking_parts.append(event.thinking)
            elif event.type == "signature":
                signatures.append(event.signature)
        final = stream.get_final_message()
    assert "".join(thinking_parts) == THINKING_PREFIX + "ponder"
    assert signatures == [sign_thinking(THINKING_PREFIX + "ponder")]
    assert final.content[0].type == "thinking" and final.content[0].signature == signatures[0]


def test_streamed_tool_call_with_thinking_event_sequence(http: httpx.Client) -> None:
    events = post_stream(
        http,
        {
            "model": MODEL,
            "max_tokens": 2048,
            "thinking": THINKING,
            "messages": user("weather in Paris?"),
            "tools": [WEATHER_TOOL],
        },
    )
    assert shape(events) == [
        "message_start",
        "start:thinking",
        "ping",
        *["delta:thinking_delta"] * 5,  # "Thinking about: weather in Paris?"
        "delta:signature_delta",
        "content_block_stop",
        "start:tool_use",
        *["delta:input_json_delta"] * 4,  # "" then three pieces of {"city":"test","days":1}
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[1][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert [d["index"] for n, d in events if n.startswith("content_block")] == [0] * 8 + [1] * 6
    assert events[-2][1]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}


def test_thinking_display_omitted_keeps_the_signature(client: anthropic.Anthropic) -> None:
    thinking: Any = THINKING | {"display": "omitted"}
    message = client.messages.create(model=MODEL, max_tokens=2048, thinking=thinking, messages=user("secret"))
    block = message.content[0]
    assert block.type == "thinking" and block.thinking == ""
    assert signature_matches("", block.signature)
    assert message.usage.output_tokens == 3 + 4  # the hidden thought is still billed


def thinking_tool_turn(
    client: anthropic.Anthropic,
) -> tuple[MessageParam, list[dict[str, Any]], MessageParam]:
    """A user question, the assistant's thinking + tool_use blocks, and the tool result."""
    first = client.messages.create(
        model=MODEL, max_tokens=2048, thinking=THINKING, messages=user("weather?"), tools=[WEATHER_TOOL]
    )
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    call = first.content[1]
    assert call.type == "tool_use"
    result: MessageParam = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
    }
    return user("weather?")[0], [b.to_dict() for b in first.content], result


def test_thinking_tool_round_trip(client: anthropic.Anthropic) -> None:
    question, blocks, result = thinking_tool_turn(client)
    messages = [question, assistant(blocks), result]
    # The tool results continue the same assistant turn: no new thinking without interleaving.
    second = client.messages.create(
        model=MODEL, max_tokens=2048, thinking=THINKING, messages=messages, tools=[WEATHER_TOOL]
    )
    assert [b.type for b in second.content] == ["text"]
    assert second.content[0].type == "text" and second.content[0].text == TOOL_REPLY_PREFIX + "sunny"
    interleaved = client.messages.create(
        model=MODEL,
        max_tokens=2048,
        thinking=THINKING,
        messages=messages,
        tools=[WEATHER_TOOL],
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
    )
    assert [b.type for b in interleaved.content] == ["thinking", "text"]


def test_thinking_blocks_must_come_back_intact(client: anthropic.Anthropic) -> None:
    question, blocks, result = thinking_tool_turn(client)
    tampered = [{**blocks[0], "thinking": "edited thought"}, blocks[1]]
    with pytest.raises(anthropic.BadRequestError) as invalid:
        client.messages.create(
            model=MODEL, max_tokens=2048, thinking=THINKING, messages=[question, assistant(tampered), result]
        )
    assert invalid.value.api_message == "messages.1.content.0: Invalid `signature` in `thinking` block"
    with pytest.raises(anthropic.BadRequestError) as dropped:
        client.messages.create(
            model=MODEL, max_tokens=2048, thinking=THINKING, messages=[question, assistant(blocks[1:]), result]
        )
    assert dropped.value.api_message is not None
    assert dropped.value.api_message.startswith(
        "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`."
    )
    # Without thinking the same history is fine.
    client.messages.create(model=MODEL, max_tokens=100, messages=[question, assistant(blocks), result])


@pytest.mark.parametrize(
    ("max_tokens", "thinking", "tool_choice", "message"),
    [
        (2048, {"type": "enabled", "budget_tokens": 1000}, None, "greater than or equal to 1024"),
        (1024, {"type": "enabled", "budget_tokens": 1024}, None, "`max_tokens` must be greater than"),
        (2048, {"type": "enabled"}, None, "budget_tokens: Field required"),
        (2048, {"type": "sometimes"}, None, "does not match any of the expected tags"),
        (2048, THINKING, {"type": "any"}, "Thinking may not be enabled when tool_choice forces tool use."),
    ],
)
def test_thinking_validation(
    client: anthropic.Anthropic, max_tokens: int, thinking: Any, tool_choice: Any, message: str
) -> None:
    extra: dict[str, Any] = {"tools": [WEATHER_TOOL], "tool_choice": tool_choice} if tool_choice else {}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=MODEL, max_tokens=max_tokens, thinking=thinking, messages=user("x"), **extra)
    assert caught.value.type == "invalid_request_error"
    assert caught.value.api_message is not None and message in caught.value.api_message


def test_adaptive_thinking_thinks_after_tool_results_too(client: anthropic.Anthropic) -> None:
    adaptive: Any = {"type": "adaptive"}
    question, blocks, result = thinking_tool_turn(client)
    message = client.messages.create(
        model=MODEL, max_tokens=100, thinking=adaptive, messages=[question, assistant(blocks), result]
    )
    assert [b.type for b in message.content] == ["thinking", "text"]


# --------------------------------------------------------------------------------------------
# count_tokens
# --------------------------------------------------------------------------------------------


def test_count_tokens_matches_message_usage(client: anthropic.Anthropic) -> None:
    messages: list[MessageParam] = [
        {"role": "user", "content": "first question here"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": [{"type": "text", "text": "follow up"}]},
    ]
    counted = client.messages.count_tokens(model=MODEL, system="you are terse", messages=messages)
    # 3 system words + (3+3) + (2+3) + (2+3).
    assert counted.input_tokens == 19
    created = client.messages.create(model=MODEL, max_tokens=100, system="you are terse", messages=messages)
    assert created.usage.input_tokens == counted.input_tokens


def test_count_tokens_validates_like_messages(http: httpx.Client) -> None:
    ok = http.post("/v1/messages/count_tokens", json={"model": MODEL, "messages": user("a b")})
    assert ok.status_code == 200 and ok.json() == {"input_tokens": 5}
    assert ok.headers["request-id"].startswith("req_")
    unknown = http.post("/v1/messages/count_tokens", json={"model": "claude-nope", "messages": user("x")})
    assert unknown.status_code == 404
    assert unknown.json()["error"] == {"type": "not_found_error", "message": "model: claude-nope"}
    empty = http.post("/v1/messages/count_tokens", json={"model": MODEL, "messages": []})
    assert empty.status_code == 400
    injected = http.post("/v1/messages/count_tokens", json={"model": "error-529", "messages": user("x")})
    assert injected.status_code == 529


# --------------------------------------------------------------------------------------------
# Errors: injected by model name, auth, versions and request validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exception", "type_"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (402, anthropic.PaymentRequiredError, "billing_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (413, anthropic.ContentTooLargeError, "request_too_large"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (504, anthropic.GatewayTimeoutError, "timeout_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_injected_errors_map_to_sdk_exceptions(
    client: anthropic.Anthropic, status: int, exception: type[anthropic.APIStatusError], type_: str, stream: bool
) -> None:
    with pytest.raises(exception) as caught:
        client.messages.create(model=f"error-{status}", max_tokens=100, messages=user("x"), stream=stream)
    error = caught.value
    assert isinstance(error, anthropic.APIStatusError)
    assert error.status_code == status
    assert error.type == type_
    assert isinstance(error.body, dict)
    assert error.body["type"] == "error"
    assert error.request_id is not None and error.body["request_id"] == error.request_id
    if status >= 500:
        assert isinstance(error, anthropic.InternalServerError)


def test_error_429_and_529_details(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model="error-429", max_tokens=100, messages=user("x"))
    assert limited.value.response.headers["retry-after"] == "1"
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        client.messages.create(model="error-529", max_tokens=100, messages=user("x"))
    assert overloaded.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": overloaded.value.request_id,
    }


def test_unknown_model_is_not_found(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="claude-nope-1", max_tokens=100, messages=user("x"))
    assert caught.value.api_message == "model: claude-nope-1"
    assert caught.value.type == "not_found_error"


def test_any_model_mode_accepts_every_name() -> None:
    with (
        ServerThread(create_app(models=None)) as open_server,
        anthropic.Anthropic(base_url=open_server.base_url, api_key="whatever", max_retries=0) as sdk,
    ):
        assert sdk.messages.create(model="claude-nope-1", max_tokens=10, messages=user("x")).model == "claude-nope-1"


def test_api_key_as_x_api_key_or_bearer(server: ServerThread[Starlette], fake: FakeUpstreamState) -> None:
    payload = {"model": MODEL, "max_tokens": 10, "messages": user("x")}
    version = {"anthropic-version": VERSION}
    with httpx.Client(base_url=server.base_url) as raw:
        assert raw.post("/v1/messages", json=payload, headers=version | {"x-api-key": API_KEY}).status_code == 200
        bearer = {"authorization": f"Bearer {API_KEY}"}
        assert raw.post("/v1/messages", json=payload, headers=version | bearer).status_code == 200
        # With both, x-api-key decides (as the API does).
        both = raw.post("/v1/messages", json=payload, headers=version | bearer | {"x-api-key": "wrong"})
        assert both.status_code == 401
        assert both.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
        missing = raw.post("/v1/messages", json=payload, headers=version)
        assert missing.status_code == 401
        assert missing.json()["error"]["message"] == "x-api-key header is required"
    with anthropic.Anthropic(base_url=server.base_url, api_key="sk-wrong", max_retries=0) as wrong:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            wrong.messages.create(model=MODEL, max_tokens=10, messages=user("x"))
        assert caught.value.type == "authentication_error"
        with pytest.raises(anthropic.AuthenticationError):
            wrong.messages.count_tokens(model=MODEL, messages=user("x"))
    with anthropic.Anthropic(base_url=server.base_url, auth_token=API_KEY, max_retries=0) as oauth:
        assert oauth.messages.create(model=MODEL, max_tokens=10, messages=user("x")).content


def test_anthropic_version_header(server: ServerThread[Starlette], fake: FakeUpstreamState) -> None:
    payload = {"model": MODEL, "max_tokens": 10, "messages": user("x")}
    with httpx.Client(base_url=server.base_url, headers={"x-api-key": API_KEY}) as raw:
        missing = raw.post("/v1/messages", json=payload)
        assert missing.status_code == 400
        assert missing.json()["error"] == {
            "type": "invalid_request_error",
            "message": "anthropic-version: header is required",
        }
        assert missing.json()["request_id"] == missing.headers["request-id"]
        wrong = raw.post("/v1/messages", json=payload, headers={"anthropic-version": "2024-01-01"})
        assert wrong.json()["error"]["message"] == 'anthropic-version: "2024-01-01" is not a valid version'
        doubled = raw.post(
            "/v1/messages", json=payload, headers=[("anthropic-version", VERSION), ("anthropic-version", VERSION)]
        )
        assert doubled.json()["error"]["message"] == f'anthropic-version: "{VERSION}, {VERSION}" is not a valid version'
        for version in ("2023-01-01", "2023-06-01", "2026-10-21"):
            assert raw.post("/v1/messages", json=payload, headers={"anthropic-version": version}).status_code == 200


def test_sampling_parameters_are_rejected_from_version_2026_10_21(http: httpx.Client) -> None:
    payload = {"model": MODEL, "max_tokens": 10, "messages": user("x"), "temperature": 1.0}
    assert http.post("/v1/messages", json=payload).status_code == 200  # 2023-06-01
    newer = http.post("/v1/messages", json=payload, headers={"anthropic-version": "2026-10-21"})
    assert newer.status_code == 400
    assert newer.json()["error"]["message"] == "temperature: Extra inputs are not permitted"
    counted = http.post(
        "/v1/messages/count_tokens",
        json={"model": MODEL, "messages": user("x"), "top_k": 5},
        headers={"anthropic-version": "2026-10-21"},
    )
    assert counted.json()["error"]["message"] == "top_k: Extra inputs are not permitted"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "The request body is not valid JSON."),
        (b"[]", "Input should be a valid dictionary"),
        (b'{"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}', "model: Field required"),
        (b'{"model": "fake-model", "messages": [{"role": "user", "content": "x"}]}', "max_tokens: Field required"),
        (
            b'{"model": "fake-model", "max_tokens": "5", "messages": [{"role": "user", "content": "x"}]}',
            "max_tokens: Input should be a valid integer",
        ),
        (
            b'{"model": "fake-model", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}',
            "max_tokens: Input should be greater than or equal to 1",
        ),
        (b'{"model": "fake-model", "max_tokens": 5}', "messages: Field required"),
        (b'{"model": "fake-model", "max_tokens": 5, "messages": []}', "messages: at least one message is required"),
        (
            b'{"model": "fake-model", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}',
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            b'{"model": "fake-model", "max_tokens": 5, "messages": [{"role": "user"}]}',
            "messages.0.content: Field required",
        ),
        (
            b'{"model": "fake-model", "max_tokens": 5, "messages": [{"role": "assistant", "content": "x"}]}',
            'messages: first message must use the "user" role',
        ),
        (
            b'{"model": "fake-model", "max_tokens": 5, "messages": [{"role": "user", "content": ""}]}',
            "messages.0: all messages must have non-empty content except for the optional final assistant message",
        ),
        (
            b'{"model": "fake-model", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text",'
            b' "text": ""}]}]}',
            "messages: text content blocks must be non-empty",
        ),
        (
            b'{"model": "fake-model", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tools":'
            b' [{"name": "t"}]}',
            "tools.0.custom.input_schema: Field required",
        ),
        (
            b'{"model": "fake-model", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],'
            b' "stop_sequences": "END"}',
            "stop_sequences: Input should be a valid list of strings",
        ),
    ],
)
def test_request_validation(http: httpx.Client, content: bytes, message: str) -> None:
    response = http.post("/v1/messages", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["x-should-retry"] == "false"
    body = response.json()
    assert body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": message},
        "request_id": response.headers["request-id"],
    }


def test_final_assistant_prefill_may_be_empty_and_consecutive_roles_are_allowed(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=[*user("one"), *user("two"), {"role": "assistant", "content": []}],
    )
    assert message.content[0].type == "text" and message.content[0].text == REPLY_PREFIX + "two"


def test_unknown_route_and_method_use_anthropics_error_shape(http: httpx.Client) -> None:
    missing = http.post("/v1/complete-nope", json={})
    assert missing.status_code == 404
    assert missing.json()["error"] == {"type": "not_found_error", "message": "Not Found"}
    wrong_method = http.get("/v1/messages")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["type"] == "invalid_request_error"
    assert "POST" in wrong_method.headers["allow"]


# --------------------------------------------------------------------------------------------
# Mid-stream errors and cut connections
# --------------------------------------------------------------------------------------------


def test_stream_error_event_raises_in_the_sdk(client: anthropic.Anthropic) -> None:
    received: list[str] = []

    def consume(stream: anthropic.MessageStream) -> None:
        received.extend(stream.text_stream)

    with (
        client.messages.stream(model="stream-error-529", max_tokens=100, messages=user("x y z")) as stream,
        pytest.raises(anthropic.APIStatusError) as caught,
    ):
        consume(stream)
    assert received == ["Hello ", "from "]
    # The HTTP status was already 200: the SDK builds a plain APIStatusError from the event body.
    assert caught.value.status_code == 200
    assert caught.value.type == "overloaded_error"
    assert caught.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def test_stream_error_wire_format(http: httpx.Client) -> None:
    events = post_stream(http, {"model": "stream-error-500", "max_tokens": 100, "messages": user("x y z")})
    assert shape(events) == ["message_start", "start:text", "ping", "delta:text_delta", "delta:text_delta", "error"]
    assert events[-1][1] == {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}
    # Without a stream the error is the whole answer.
    plain = http.post("/v1/messages", json={"model": "stream-error-529", "max_tokens": 10, "messages": user("x")})
    assert plain.status_code == 529


def test_cut_stream_raises_in_the_sdk(client: anthropic.Anthropic) -> None:
    received: list[str] = []

    def consume(stream: anthropic.MessageStream) -> None:
        received.extend(stream.text_stream)

    # The SDK lets the transport's protocol error through unwrapped while iterating a stream.
    with (
        client.messages.stream(model="cut-stream", max_tokens=100, messages=user("never finished")) as stream,
        pytest.raises(httpx2.RemoteProtocolError),
    ):
        consume(stream)
    assert received == ["Hello ", "from "]


def test_cut_stream_has_no_message_stop(http: httpx.Client) -> None:
    payload = {"model": "cut-stream", "max_tokens": 100, "messages": user("x"), "stream": True}
    received: list[bytes] = []

    def consume(response: httpx.Response) -> None:
        received.extend(response.iter_raw())

    with (
        http.stream("POST", "/v1/messages", json=payload) as response,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        consume(response)
    raw = b"".join(received)
    assert shape(sse_events(raw)) == ["message_start", "start:text", "ping", "delta:text_delta", "delta:text_delta"]
    assert b"message_stop" not in raw


def test_cut_non_stream_body(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(model="cut-stream", max_tokens=100, messages=user("x"))


# --------------------------------------------------------------------------------------------
# Scripted faults for fallback, circuit-breaker and timeout tests
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exception", "type_"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (503, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_canned_status_without_body_is_anthropics_envelope_with_the_scripted_headers(
    client: anthropic.Anthropic,
    fake: FakeUpstreamState,
    status: int,
    exception: type[anthropic.APIStatusError],
    type_: str,
) -> None:
    fake.add_script([{"status": status, "headers": {"Retry-After": "2"}}])
    with pytest.raises(exception) as caught:
        client.messages.create(model=MODEL, max_tokens=10, messages=user("x"))
    assert caught.value.status_code == status
    assert caught.value.type == type_
    assert caught.value.body == {
        "type": "error",
        "error": {"type": type_, "message": caught.value.api_message},
        "request_id": caught.value.request_id,
    }
    assert caught.value.response.headers["retry-after"] == "2"  # the script's, not the 429 default of 1


def test_scripted_cut_stream_drops_a_stream_midway(http: httpx.Client, fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "cut-stream"}])
    received: list[bytes] = []
    payload = {"model": MODEL, "max_tokens": 100, "messages": user("x y"), "stream": True}
    with (
        http.stream("POST", "/v1/messages", json=payload) as response,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        received.extend(response.iter_raw())
    assert shape(sse_events(b"".join(received))) == [
        "message_start",
        "start:text",
        "ping",
        "delta:text_delta",
        "delta:text_delta",
    ]


@pytest.mark.parametrize(
    ("stream", "content_type"), [(False, "application/json"), (True, "text/event-stream; charset=utf-8")]
)
def test_cut_before_body_sends_the_headers_then_drops_the_connection(
    http: httpx.Client, fake: FakeUpstreamState, stream: bool, content_type: str
) -> None:
    fake.add_script([{"fault": "cut-before-body"}])
    received: list[bytes] = []
    payload = {"model": MODEL, "max_tokens": 10, "messages": user("x"), "stream": stream}
    with http.stream("POST", "/v1/messages", json=payload) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == content_type
        assert response.headers["request-id"].startswith("req_")
        # A JSON answer announces its full length; a stream is chunked.
        assert ("content-length" in response.headers) is not stream
        with pytest.raises(httpx.RemoteProtocolError):
            received.extend(response.iter_raw())
    assert b"".join(received) == b""


def test_cut_before_body_is_a_connection_error_in_the_sdk(client: anthropic.Anthropic, fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "cut-before-body"}] * 2)
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(model=MODEL, max_tokens=10, messages=user("x"))
    # As with cut-stream, the SDK lets the transport's protocol error through while iterating a stream.
    with (
        client.messages.stream(model=MODEL, max_tokens=10, messages=user("x")) as stream,
        pytest.raises(httpx2.RemoteProtocolError),
    ):
        stream.get_final_message()


def test_stall_after_first_pauses_after_message_start(http: httpx.Client, fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "stall-after-first", "stall_ms": 600}])
    payload = {"model": MODEL, "max_tokens": 100, "messages": user("a b"), "stream": True}
    started = time.perf_counter()
    with http.stream("POST", "/v1/messages", json=payload) as response:
        chunks = response.iter_raw()
        first = next(chunks)
        first_at = time.perf_counter() - started
        second = next(chunks)
        second_at = time.perf_counter() - started
        rest = b"".join(chunks)
    assert second_at >= 0.58
    # Most of the pause falls between the first two frames (the margin absorbs a busy test thread).
    assert second_at - first_at >= 0.3
    assert shape(sse_events(first)) == ["message_start"]
    assert shape(sse_events(first + second + rest))[-1] == "message_stop"


def test_stall_after_first_trips_an_idle_timeout(server: ServerThread[Starlette], fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "stall-after-first", "stall_ms": 2000}])
    received: list[bytes] = []
    headers = {"x-api-key": API_KEY, "anthropic-version": VERSION}
    payload = {"model": MODEL, "max_tokens": 10, "messages": user("x"), "stream": True}
    with (
        httpx.Client(base_url=server.base_url, headers=headers, timeout=httpx.Timeout(5.0, read=0.5)) as impatient,
        impatient.stream("POST", "/v1/messages", json=payload) as response,
        pytest.raises(httpx.ReadTimeout),
    ):
        received.extend(response.iter_raw())
    assert shape(sse_events(b"".join(received))) == ["message_start"]


def test_stall_after_first_then_answers_normally(client: anthropic.Anthropic, fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "stall-after-first", "stall_ms": 200}] * 2)
    started = time.perf_counter()
    message = client.messages.create(model=MODEL, max_tokens=100, messages=user("paused"))
    assert time.perf_counter() - started >= 0.19  # non-stream: between the two halves of the body
    assert message.content[0].type == "text" and message.content[0].text == REPLY_PREFIX + "paused"
    with client.messages.stream(model=MODEL, max_tokens=100, messages=user("paused")) as stream:
        assert stream.get_final_text() == REPLY_PREFIX + "paused"


def test_hang_sends_nothing_until_the_client_gives_up(server: ServerThread[Starlette], fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "hang"}] * 2)
    headers = {"x-api-key": API_KEY, "anthropic-version": VERSION}
    payload = {"model": MODEL, "max_tokens": 10, "messages": user("anyone?"), "stream": True}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=httpx.Timeout(5.0, read=0.3)) as impatient:
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            impatient.post("/v1/messages", json=payload)
        assert time.perf_counter() - started >= 0.29
    with (
        anthropic.Anthropic(base_url=server.base_url, api_key=API_KEY, max_retries=0, timeout=0.3) as sdk,
        pytest.raises(anthropic.APITimeoutError),
    ):
        sdk.messages.create(model=MODEL, max_tokens=10, messages=user("anyone?"))
    assert len(fake.requests) == 2  # accepted and recorded, just never answered


# --------------------------------------------------------------------------------------------
# Script queue and recording
# --------------------------------------------------------------------------------------------


def test_scripted_directives_are_consumed_in_order(
    client: anthropic.Anthropic, http: httpx.Client, fake: FakeUpstreamState
) -> None:
    canned_stream = sse_frame(
        "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )
    script: list[dict[str, Any]] = [
        {"status": 529},
        {"delay_ms": 150},
        {"fault": "cut-stream"},
        {"status": 200, "headers": {"content-type": "text/event-stream"}, "body": canned_stream.decode()},
    ]
    assert http.post("/_fake/script", json=script).json() == {"queued": 4}
    assert http.get("/_fake/script").json() == script

    with pytest.raises(anthropic.OverloadedError) as overloaded:
        client.messages.create(model=MODEL, max_tokens=10, messages=user("x"))
    assert overloaded.value.type == "overloaded_error"  # default body: Anthropic's envelope for the status

    started = time.perf_counter()
    delayed = client.messages.create(model=MODEL, max_tokens=10, messages=user("delayed"))
    assert time.perf_counter() - started >= 0.14
    assert delayed.content[0].type == "text" and delayed.content[0].text == REPLY_PREFIX + "delayed"

    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(model=MODEL, max_tokens=10, messages=user("x"))

    with (
        pytest.raises(anthropic.APIStatusError) as streamed,
        client.messages.stream(model=MODEL, max_tokens=10, messages=user("x")) as stream,
    ):
        stream.get_final_message()
    assert streamed.value.type == "overloaded_error"

    assert http.get("/_fake/script").json() == []
    assert client.messages.create(model=MODEL, max_tokens=10, messages=user("normal")).content
    assert len(fake.requests) == 5


def test_script_drives_sdk_retries(server: ServerThread[Starlette], fake: FakeUpstreamState) -> None:
    # retry-after-ms keeps the SDK's back-off to 10 ms.
    fake.add_script([{"status": 529, "headers": {"retry-after-ms": "10"}}] * 2)
    with anthropic.Anthropic(base_url=server.base_url, api_key=API_KEY, max_retries=2) as sdk:
        message = sdk.messages.create(model=MODEL, max_tokens=10, messages=user("third time lucky"))
    assert message.content[0].type == "text" and message.content[0].text == REPLY_PREFIX + "third time lucky"
    assert [r["headers"]["x-stainless-retry-count"] for r in fake.requests] == ["0", "1", "2"]


def test_requests_are_recorded(
    client: anthropic.Anthropic, http: httpx.Client, server: ServerThread[Starlette]
) -> None:
    client.messages.create(
        model=MODEL,
        max_tokens=10,
        messages=user("record me"),
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14,files-api-2025-04-14", "X-Trace-Id": "abc"},
    )
    client.messages.count_tokens(model=MODEL, messages=user("count me"))
    http.post("/v1/messages", content=b"{broken")
    recorded = http.get("/_fake/requests").json()
    assert [(r["method"], r["path"]) for r in recorded] == [
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages/count_tokens"),
        ("POST", "/v1/messages"),
    ]
    first = recorded[0]
    assert all(key == key.lower() for key in first["headers"])
    assert first["headers"]["anthropic-version"] == anthropic._constants.ANTHROPIC_API_VERSION
    assert first["headers"]["anthropic-beta"] == "interleaved-thinking-2025-05-14,files-api-2025-04-14"
    assert first["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert first["headers"]["x-trace-id"] == "abc"
    assert first["body"] == {"model": MODEL, "max_tokens": 10, "messages": user("record me")}
    assert recorded[1]["body"] == {"model": MODEL, "messages": user("count me")}
    assert recorded[2]["body"] is None
    assert recorded[2]["headers"]["x-api-key"] == API_KEY

    app = server.app
    assert app.state.requests == recorded  # the same log, in process
    assert http.delete("/_fake/requests").json() == {"cleared": 3}
    assert http.get("/_fake/requests").json() == []


# --------------------------------------------------------------------------------------------
# Models, faults, signatures and standalone mode
# --------------------------------------------------------------------------------------------


def test_models_endpoint(client: anthropic.Anthropic) -> None:
    models = list(client.models.list())
    assert [m.id for m in models][:2] == ["claude-sonnet-4-6", "claude-opus-4-7"]
    assert all(m.type == "model" and m.display_name for m in models)
    assert client.models.retrieve("claude-opus-4-7").id == "claude-opus-4-7"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("nope")


def test_fault_names() -> None:
    assert parse_stream_error("stream-error-529") == 529
    assert parse_stream_error("stream-error-99") is None
    assert parse_stream_error(MODEL) is None
    assert is_fault_model("error-429") and is_fault_model("cut-stream") and is_fault_model("stream-error-500")
    assert is_fault_model("stall-300") and is_fault_model("cut-before-body") and is_fault_model("hang")
    assert not is_fault_model(MODEL)


def test_signatures_are_self_checking() -> None:
    signature = sign_thinking("a thought")
    assert signature_matches("a thought", signature)
    assert signature_matches("", signature)  # what a `display: omitted` block carries back
    assert not signature_matches("another thought", signature)
    assert not signature_matches("a thought", "bm90IGEgc2lnbmF0dXJl")
    assert not signature_matches("a thought", "***")
    assert not signature_matches("a thought", None)


def test_standalone_module_serves() -> None:
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.anthropic_upstream", "--port", str(port), "--api-key", API_KEY],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20.0
        while True:
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/v1/messages",
                    json={"model": MODEL, "max_tokens": 10, "messages": user("standalone")},
                    headers={"x-api-key": API_KEY, "anthropic-version": VERSION},
                )
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        assert response.json()["content"] == [{"type": "text", "text": REPLY_PREFIX + "standalone"}]
    finally:
        process.terminate()
        process.wait(10)
