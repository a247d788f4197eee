"""The fake OpenAI upstream, driven over loopback HTTP by the official `openai` SDK.

The SDK is the reference client here: if it parses the fake's responses, streams and errors the
way it parses OpenAI's, the fake is a faithful stand-in for gateway tests. Raw `httpx` is used
only where the SDK hides the wire (validation errors, SSE framing, connection cuts).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from .openai_upstream import (
    REPLY_PREFIX,
    FakeUpstreamState,
    Fault,
    create_app,
    example_for_schema,
    parse_fault,
    split_evenly,
)
from .server import ServerThread, free_port

API_KEY = "sk-test-fake-key"

WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "verbose": {"type": "boolean"},
            },
            "required": ["city", "days"],
        },
    },
}
TIME_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string", "enum": ["UTC", "CET"]}},
            "required": ["timezone"],
        },
    },
}


def user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


# --------------------------------------------------------------------------------------------
# Fixtures: one server per module (start/stop costs ~0.2 s), state reset before every test.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread[Starlette]]:
    with ServerThread(create_app()) as running:
        yield running


@pytest.fixture
def fake(server: ServerThread[Starlette]) -> FakeUpstreamState:
    state: FakeUpstreamState = server.app.state.fake
    state.clear_requests()
    state.clear_script()
    return state


@pytest.fixture
def client(server: ServerThread[Starlette], fake: FakeUpstreamState) -> Iterator[openai.OpenAI]:
    # max_retries=0: an injected error must surface at once rather than after SDK back-off.
    with openai.OpenAI(base_url=server.url("/v1"), api_key=API_KEY, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def http(server: ServerThread[Starlette], fake: FakeUpstreamState) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as raw:
        yield raw


# --------------------------------------------------------------------------------------------
# Plain completions
# --------------------------------------------------------------------------------------------


def test_plain_completion_text_usage_and_shape(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}],
    )
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    assert completion.system_fingerprint
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.logprobs is None
    assert choice.message.role == "assistant"
    assert choice.message.content == "Hello from fake-openai: hi there"
    assert choice.message.refusal is None
    assert choice.message.tool_calls is None
    usage = completion.usage
    assert usage is not None
    # (2 words + 3) per message; the reply has 5 whitespace words.
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10, 5, 15)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0


def test_content_parts_use_text_parts_only(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="m",
        messages=[
            {"role": "user", "content": "earlier question"},
            {"role": "assistant", "content": "earlier answer"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "part one"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "text", "text": "part two"},
                ],
            },
        ],
    )
    assert completion.choices[0].message.content == REPLY_PREFIX + "part one part two"


def test_raw_non_stream_body_has_openai_fields(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json={"model": "m", "messages": user("x")})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert set(body) >= {"id", "object", "created", "model", "choices", "usage", "system_fingerprint"}
    message = body["choices"][0]["message"]
    assert message == {"role": "assistant", "content": REPLY_PREFIX + "x", "refusal": None, "annotations": []}
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0}


def test_async_client_completion_and_stream(server: ServerThread[Starlette], fake: FakeUpstreamState) -> None:
    async def scenario() -> tuple[str | None, str]:
        async with openai.AsyncOpenAI(base_url=server.url("/v1"), api_key=API_KEY, max_retries=0) as sdk:
            completion = await sdk.chat.completions.create(model="m", messages=user("async hi"))
            stream = await sdk.chat.completions.create(model="m", messages=user("async stream"), stream=True)
            pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
            return completion.choices[0].message.content, "".join(pieces)

    text, streamed = asyncio.run(scenario())
    assert text == REPLY_PREFIX + "async hi"
    assert streamed == REPLY_PREFIX + "async stream"


# --------------------------------------------------------------------------------------------
# Streaming
# --------------------------------------------------------------------------------------------


def test_stream_concatenates_and_has_no_usage_chunk_by_default(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="m", messages=user("stream me please"), stream=True))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) >= 3  # split per word
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == REPLY_PREFIX + "stream me please"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].choices[0].delta.content is None
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_stream_usage_chunk_only_with_include_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="m", messages=user("count me"), stream=True, stream_options={"include_usage": True}
        )
    )
    *body, last = chunks
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (2 + 3, 5)
    assert last.usage.total_tokens == 10
    assert all(c.usage is None for c in body)
    assert body[-1].choices[0].finish_reason == "stop"


def test_stream_wire_framing(http: httpx.Client) -> None:
    payload = {"model": "m", "messages": user("frame it"), "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=payload) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(response.iter_raw())
    frames = raw.split(b"\n\n")
    assert frames[-1] == b""  # every frame, [DONE] included, ends with a blank line
    frames = frames[:-1]
    assert all(f.startswith(b"data: ") for f in frames)
    assert frames[-1] == b"data: [DONE]"
    assert frames[0].startswith(b'data: {"id":"chatcmpl-')


def test_drip_sends_each_frame_separately(http: httpx.Client) -> None:
    payload = {"model": "drip-40", "messages": user("a b c"), "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=payload) as response:
        reads = [chunk for chunk in response.iter_raw() if chunk]
    frame_count = b"".join(reads).count(b"\n\n")
    # 40 ms between frames is far above loopback latency: reads follow frames one to one.
    assert len(reads) >= frame_count - 1
    assert reads[-1].endswith(b"data: [DONE]\n\n")


def test_ttfb_sends_headers_before_delaying_the_body(http: httpx.Client) -> None:
    payload = {"model": "ttfb-600", "messages": user("late"), "stream": True}
    started = time.perf_counter()
    with http.stream("POST", "/v1/chat/completions", json=payload) as response:
        headers_at = time.perf_counter() - started
        chunks = response.iter_raw()
        first = next(chunks)
        first_at = time.perf_counter() - started
        rest = b"".join(chunks)
    assert response.status_code == 200
    assert headers_at < 0.5
    assert first_at >= 0.55
    assert first.startswith(b"data: ")
    assert (first + rest).endswith(b"data: [DONE]\n\n")


def test_slow_delays_before_headers(client: openai.OpenAI) -> None:
    started = time.perf_counter()
    completion = client.chat.completions.create(model="slow-250", messages=user("wait"))
    assert time.perf_counter() - started >= 0.24
    assert completion.model == "slow-250"
    assert completion.choices[0].message.content == REPLY_PREFIX + "wait"


# --------------------------------------------------------------------------------------------
# Tool calls
# --------------------------------------------------------------------------------------------


def only_tool_call(choice: Any) -> Any:
    """The choice ends in exactly one tool call and no text; returns that call."""
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None
    assert len(calls) == 1
    return calls[0]


def test_stream_helper_assembles_tool_call(client: openai.OpenAI) -> None:
    argument_deltas = 0
    with client.chat.completions.stream(
        model="gpt-4o", messages=user("weather in Paris?"), tools=[WEATHER_TOOL, TIME_TOOL]
    ) as stream:
        for event in stream:
            if event.type == "tool_calls.function.arguments.delta":
                argument_deltas += 1
        final = stream.get_final_completion()
    assert argument_deltas >= 3
    call = only_tool_call(final.choices[0])
    assert call.id.startswith("call_")
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "test", "days": 1}


class Lookup(BaseModel):
    city: str
    days: int
    unit: Literal["c", "f"]
    ratio: float


def test_stream_helper_parses_strict_pydantic_tool(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="gpt-4o", messages=user("look it up"), tools=[openai.pydantic_function_tool(Lookup)]
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert calls is not None
    assert calls[0].function.parsed_arguments == Lookup(city="test", days=1, unit="c", ratio=1.5)


def test_non_stream_tool_call_with_named_tool_choice(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="m",
        messages=user("what time is it"),
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    call = only_tool_call(completion.choices[0])
    assert call.type == "function"
    assert call.function.name == "get_time"
    assert json.loads(call.function.arguments) == {"timezone": "UTC"}


def test_unknown_named_tool_choice_is_a_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="m",
            messages=user("x"),
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "nope"}},
        )
    assert caught.value.param == "tool_choice"


def test_tool_choice_none_answers_with_text(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="m", messages=user("no tools"), tools=[WEATHER_TOOL], tool_choice="none"
    )
    assert completion.choices[0].message.content == REPLY_PREFIX + "no tools"
    assert completion.choices[0].message.tool_calls is None


def test_parallel_tool_calls(client: openai.OpenAI) -> None:
    messages = user("check both in parallel please")
    completion = client.chat.completions.create(model="m", messages=messages, tools=[WEATHER_TOOL, TIME_TOOL])
    calls = completion.choices[0].message.tool_calls
    assert calls is not None
    assert len(calls) == 2
    assert [c.function.name for c in calls if c.type == "function"] == ["get_weather", "get_time"]
    assert len({c.id for c in calls}) == 2

    with client.chat.completions.stream(model="m", messages=messages, tools=[WEATHER_TOOL, TIME_TOOL]) as stream:
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls
    assert streamed is not None
    assert [c.function.name for c in streamed] == ["get_weather", "get_time"]
    assert [json.loads(c.function.arguments) for c in streamed] == [{"city": "test", "days": 1}, {"timezone": "UTC"}]

    single = client.chat.completions.create(
        model="m", messages=messages, tools=[WEATHER_TOOL, TIME_TOOL], parallel_tool_calls=False
    )
    assert single.choices[0].message.tool_calls is not None
    assert len(single.choices[0].message.tool_calls) == 1


def test_tool_result_round_trip(client: openai.OpenAI) -> None:
    messages = user("weather in Paris?")
    first = client.chat.completions.create(model="m", messages=messages, tools=[WEATHER_TOOL])
    calls = first.choices[0].message.tool_calls
    assert calls is not None
    call = calls[0]
    assert call.type == "function"
    messages = [
        *messages,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "22C and sunny"},
    ]
    second = client.chat.completions.create(model="m", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "Tool said: 22C and sunny"
    assert second.choices[0].message.tool_calls is None


def test_example_arguments_follow_the_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "count": {"type": "integer"},
            "score": {"type": "number"},
            "flag": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "mode": {"enum": ["fast", "slow"]},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
            "nested": {"$ref": "#/$defs/Inner"},
            "optional": {"type": "string"},
        },
        "required": ["name", "count", "score", "flag", "tags", "mode", "maybe", "nested"],
        "$defs": {"Inner": {"type": "object", "properties": {"x": {"type": ["string", "null"]}}}},
    }
    assert example_for_schema(schema) == {
        "name": "test",
        "count": 1,
        "score": 1.5,
        "flag": True,
        "tags": ["test"],
        "mode": "fast",
        "maybe": 1,
        "nested": {"x": "test"},
    }


def test_split_evenly() -> None:
    assert split_evenly("abcdefg", 3) == ["abc", "de", "fg"]
    assert split_evenly("{}", 3) == ["{", "}"]
    assert "".join(split_evenly('{"city":"test"}', 4)) == '{"city":"test"}'


# --------------------------------------------------------------------------------------------
# Errors: injected by model name, and request validation
# --------------------------------------------------------------------------------------------


def test_error_429_is_a_rate_limit_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="error-429", messages=user("x"))
    error = caught.value
    assert error.status_code == 429
    assert error.code == "rate_limit_exceeded"
    assert error.type == "rate_limit_exceeded"
    assert error.body == {
        "message": "Rate limit reached for error-429 (injected). Please try again in 1s.",
        "type": "rate_limit_exceeded",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert "Rate limit reached for error-429" in error.message
    assert error.response.headers["retry-after"] == "1"


def test_error_400_is_a_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="error-400", messages=user("x"))
    assert caught.value.status_code == 400
    assert caught.value.type == "invalid_request_error"


@pytest.mark.parametrize(
    ("model", "exception", "code"),
    [
        ("error-401", openai.AuthenticationError, "invalid_api_key"),
        ("error-404", openai.NotFoundError, "model_not_found"),
        ("error-500", openai.InternalServerError, None),
        ("error-503", openai.InternalServerError, "server_is_overloaded"),
    ],
)
def test_other_injected_errors(
    client: openai.OpenAI, model: str, exception: type[openai.APIStatusError], code: str | None
) -> None:
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model=model, messages=user("x"), stream=True)
    assert caught.value.status_code == int(model.removeprefix("error-"))
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("content", "param", "code"),
    [
        (b"{not json", None, None),
        (b"[]", None, None),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model", "missing_required_parameter"),
        (b'{"model": "m"}', "messages", "missing_required_parameter"),
        (b'{"model": "m", "messages": []}', "messages", "empty_array"),
        (b'{"model": "m", "messages": [{"content": "x"}]}', "messages.[0].role", "missing_required_parameter"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream_options": {}}',
            "stream_options",
            None,
        ),
    ],
)
def test_request_validation(http: httpx.Client, content: bytes, param: str | None, code: str | None) -> None:
    response = http.post("/v1/chat/completions", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


def test_unknown_route_uses_openai_error_shape(http: httpx.Client) -> None:
    response = http.post("/v1/completions-nope", json={})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_api_key_is_checked_when_configured() -> None:
    with ServerThread(create_app(api_key=API_KEY)) as secured:
        with openai.OpenAI(base_url=secured.url("/v1"), api_key="sk-wrong-key-123", max_retries=0) as wrong:
            with pytest.raises(openai.AuthenticationError) as caught:
                wrong.chat.completions.create(model="m", messages=user("x"))
            assert caught.value.code == "invalid_api_key"
            assert "sk-wrong-key-123" not in caught.value.message  # the key is masked
            with pytest.raises(openai.AuthenticationError):
                wrong.models.list()
        with openai.OpenAI(base_url=secured.url("/v1"), api_key=API_KEY, max_retries=0) as right:
            completion = right.chat.completions.create(model="m", messages=user("x"))
            assert completion.choices[0].message.content == REPLY_PREFIX + "x"
        with httpx.Client(base_url=secured.base_url) as raw:
            missing = raw.post("/v1/chat/completions", json={"model": "m", "messages": user("x")})
            assert missing.status_code == 401
            assert missing.json()["error"]["code"] == "invalid_api_key"


# --------------------------------------------------------------------------------------------
# Cut connections
# --------------------------------------------------------------------------------------------


def test_cut_stream_raises_in_the_sdk(client: openai.OpenAI) -> None:
    received: list[str] = []

    def consume(stream: openai.Stream[ChatCompletionChunk]) -> None:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)

    stream = client.chat.completions.create(model="cut-stream", messages=user("never finished"), stream=True)
    with stream, pytest.raises(openai.APIConnectionError):
        consume(stream)
    assert received == ["Hello ", "from "]  # the two content chunks sent before the cut


def test_cut_stream_is_a_protocol_error_for_httpx(http: httpx.Client) -> None:
    payload = {"model": "cut-stream", "messages": user("x"), "stream": True}
    received: list[bytes] = []

    def consume(response: httpx.Response) -> None:
        received.extend(response.iter_raw())

    with (
        http.stream("POST", "/v1/chat/completions", json=payload) as response,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        consume(response)
    raw = b"".join(received)
    assert raw.count(b"data: ") == 3  # opening chunk and two content chunks
    assert b"[DONE]" not in raw


def test_cut_non_stream_body(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="cut-stream", messages=user("x"))


# --------------------------------------------------------------------------------------------
# Scripted faults for fallback, circuit-breaker and timeout tests
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exception", "type_"),
    [
        (429, openai.RateLimitError, "rate_limit_exceeded"),
        (500, openai.InternalServerError, "server_error"),
        (503, openai.InternalServerError, "service_unavailable_error"),
    ],
)
def test_canned_status_without_body_is_openais_envelope_with_the_scripted_headers(
    client: openai.OpenAI,
    fake: FakeUpstreamState,
    status: int,
    exception: type[openai.APIStatusError],
    type_: str,
) -> None:
    fake.add_script([{"status": status, "headers": {"Retry-After": "2"}}])
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model="m", messages=user("x"))
    assert caught.value.status_code == status
    assert caught.value.type == type_
    assert set(caught.value.response.json()["error"]) == {"message", "type", "param", "code"}
    assert caught.value.response.headers["retry-after"] == "2"  # the script's, not the 429 default of 1


def test_scripted_cut_stream_drops_a_stream_midway(client: openai.OpenAI, fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "cut-stream"}])
    received: list[str] = []

    def consume(stream: openai.Stream[ChatCompletionChunk]) -> None:
        received.extend(c.choices[0].delta.content or "" for c in stream if c.choices)

    stream = client.chat.completions.create(model="gpt-4o", messages=user("never finished"), stream=True)
    with stream, pytest.raises(openai.APIConnectionError):
        consume(stream)
    assert received == ["", "Hello ", "from "]


@pytest.mark.parametrize(
    ("stream", "content_type"), [(False, "application/json"), (True, "text/event-stream; charset=utf-8")]
)
def test_cut_before_body_sends_the_headers_then_drops_the_connection(
    http: httpx.Client, fake: FakeUpstreamState, stream: bool, content_type: str
) -> None:
    fake.add_script([{"fault": "cut-before-body"}])
    received: list[bytes] = []
    with http.stream("POST", "/v1/chat/completions", json={"model": "m", "messages": user("x"), "stream": stream}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == content_type
        # A JSON answer announces its full length; a stream is chunked.
        assert ("content-length" in r.headers) is not stream
        with pytest.raises(httpx.RemoteProtocolError):
            received.extend(r.iter_raw())
    assert b"".join(received) == b""


def test_cut_before_body_is_a_connection_error_in_the_sdk(client: openai.OpenAI, fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "cut-before-body"}] * 2)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=user("x"))
    stream = client.chat.completions.create(model="m", messages=user("x"), stream=True)
    with stream, pytest.raises(openai.APIConnectionError):
        list(stream)


def test_stall_after_first_pauses_between_the_first_two_frames(http: httpx.Client, fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "stall-after-first", "stall_ms": 600}])
    started = time.perf_counter()
    with http.stream("POST", "/v1/chat/completions", json={"model": "m", "messages": user("a b"), "stream": True}) as r:
        chunks = r.iter_raw()
        first = next(chunks)
        first_at = time.perf_counter() - started
        second = next(chunks)
        second_at = time.perf_counter() - started
        rest = b"".join(chunks)
    assert second_at >= 0.58
    # Most of the pause falls between the first two frames (the margin absorbs a busy test thread).
    assert second_at - first_at >= 0.3
    assert first.count(b"data: ") == 1  # the opening frame alone
    assert (first + second + rest).endswith(b"data: [DONE]\n\n")


def test_stall_after_first_trips_an_idle_timeout(server: ServerThread[Starlette], fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "stall-after-first", "stall_ms": 2000}])
    received: list[bytes] = []
    payload = {"model": "m", "messages": user("x"), "stream": True}
    with (
        httpx.Client(base_url=server.base_url, timeout=httpx.Timeout(5.0, read=0.5)) as impatient,
        impatient.stream("POST", "/v1/chat/completions", json=payload) as response,
        pytest.raises(httpx.ReadTimeout),
    ):
        received.extend(response.iter_raw())
    assert b"".join(received).count(b"data: ") == 1


def test_stall_after_first_then_answers_normally(client: openai.OpenAI, fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "stall-after-first", "stall_ms": 200}] * 2)
    started = time.perf_counter()
    completion = client.chat.completions.create(model="m", messages=user("paused"))
    assert time.perf_counter() - started >= 0.19  # non-stream: between the two halves of the body
    assert completion.choices[0].message.content == REPLY_PREFIX + "paused"
    stream = client.chat.completions.create(model="m", messages=user("paused"), stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == REPLY_PREFIX + "paused"


def test_hang_sends_nothing_until_the_client_gives_up(server: ServerThread[Starlette], fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "hang"}] * 2)
    with httpx.Client(base_url=server.base_url, timeout=httpx.Timeout(5.0, read=0.3)) as impatient:
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            impatient.post("/v1/chat/completions", json={"model": "m", "messages": user("anyone?"), "stream": True})
        assert time.perf_counter() - started >= 0.29
    with (
        openai.OpenAI(base_url=server.url("/v1"), api_key=API_KEY, max_retries=0, timeout=0.3) as sdk,
        pytest.raises(openai.APITimeoutError),
    ):
        sdk.chat.completions.create(model="m", messages=user("anyone?"))
    assert len(fake.requests) == 2  # accepted and recorded, just never answered


def test_hang_ends_when_the_client_goes_away() -> None:
    with ServerThread(create_app(), graceful_timeout=5) as own:
        own.app.state.fake.add_script([{"fault": "hang"}])
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(own.url("/v1/chat/completions"), json={"model": "m", "messages": user("x")}, timeout=0.2)
        # The connection is closed: the next request is served, and shutdown has nothing to wait for.
        assert httpx.post(own.url("/v1/chat/completions"), json={"model": "m", "messages": user("x")}).is_success
        stopping = time.perf_counter()
    assert time.perf_counter() - stopping < 2.0  # a handler still hanging would hold shutdown for 5 s


# --------------------------------------------------------------------------------------------
# Script queue and recording
# --------------------------------------------------------------------------------------------


def test_scripted_directives_are_consumed_in_order(
    client: openai.OpenAI, http: httpx.Client, fake: FakeUpstreamState
) -> None:
    script: list[dict[str, Any]] = [
        {"status": 429, "headers": {"retry-after": "7"}, "body": {"error": {"message": "scripted", "type": "t"}}},
        {"delay_ms": 150},
        {"status": 500},
        {"fault": "cut-stream"},
    ]
    assert http.post("/_fake/script", json=script).json() == {"queued": 4}
    assert http.get("/_fake/script").json() == script

    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="m", messages=user("x"))
    assert limited.value.message == "Error code: 429 - scripted"  # the canned body, verbatim
    assert limited.value.type == "t"
    assert limited.value.response.headers["retry-after"] == "7"

    started = time.perf_counter()
    delayed = client.chat.completions.create(model="m", messages=user("delayed"))
    assert time.perf_counter() - started >= 0.14
    assert delayed.choices[0].message.content == REPLY_PREFIX + "delayed"

    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="m", messages=user("x"))
    assert failed.value.type == "server_error"  # default body: OpenAI's envelope for the status

    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=user("x"))

    assert http.get("/_fake/script").json() == []
    assert client.chat.completions.create(model="m", messages=user("normal")).choices[0].message.content
    assert len(fake.requests) == 5


def test_script_drives_sdk_retries(server: ServerThread[Starlette], fake: FakeUpstreamState) -> None:
    # retry-after-ms keeps the SDK's back-off to 10 ms.
    fake.add_script([{"status": 503, "headers": {"retry-after-ms": "10"}}] * 2)
    with openai.OpenAI(base_url=server.url("/v1"), api_key=API_KEY, max_retries=2) as sdk:
        completion = sdk.chat.completions.create(model="m", messages=user("third time lucky"))
    assert completion.choices[0].message.content == REPLY_PREFIX + "third time lucky"
    assert len(fake.requests) == 3


def test_script_can_be_cleared_and_rejects_bad_directives(http: httpx.Client, fake: FakeUpstreamState) -> None:
    http.post("/_fake/script", json=[{"delay_ms": 1}, {"delay_ms": 2}])
    assert http.delete("/_fake/script").json() == {"cleared": 2}
    assert len(fake.script) == 0
    bad_scripts: list[object] = [
        [{"statuz": 500}],
        [{"status": "500"}],
        [{"fault": "melt"}],
        [{"fault": "cut-stream", "status": 500}],
        [{"fault": "stall-after-first"}],
        [{"fault": "stall-after-first", "stall_ms": -1}],
        [{"fault": "stall-after-first", "stall_ms": 1.5}],
        [{"fault": "hang", "stall_ms": 100}],
        [{"stall_ms": 100}],
        [3],
        [{}],
        "{",
    ]
    for bad in bad_scripts:
        response = http.post("/_fake/script", json=bad)
        assert response.status_code == 400, bad
        assert response.json()["error"]["type"] == "invalid_request_error"
    assert len(fake.script) == 0


def test_requests_are_recorded(client: openai.OpenAI, http: httpx.Client, server: ServerThread[Starlette]) -> None:
    client.chat.completions.create(
        model="gpt-4o", messages=user("record me"), temperature=0.5, extra_headers={"X-Trace-Id": "abc"}
    )
    http.post("/v1/chat/completions", content=b"{broken")
    recorded = http.get("/_fake/requests").json()
    assert len(recorded) == 2
    first = recorded[0]
    assert (first["method"], first["path"]) == ("POST", "/v1/chat/completions")
    assert first["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert first["headers"]["x-trace-id"] == "abc"
    assert all(key == key.lower() for key in first["headers"])
    assert first["body"] == {"model": "gpt-4o", "messages": user("record me"), "temperature": 0.5}
    assert recorded[1]["body"] is None

    app = server.app
    assert app.state.requests == recorded  # the same log, in process
    assert http.delete("/_fake/requests").json() == {"cleared": 2}
    assert http.get("/_fake/requests").json() == []
    assert app.state.requests == []


# --------------------------------------------------------------------------------------------
# Models, faults, the server helper and standalone mode
# --------------------------------------------------------------------------------------------


def test_models_endpoint(client: openai.OpenAI) -> None:
    models = list(client.models.list())
    assert [m.id for m in models][:2] == ["gpt-4o-mini", "gpt-4o"]
    assert all(m.object == "model" and m.owned_by == "fake" and m.created > 0 for m in models)
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_parse_fault() -> None:
    assert parse_fault("gpt-4o") is None
    assert parse_fault("error-99") is None
    assert parse_fault("error-429") == Fault("error", 429)
    assert parse_fault("ttfb-250") == Fault("ttfb", 250)
    assert parse_fault("slow-0") == Fault("slow", 0)
    assert parse_fault("cut-stream") == Fault("cut-stream")
    assert parse_fault("stall-500") == Fault("stall", 500)
    assert parse_fault("cut-before-body") == Fault("cut-before-body")
    assert parse_fault("hang") == Fault("hang")
    assert parse_fault("hang-10") is None


def test_stall_after_first_is_the_directive_spelling_of_stall(fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "stall-after-first", "stall_ms": 250}, {"fault": "stall-250"}])
    assert [d.fault for d in fake.script] == [Fault("stall", 250)] * 2
    assert fake.script[0].source == {"fault": "stall-after-first", "stall_ms": 250}


def test_server_thread_lifecycle() -> None:
    port = free_port()
    thread = ServerThread(create_app(), port=port)
    with pytest.raises(RuntimeError):
        _ = thread.base_url
    thread.start()
    try:
        assert thread.base_url == f"http://127.0.0.1:{port}"
        with pytest.raises(RuntimeError):
            thread.start()
        assert httpx.get(thread.url("/_fake/health")).json() == {"status": "ok"}
    finally:
        thread.stop()
    thread.stop()  # idempotent
    assert not thread.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(thread.url("/_fake/health"))


def test_server_thread_reports_a_failed_startup() -> None:
    async def failing_app(scope: Scope, receive: Receive, send: Send) -> None:
        # An app whose lifespan startup fails: uvicorn gives up before serving.
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "boom"})

    thread = ServerThread(failing_app, lifespan="on")
    with pytest.raises(RuntimeError, match="failed to start"):
        thread.start()
    assert not thread.running


def test_standalone_module_serves(tmp_path: Path) -> None:
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_upstream", "--port", str(port)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20.0
        while True:
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    json={"model": "m", "messages": user("standalone")},
                )
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        assert response.json()["choices"][0]["message"]["content"] == REPLY_PREFIX + "standalone"
    finally:
        process.terminate()
        process.wait(10)
