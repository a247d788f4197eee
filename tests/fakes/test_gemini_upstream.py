"""The fake Gemini upstream, driven over loopback HTTP by the official `google-genai` SDK.

The SDK is the reference client: if it parses the fake's responses, streams, thought signatures and errors the way
it parses Google's, the fake is a faithful stand-in for gateway tests. Raw `httpx` is used only where the SDK hides
the wire (SSE framing, the JSON-array stream, validation messages, auth variants, connection cuts).

The SDK is pointed at the fake with `HttpOptions(base_url=..., api_version="v1beta")`: a custom base URL replaces
`https://generativelanguage.googleapis.com/`, and the version is explicit because this SDK defaults to `v1`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from google import genai
from google.genai import errors, types
from starlette.applications import Starlette

from .gemini_upstream import (
    REPLY_PREFIX,
    THOUGHT_PREFIX,
    TOOL_REPLY_PREFIX,
    create_app,
    decode_bytes,
    is_fake_signature,
    sign_thought,
)
from .openai_upstream import FakeUpstreamState
from .server import ServerThread, free_port

API_KEY = "AIzaSy-test-fake-key"
MODEL = "gemini-2.5-flash"
MODEL_3 = "gemini-3-flash-preview"

WEATHER: dict[str, Any] = {
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
}
TIME: dict[str, Any] = {
    "name": "get_time",
    "parameters": {
        "type": "object",
        "properties": {"timezone": {"type": "string", "enum": ["UTC", "CET"]}},
        "required": ["timezone"],
    },
}
WEATHER_ARGS = {"city": "test", "days": 1}
TIME_ARGS = {"timezone": "UTC"}


def config(
    *declarations: dict[str, Any],
    mode: str | None = None,
    allowed: list[str] | None = None,
    thinking: types.ThinkingConfig | None = None,
    **extra: Any,
) -> types.GenerateContentConfig:
    """A request config; with declarations, automatic function calling is off so the calls reach the test."""
    options: dict[str, Any] = dict(extra)
    if declarations:
        options["tools"] = [types.Tool(function_declarations=[types.FunctionDeclaration(**d) for d in declarations])]
        options["automatic_function_calling"] = types.AutomaticFunctionCallingConfig(disable=True)
    if mode is not None:
        options["tool_config"] = types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode(mode), allowed_function_names=allowed
            )
        )
    if thinking is not None:
        options["thinking_config"] = thinking
    return types.GenerateContentConfig(**options)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


def sse_chunks(raw: bytes) -> list[dict[str, Any]]:
    """The JSON chunks of a raw SSE body, checking Gemini's framing: `data:` lines ended by CRLF, no [DONE]."""
    frames = raw.split(b"\r\n\r\n")
    assert frames[-1] == b""
    chunks = []
    for frame in frames[:-1]:
        assert frame.startswith(b"data: ") and b"\n" not in frame
        chunks.append(json.loads(frame.removeprefix(b"data: ")))
    return chunks


def chunk_parts(chunks: list[Any]) -> list[list[types.Part]]:
    return [list(parts_of(c)) for c in chunks]


def first_candidate(response: types.GenerateContentResponse) -> types.Candidate:
    assert response.candidates
    return response.candidates[0]


def parts_of(response: types.GenerateContentResponse) -> list[types.Part]:
    content = first_candidate(response).content
    assert content is not None
    return list(content.parts or [])


# --------------------------------------------------------------------------------------------
# Fixtures: one server per module, state reset before every test, clients closed after it.
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


def make_client(server: ServerThread[Starlette], api_key: str = API_KEY) -> genai.Client:
    # vertexai=False and an explicit api_version keep GOOGLE_GENAI_* environment variables out of the picture;
    # no retry_options means the SDK does not retry, so an injected error surfaces at once.
    return genai.Client(
        vertexai=False,
        api_key=api_key,
        http_options=types.HttpOptions(base_url=server.base_url, api_version="v1beta"),
    )


@pytest.fixture
def client(server: ServerThread[Starlette], fake: FakeUpstreamState) -> Iterator[genai.Client]:
    with make_client(server) as sdk:
        yield sdk


@pytest.fixture
def http(server: ServerThread[Starlette], fake: FakeUpstreamState) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers={"x-goog-api-key": API_KEY}, timeout=10.0) as raw:
        yield raw


def generate(http: httpx.Client, body: dict[str, Any], model: str = MODEL) -> httpx.Response:
    return http.post(f"/v1beta/models/{model}:generateContent", json=body)


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------


def test_text_reply_usage_and_ids(client: genai.Client, fake: FakeUpstreamState) -> None:
    response = client.models.generate_content(model=MODEL, contents="What is up?")

    assert response.text == REPLY_PREFIX + "What is up?"
    candidate = first_candidate(response)
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.index == 0
    assert response.model_version == MODEL
    assert response.response_id and len(response.response_id) == 23
    usage = response.usage_metadata
    assert usage is not None
    # 3 words + 3 per content; the reply has 6 words; no thinking without a thinkingConfig on 2.5.
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (6, 6, 12)
    assert usage.thoughts_token_count is None
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details[0].token_count == 6

    (recorded,) = fake.requests
    assert recorded["path"] == f"/v1beta/models/{MODEL}:generateContent"
    assert recorded["model"] == MODEL and recorded["action"] == "generateContent"  # type: ignore[typeddict-item]
    assert recorded["headers"]["x-goog-api-key"] == API_KEY
    assert recorded["headers"]["x-goog-api-client"].startswith("google-genai-sdk/")
    assert recorded["body"]["contents"] == [user("What is up?")]


def test_last_user_text_system_instruction_and_history(client: genai.Client) -> None:
    contents = [
        types.Content(role="user", parts=[types.Part.from_text(text="first question")]),
        types.Content(role="model", parts=[types.Part.from_text(text="first answer")]),
        types.Content(role="user", parts=[types.Part.from_text(text="second"), types.Part.from_text(text="question")]),
    ]
    response = client.models.generate_content(
        model=MODEL, contents=contents, config=config(system_instruction="Be brief please.")
    )
    assert response.text == REPLY_PREFIX + "second question"
    # System 3 words + (2+3) + (2+3) + (2+3).
    assert response.usage_metadata is not None and response.usage_metadata.prompt_token_count == 18


def test_pretty_printed_json_like_google(http: httpx.Client) -> None:
    response = generate(http, {"contents": [user("hi")]})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    assert response.text.startswith('{\n  "candidates": [\n')
    body = response.json()
    assert list(body) == ["candidates", "usageMetadata", "modelVersion", "responseId"]
    assert body["candidates"] == [
        {"content": {"parts": [{"text": REPLY_PREFIX + "hi"}], "role": "model"}, "finishReason": "STOP", "index": 0}
    ]
    assert body["usageMetadata"] == {
        "promptTokenCount": 4,
        "candidatesTokenCount": 4,
        "totalTokenCount": 8,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 4}],
    }


def test_snake_case_fields_and_v1_are_accepted(http: httpx.Client) -> None:
    body = {
        "contents": [user("snake case")],
        "generation_config": {"max_output_tokens": 4, "stop_sequences": []},
        "system_instruction": {"parts": [{"text": "sys"}]},
    }
    response = http.post(f"/v1/models/{MODEL}:generateContent", json=body)
    assert response.status_code == 200
    assert response.json()["candidates"][0]["content"]["parts"] == [{"text": "Hello from fake-gemini: snake"}]
    assert response.json()["candidates"][0]["finishReason"] == "MAX_TOKENS"


def test_max_output_tokens_truncates(client: genai.Client) -> None:
    response = client.models.generate_content(model=MODEL, contents="one two three", config=config(max_output_tokens=3))
    assert response.text == "Hello from fake-gemini:"
    assert first_candidate(response).finish_reason == types.FinishReason.MAX_TOKENS
    assert response.usage_metadata is not None and response.usage_metadata.candidates_token_count == 3


def test_stop_sequences_cut_before_the_match(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL, contents="alpha STOP beta", config=config(stop_sequences=["STOP", "beta"])
    )
    assert response.text == REPLY_PREFIX + "alpha "
    assert first_candidate(response).finish_reason == types.FinishReason.STOP


# --------------------------------------------------------------------------------------------
# Streaming
# --------------------------------------------------------------------------------------------


def test_stream_splits_text_and_ends_with_finish_and_usage(client: genai.Client, fake: FakeUpstreamState) -> None:
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="stream me"))

    assert len(chunks) == 5  # one word per chunk
    assert "".join(c.text or "" for c in chunks) == REPLY_PREFIX + "stream me"
    assert [first_candidate(c).finish_reason for c in chunks] == [None] * 4 + [types.FinishReason.STOP]
    assert {c.response_id for c in chunks} == {chunks[0].response_id}
    assert {c.model_version for c in chunks} == {MODEL}
    for chunk in chunks[:-1]:
        assert chunk.usage_metadata is not None and chunk.usage_metadata.candidates_token_count is None
        assert chunk.usage_metadata.total_token_count == 5
    final = chunks[-1].usage_metadata
    assert final is not None and (final.prompt_token_count, final.candidates_token_count) == (5, 5)
    assert fake.requests[0]["query"] == "alt=sse"
    assert fake.requests[0]["path"] == f"/v1beta/models/{MODEL}:streamGenerateContent"


def test_sse_wire_framing(http: httpx.Client) -> None:
    with http.stream(
        "POST", f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse", json={"contents": [user("x")]}
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream"
        raw = r.read()
    assert b"[DONE]" not in raw
    # Google's spacing: a space after colons, none after commas.
    assert raw.startswith(b'data: {"candidates": [{"content": {"parts": [{"text": "Hello "}],"role": "model"}}],')
    chunks = sse_chunks(raw)
    assert all("index" not in c["candidates"][0] for c in chunks)
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None, None, None, "STOP"]
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 4


def test_json_array_stream_without_alt_sse(http: httpx.Client) -> None:
    with http.stream("POST", f"/v1beta/models/{MODEL}:streamGenerateContent", json={"contents": [user("x")]}) as r:
        assert r.headers["content-type"] == "application/json; charset=UTF-8"
        pieces = list(r.iter_raw())
    raw = b"".join(pieces)
    assert raw.startswith(b'[{\n  "candidates"') and raw.endswith(b"}\n]")
    assert b"\n,\r\n{" in raw
    chunks = json.loads(raw)
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == REPLY_PREFIX + "x"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_async_sdk_stream(server: ServerThread[Starlette], fake: FakeUpstreamState) -> None:
    async def scenario() -> list[str]:
        with make_client(server) as sdk:
            async with sdk.aio as aio:
                stream = await aio.models.generate_content_stream(model=MODEL, contents="async hello")
                return [chunk.text or "" async for chunk in stream]

    pieces = asyncio.run(scenario())
    assert len(pieces) == 5 and "".join(pieces) == REPLY_PREFIX + "async hello"


# --------------------------------------------------------------------------------------------
# Function calling
# --------------------------------------------------------------------------------------------


def test_function_call_without_id_on_gemini_2(client: genai.Client) -> None:
    response = client.models.generate_content(model=MODEL, contents="Weather in Paris?", config=config(WEATHER))

    assert first_candidate(response).finish_reason == types.FinishReason.STOP
    calls = response.function_calls
    assert calls is not None and len(calls) == 1
    assert (calls[0].name, calls[0].args, calls[0].id) == ("get_weather", WEATHER_ARGS, None)
    (part,) = parts_of(response)
    assert part.thought_signature is None  # no thinking requested on 2.5
    # The name and the compact JSON arguments are one word each.
    assert response.usage_metadata is not None and response.usage_metadata.candidates_token_count == 2


def test_function_call_ids_and_signature_on_gemini_3(client: genai.Client) -> None:
    response = client.models.generate_content(model=MODEL_3, contents="Weather?", config=config(WEATHER))
    (part,) = parts_of(response)
    assert part.function_call is not None and part.function_call.id and len(part.function_call.id) == 8
    # Gemini 3 always thinks: the call is signed and thought tokens are billed, but no thought part is shown.
    assert part.thought_signature == base64.b64decode(sign_thought(THOUGHT_PREFIX + "Weather?"))
    assert response.usage_metadata is not None and response.usage_metadata.thoughts_token_count == 3


def test_parallel_calls_in_one_step(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL, contents="Weather and time, in parallel please", config=config(WEATHER, TIME)
    )
    calls = response.function_calls or []
    assert [(c.name, c.args) for c in calls] == [("get_weather", WEATHER_ARGS), ("get_time", TIME_ARGS)]


def test_mode_none_answers_text(client: genai.Client) -> None:
    response = client.models.generate_content(model=MODEL, contents="no tools", config=config(WEATHER, mode="NONE"))
    assert response.function_calls is None and response.text == REPLY_PREFIX + "no tools"


def test_mode_any_with_allowed_function_names(client: genai.Client, fake: FakeUpstreamState) -> None:
    response = client.models.generate_content(
        model=MODEL, contents="which one", config=config(WEATHER, TIME, mode="ANY", allowed=["get_time"])
    )
    assert [(c.name, c.args) for c in response.function_calls or []] == [("get_time", TIME_ARGS)]
    assert fake.requests[0]["body"]["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}
    }


def test_parameters_json_schema_is_used(http: httpx.Client) -> None:
    declaration = {
        "name": "lookup",
        "parametersJsonSchema": {
            "type": "object",
            "properties": {"ids": {"type": "array", "items": {"type": "integer"}}},
            "required": ["ids"],
        },
    }
    body = {"contents": [user("look")], "tools": [{"functionDeclarations": [declaration]}]}
    parts = generate(http, body).json()["candidates"][0]["content"]["parts"]
    assert parts == [{"functionCall": {"name": "lookup", "args": {"ids": [1]}}}]


def test_function_call_stream_arrives_whole(client: genai.Client) -> None:
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL, contents="parallel weather and time", config=config(WEATHER, TIME)
        )
    )
    assert len(chunks) == 1  # both calls, whole, in the last chunk
    (parts,) = chunk_parts(chunks)
    assert [p.function_call.name for p in parts if p.function_call] == ["get_weather", "get_time"]
    assert first_candidate(chunks[0]).finish_reason == types.FinishReason.STOP
    assert chunks[0].usage_metadata is not None and chunks[0].usage_metadata.candidates_token_count == 4


def test_function_response_round_trip(client: genai.Client, fake: FakeUpstreamState) -> None:
    cfg = config(WEATHER)
    question = types.Content(role="user", parts=[types.Part.from_text(text="Weather in Paris?")])
    first = client.models.generate_content(model=MODEL, contents=[question], config=cfg)
    model_turn = first_candidate(first).content
    assert model_turn is not None
    result = types.Content(
        role="user", parts=[types.Part.from_function_response(name="get_weather", response={"result": "Sunny"})]
    )

    second = client.models.generate_content(model=MODEL, contents=[question, model_turn, result], config=cfg)

    assert second.text == TOOL_REPLY_PREFIX + "Sunny"
    assert second.function_calls is None
    sent = fake.requests[-1]["body"]["contents"]
    assert sent[1] == {"parts": [{"functionCall": {"args": WEATHER_ARGS, "name": "get_weather"}}], "role": "model"}
    assert sent[2]["parts"][0]["functionResponse"] == {"name": "get_weather", "response": {"result": "Sunny"}}


def test_parallel_results_are_joined_and_json_results_serialised(http: httpx.Client) -> None:
    body = {
        "contents": [
            user("parallel"),
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "get_weather", "args": {}}},
                    {"functionCall": {"name": "get_time", "args": {}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                    {"functionResponse": {"name": "get_time", "response": {"error": "no clock"}}},
                ],
            },
        ],
        "tools": [{"functionDeclarations": [WEATHER, TIME]}],
    }
    parts = generate(http, body).json()["candidates"][0]["content"]["parts"]
    assert parts == [{"text": TOOL_REPLY_PREFIX + '{"temp":21} | Error: no clock'}]


def test_gemini_3_round_trip_with_ids_and_signatures(client: genai.Client, fake: FakeUpstreamState) -> None:
    cfg = config(WEATHER)
    question = types.Content(role="user", parts=[types.Part.from_text(text="Weather?")])
    first = client.models.generate_content(model=MODEL_3, contents=[question], config=cfg)
    model_turn = first_candidate(first).content
    assert model_turn is not None and model_turn.parts
    call = model_turn.parts[0].function_call
    assert call is not None
    result = types.Content(
        role="user",
        parts=[
            types.Part(function_response=types.FunctionResponse(id=call.id, name=call.name, response={"result": "Hot"}))
        ],
    )

    second = client.models.generate_content(model=MODEL_3, contents=[question, model_turn, result], config=cfg)

    assert second.text == TOOL_REPLY_PREFIX + "Hot"
    replayed = fake.requests[-1]["body"]["contents"][1]["parts"][0]
    # The SDK sends the signature back base64url-encoded; the fake accepts either alphabet, as the API does.
    assert is_fake_signature(replayed["thoughtSignature"])
    assert replayed["functionCall"]["id"] == call.id
    assert fake.requests[-1]["body"]["contents"][2]["parts"][0]["functionResponse"]["id"] == call.id


# --------------------------------------------------------------------------------------------
# Thinking
# --------------------------------------------------------------------------------------------


def test_include_thoughts_text(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL, contents="deep question", config=config(thinking=types.ThinkingConfig(include_thoughts=True))
    )
    thought, answer = parts_of(response)
    assert (thought.thought, thought.text, thought.thought_signature) == (True, THOUGHT_PREFIX + "deep question", None)
    assert answer.text == REPLY_PREFIX + "deep question" and not answer.thought
    assert answer.thought_signature == base64.b64decode(sign_thought(THOUGHT_PREFIX + "deep question"))
    assert response.text == REPLY_PREFIX + "deep question"  # the SDK leaves thoughts out
    usage = response.usage_metadata
    assert usage is not None and (usage.thoughts_token_count, usage.candidates_token_count) == (4, 5)
    assert usage.total_token_count == usage.prompt_token_count + 4 + 5  # type: ignore[operator]


def test_include_thoughts_signature_goes_on_first_call(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL,
        contents="parallel weather and time",
        config=config(WEATHER, TIME, thinking=types.ThinkingConfig(include_thoughts=True)),
    )
    thought, first_call, second_call = parts_of(response)
    assert thought.thought is True and thought.thought_signature is None
    assert first_call.function_call is not None and first_call.thought_signature is not None
    assert second_call.function_call is not None and second_call.thought_signature is None


def test_thinking_budget_without_thoughts_bills_but_hides_them(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL, contents="quiet", config=config(thinking=types.ThinkingConfig(thinking_budget=1024))
    )
    (part,) = parts_of(response)
    assert part.text == REPLY_PREFIX + "quiet" and part.thought_signature is not None
    assert response.usage_metadata is not None and response.usage_metadata.thoughts_token_count == 3


def test_thinking_stream_chunks(client: genai.Client) -> None:
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL, contents="why", config=config(thinking=types.ThinkingConfig(include_thoughts=True))
        )
    )
    parts = [p for ps in chunk_parts(chunks) for p in ps]
    thoughts = [p for p in parts if p.thought]
    answer = [p for p in parts if not p.thought]
    assert "".join(p.text or "" for p in thoughts) == THOUGHT_PREFIX + "why"
    assert parts[: len(thoughts)] == thoughts  # thoughts come first
    assert "".join(p.text or "" for p in answer) == REPLY_PREFIX + "why"
    assert [p.thought_signature is not None for p in answer] == [True, False, False, False]
    # Thought tokens are reported from the first chunk on; the candidate count only at the end.
    assert chunks[0].usage_metadata is not None and chunks[0].usage_metadata.thoughts_token_count == 3


def test_thinking_eats_max_output_tokens(http: httpx.Client) -> None:
    body = {
        "contents": [user("long")],
        "generationConfig": {"maxOutputTokens": 3, "thinkingConfig": {"thinkingBudget": -1}},
    }
    body_json = generate(http, body).json()
    assert body_json["candidates"] == [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}]
    assert "candidatesTokenCount" not in body_json["usageMetadata"]
    assert body_json["usageMetadata"]["thoughtsTokenCount"] == 3
    # Streamed, the unplaced signature arrives on a final empty text part.
    with http.stream("POST", f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse", json=body) as r:
        chunks = sse_chunks(r.read())
    assert chunks[-1]["candidates"][0]["content"]["parts"] == [
        {"text": "", "thoughtSignature": sign_thought("Thinking about: long")}
    ]
    assert chunks[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"


def test_gemini_3_rejects_a_current_turn_call_without_signature(http: httpx.Client) -> None:
    def body(signature: str | None) -> dict[str, Any]:
        call: dict[str, Any] = {"functionCall": {"name": "get_weather", "args": {}}}
        if signature is not None:
            call["thoughtSignature"] = signature
        result = {"functionResponse": {"name": "get_weather", "response": {"result": "ok"}}}
        contents = [user("weather"), {"role": "model", "parts": [call]}, {"role": "user", "parts": [result]}]
        return {"contents": contents, "tools": [{"functionDeclarations": [WEATHER]}]}

    response = generate(http, body(None), model=MODEL_3)
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert response.json()["error"]["message"].startswith(
        "Function call is missing a thought_signature in functionCall parts."
    )
    assert generate(http, body("skip_thought_signature_validator"), model=MODEL_3).status_code == 200
    assert generate(http, body(sign_thought("x")), model=MODEL_3).status_code == 200
    assert generate(http, body(None), model=MODEL).status_code == 200  # Gemini 2.5 does not check
    # A call from an earlier turn (before a new user message) is not checked.
    earlier = body(None)
    earlier["contents"].append({"role": "model", "parts": [{"text": "done"}]})
    earlier["contents"].append(user("thanks"))
    assert generate(http, earlier, model=MODEL_3).status_code == 200


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "status_name"),
    [
        (400, errors.ClientError, "INVALID_ARGUMENT"),
        (403, errors.ClientError, "PERMISSION_DENIED"),
        (404, errors.ClientError, "NOT_FOUND"),
        (429, errors.ClientError, "RESOURCE_EXHAUSTED"),
        (500, errors.ServerError, "INTERNAL"),
        (503, errors.ServerError, "UNAVAILABLE"),
    ],
)
def test_injected_errors_map_to_sdk_errors(
    client: genai.Client, status: int, error_type: type[errors.APIError], status_name: str
) -> None:
    with pytest.raises(error_type) as caught:
        client.models.generate_content(model=f"error-{status}", contents="boom")
    assert (caught.value.code, caught.value.status) == (status, status_name)
    assert caught.value.message


def test_errors_in_streams_raise_before_the_first_chunk(client: genai.Client) -> None:
    with pytest.raises(errors.ServerError) as caught:
        next(iter(client.models.generate_content_stream(model="error-503", contents="boom")))
    assert caught.value.message == "The model is overloaded. Please try again later."


def test_rate_limit_carries_retry_info_in_the_body_only(http: httpx.Client) -> None:
    response = generate(http, {"contents": [user("x")]}, model="error-429")
    assert response.status_code == 429
    assert "retry-after" not in response.headers
    error = response.json()["error"]
    assert error["code"] == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    kinds = {d["@type"].rsplit(".", 1)[-1]: d for d in error["details"]}
    assert set(kinds) == {"QuotaFailure", "Help", "RetryInfo"}
    assert kinds["RetryInfo"]["retryDelay"] == "1s"
    assert "Please retry in 1s." in error["message"]


def test_unknown_model_is_not_found(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-0.1-nope", contents="x")
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
    assert caught.value.message == (
        "models/gemini-0.1-nope is not found for API version v1beta, or is not supported for generateContent. "
        "Call ListModels to see the list of available models and their supported methods."
    )


def test_invalid_api_key_is_400_api_key_invalid(server: ServerThread[Starlette], fake: FakeUpstreamState) -> None:
    with make_client(server, api_key="wrong-key") as sdk, pytest.raises(errors.ClientError) as caught:
        sdk.models.generate_content(model=MODEL, contents="x")
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert caught.value.message == "API key not valid. Please pass a valid API key."
    details = caught.value.details["error"]["details"]
    assert details[0]["reason"] == "API_KEY_INVALID"


def test_auth_variants(server: ServerThread[Starlette], fake: FakeUpstreamState) -> None:
    url = server.url(f"/v1beta/models/{MODEL}:generateContent")
    body = {"contents": [user("auth")]}
    missing = httpx.post(url, json=body)
    assert missing.status_code == 403 and missing.json()["error"]["status"] == "PERMISSION_DENIED"
    assert missing.json()["error"]["message"].startswith("Method doesn't allow unregistered callers")
    bearer = httpx.post(url, json=body, headers={"authorization": "Bearer ya29.token"})
    assert bearer.status_code == 401 and bearer.json()["error"]["status"] == "UNAUTHENTICATED"
    assert httpx.post(url, params={"key": API_KEY}, json=body).status_code == 200
    assert httpx.post(url, params={"key": "nope"}, json=body).status_code == 400
    assert fake.requests[2]["query"] == f"key={API_KEY}"


def test_errors_on_the_json_array_stream_are_wrapped(http: httpx.Client) -> None:
    response = http.post("/v1beta/models/error-500:streamGenerateContent", json={"contents": [user("x")]})
    assert response.status_code == 500
    assert response.json() == [
        {
            "error": {
                "code": 500,
                "message": "An internal error has occurred. Please retry or report in "
                "https://developers.generativeai.google/guide/troubleshooting",
                "status": "INTERNAL",
            }
        }
    ]
    sse = http.post("/v1beta/models/error-500:streamGenerateContent?alt=sse", json={"contents": [user("x")]})
    assert sse.json()["error"]["status"] == "INTERNAL"


GOOD_CALL_TURNS: list[dict[str, Any]] = [
    user("q"),
    {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "* GenerateContentRequest.contents: contents is not specified\n"),
        ({"contents": []}, "* GenerateContentRequest.contents: contents is not specified\n"),
        (
            {"messages": [{"role": "user", "content": "hi"}]},
            'Invalid JSON payload received. Unknown name "messages": Cannot find field.',
        ),
        ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "Please use a valid role: user, model."),
        (
            {"contents": [{"role": "user", "parts": []}]},
            "* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.\n",
        ),
        (
            {"contents": [{"role": "user", "parts": [{"thought": True}]}]},
            "* GenerateContentRequest.contents[0].parts[0].data: required oneof field 'data' must have one "
            "initialized field\n",
        ),
        (
            {"contents": [{"role": "user", "parts": [{"type": "text", "text": "x"}]}]},
            "Invalid JSON payload received. Unknown name \"type\" at 'contents[0].parts[0]': Cannot find field.",
        ),
        (
            {"contents": [{"role": "user", "parts": [{"text": "x", "inlineData": {"mimeType": "a/b", "data": ""}}]}]},
            "Invalid JSON payload received. Oneof field 'data' is already set. Cannot set 'inlineData'",
        ),
        (
            {"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "@@"}}]}]},
            "Invalid value at 'contents[0].parts[0].inline_data.data' (TYPE_BYTES), Base64 decoding failed for '@@'",
        ),
        (
            {"contents": [user("q"), {"role": "model", "parts": [{"functionCall": {"args": {}}}]}]},
            "* GenerateContentRequest.contents[1].parts[0].function_call.name: Name cannot be empty.\n",
        ),
        (
            {"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f"}}]}]},
            "Please ensure that function call turn comes immediately after a user turn or after a function "
            "response turn.",
        ),
        (
            {"contents": [user("q"), {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
            "Please ensure that function response turn comes immediately after a function call turn.",
        ),
        (
            {
                "contents": [
                    *GOOD_CALL_TURNS,
                    {
                        "role": "user",
                        "parts": [
                            {"functionResponse": {"name": "f", "response": {}}},
                            {"functionResponse": {"name": "f", "response": {}}},
                        ],
                    },
                ]
            },
            "Please ensure that the number of function response parts is equal to the number of function call parts "
            "of the function call turn.",
        ),
        (
            {"contents": [user("q")], "tools": [{"functionDeclarations": [{"name": "bad name"}]}]},
            "* GenerateContentRequest.tools[0].function_declarations[0].name: Invalid function name. Must start with "
            "a letter or an underscore. Must be a-z, A-Z, 0-9, or contain underscores, dots, colons and dashes, with "
            "a maximum length of 64.\n",
        ),
        (
            {"contents": [user("q")], "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
            "Invalid value at 'tool_config.function_calling_config.mode' "
            '(type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "SOMETIMES"',
        ),
        (
            {
                "contents": [user("q")],
                "tools": [{"functionDeclarations": [WEATHER]}],
                "toolConfig": {"functionCallingConfig": {"mode": "AUTO", "allowedFunctionNames": ["get_weather"]}},
            },
            "* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: "
            "allowed_function_names may be set only when the mode is ANY or VALIDATED.\n",
        ),
        (
            {"contents": [user("q")], "generationConfig": {"stopSequences": ["a", "b", "c", "d", "e", "f"]}},
            "* GenerateContentRequest.generation_config.stop_sequences: the number of stop_sequences must be at "
            "most 5.\n",
        ),
    ],
)
def test_validation_errors(http: httpx.Client, body: dict[str, Any], message: str) -> None:
    response = generate(http, body)
    assert response.status_code == 400
    assert response.json() == {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}


def test_thinking_budget_zero_on_a_pro_model(http: httpx.Client) -> None:
    body: dict[str, Any] = {"contents": [user("q")], "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}
    response = generate(http, body, model="gemini-2.5-pro")
    assert response.json()["error"]["message"] == "Budget 0 is invalid. This model only works in thinking mode."
    body["generationConfig"]["thinkingConfig"]["includeThoughts"] = True
    answer = generate(http, body).json()  # flash may turn thinking off; there is then nothing to show
    assert answer["candidates"][0]["content"]["parts"] == [{"text": REPLY_PREFIX + "q"}]
    assert "thoughtsTokenCount" not in answer["usageMetadata"]


def test_invalid_json_and_unknown_routes(http: httpx.Client) -> None:
    bad = http.post(
        f"/v1beta/models/{MODEL}:generateContent", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    unknown = http.post(f"/v1beta/models/{MODEL}:embedContent", json={})
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"
    nowhere = http.get("/v2/elsewhere")
    assert nowhere.status_code == 404 and nowhere.json()["error"]["code"] == 404


# --------------------------------------------------------------------------------------------
# Faults and scripts
# --------------------------------------------------------------------------------------------


def test_cut_stream_raises_after_the_first_chunks(client: genai.Client) -> None:
    received: list[str] = []

    def consume() -> None:
        for chunk in client.models.generate_content_stream(model="cut-stream", contents="one two three"):
            received.append(chunk.text or "")

    with pytest.raises((httpx.TransportError, httpx2.TransportError)):
        consume()
    assert received == ["Hello ", "from "]


def test_cut_non_stream_raises(client: genai.Client) -> None:
    with pytest.raises((httpx.TransportError, httpx2.TransportError)):
        client.models.generate_content(model="cut-stream", contents="x")


def test_slow_ttfb_and_drip(http: httpx.Client) -> None:
    body = {"contents": [user("timed")]}
    started = time.monotonic()
    assert generate(http, body, model="slow-200").status_code == 200
    assert time.monotonic() - started >= 0.2

    started = time.monotonic()
    with http.stream("POST", "/v1beta/models/ttfb-300:streamGenerateContent?alt=sse", json=body) as response:
        headers_at = time.monotonic() - started
        first = next(response.iter_raw())
        first_at = time.monotonic() - started
    assert headers_at < 0.25 <= 0.3 <= first_at and first.startswith(b"data: ")

    started = time.monotonic()
    with http.stream("POST", "/v1beta/models/drip-50:streamGenerateContent?alt=sse", json=body) as response:
        frames = list(response.iter_raw())
    assert time.monotonic() - started >= 0.15  # 4 chunks, 3 gaps
    assert len(sse_chunks(b"".join(frames))) == 4


def test_scripted_directives(client: genai.Client, fake: FakeUpstreamState) -> None:
    fake.add_script([{"status": 503}, {"fault": "cut-stream"}, {"status": 200, "body": {"candidates": []}}])
    with pytest.raises(errors.ServerError) as caught:
        client.models.generate_content(model=MODEL, contents="first")
    assert (caught.value.code, caught.value.status) == (503, "UNAVAILABLE")
    with pytest.raises((httpx.TransportError, httpx2.TransportError)):
        list(client.models.generate_content_stream(model=MODEL, contents="second"))
    assert client.models.generate_content(model=MODEL, contents="third").candidates == []
    assert client.models.generate_content(model=MODEL, contents="fourth").text == REPLY_PREFIX + "fourth"
    assert len(fake.requests) == 4


def test_control_plane(http: httpx.Client, fake: FakeUpstreamState) -> None:
    generate(http, {"contents": [user("logged")]})
    logged = http.get("/_fake/requests").json()
    assert [r["model"] for r in logged] == [MODEL]
    assert http.post("/_fake/script", json=[{"status": 429}]).json() == {"queued": 1}
    assert http.get("/_fake/script").json() == [{"status": 429}]
    assert http.post("/_fake/script", json={"bogus": 1}).status_code == 400
    assert http.delete("/_fake/script").json() == {"cleared": 1}
    assert http.delete("/_fake/requests").json() == {"cleared": 1}
    assert http.get("/_fake/health").json() == {"status": "ok"}


# --------------------------------------------------------------------------------------------
# Scripted faults for fallback, circuit-breaker and timeout tests
# --------------------------------------------------------------------------------------------

SSE_PATH = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
ARRAY_PATH = f"/v1beta/models/{MODEL}:streamGenerateContent"
PLAIN_PATH = f"/v1beta/models/{MODEL}:generateContent"


@pytest.mark.parametrize(
    ("status", "error_type", "status_name"),
    [
        (429, errors.ClientError, "RESOURCE_EXHAUSTED"),
        (500, errors.ServerError, "INTERNAL"),
        (503, errors.ServerError, "UNAVAILABLE"),
    ],
)
def test_canned_status_without_body_is_googles_envelope_with_the_scripted_headers(
    client: genai.Client, fake: FakeUpstreamState, status: int, error_type: type[errors.APIError], status_name: str
) -> None:
    fake.add_script([{"status": status, "headers": {"Retry-After": "2"}}])
    with pytest.raises(error_type) as caught:
        client.models.generate_content(model=MODEL, contents="x")
    assert (caught.value.code, caught.value.status) == (status, status_name)
    assert caught.value.message
    assert caught.value.response is not None
    assert caught.value.response.headers["retry-after"] == "2"


def test_scripted_cut_stream_drops_the_sse_stream_midway(http: httpx.Client, fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "cut-stream"}])
    received: list[bytes] = []
    with (
        http.stream("POST", SSE_PATH, json={"contents": [user("one two three")]}) as response,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        received.extend(response.iter_raw())
    chunks = sse_chunks(b"".join(received))
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks] == ["Hello ", "from "]


@pytest.mark.parametrize(
    ("path", "content_type", "chunked"),
    [
        (PLAIN_PATH, "application/json; charset=UTF-8", False),
        (SSE_PATH, "text/event-stream", True),
        (ARRAY_PATH, "application/json; charset=UTF-8", True),
    ],
)
def test_cut_before_body_sends_the_headers_then_drops_the_connection(
    http: httpx.Client, fake: FakeUpstreamState, path: str, content_type: str, chunked: bool
) -> None:
    fake.add_script([{"fault": "cut-before-body"}])
    received: list[bytes] = []
    with http.stream("POST", path, json={"contents": [user("x")]}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == content_type
        # A plain answer announces its full length; a stream is chunked.
        assert ("content-length" in response.headers) is not chunked
        with pytest.raises(httpx.RemoteProtocolError):
            received.extend(response.iter_raw())
    assert b"".join(received) == b""


def test_cut_before_body_is_a_transport_error_in_the_sdk(client: genai.Client, fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "cut-before-body"}] * 2)
    with pytest.raises((httpx.TransportError, httpx2.TransportError)):
        client.models.generate_content(model=MODEL, contents="x")
    with pytest.raises((httpx.TransportError, httpx2.TransportError)):
        list(client.models.generate_content_stream(model=MODEL, contents="x"))


@pytest.mark.parametrize(("path", "opening"), [(SSE_PATH, b"data: "), (ARRAY_PATH, b"[{")])
def test_stall_after_first_pauses_after_the_first_chunk(
    http: httpx.Client, fake: FakeUpstreamState, path: str, opening: bytes
) -> None:
    fake.add_script([{"fault": "stall-after-first", "stall_ms": 600}])
    started = time.perf_counter()
    with http.stream("POST", path, json={"contents": [user("a b")]}) as response:
        chunks = response.iter_raw()
        first = next(chunks)
        first_at = time.perf_counter() - started
        second = next(chunks)
        second_at = time.perf_counter() - started
        rest = b"".join(chunks)
    assert second_at >= 0.58
    # Most of the pause falls between the first two frames (the margin absorbs a busy test thread).
    assert second_at - first_at >= 0.3
    assert first.startswith(opening)
    whole = first + second + rest
    parsed = sse_chunks(whole) if path == SSE_PATH else json.loads(whole)
    assert parsed[-1]["candidates"][0]["finishReason"] == "STOP"


def test_stall_after_first_trips_an_idle_timeout(server: ServerThread[Starlette], fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "stall-after-first", "stall_ms": 2000}])
    received: list[bytes] = []
    with (
        httpx.Client(
            base_url=server.base_url, headers={"x-goog-api-key": API_KEY}, timeout=httpx.Timeout(5.0, read=0.5)
        ) as impatient,
        impatient.stream("POST", SSE_PATH, json={"contents": [user("x")]}) as response,
        pytest.raises(httpx.ReadTimeout),
    ):
        received.extend(response.iter_raw())
    assert len(sse_chunks(b"".join(received))) == 1


def test_stall_after_first_then_answers_normally(client: genai.Client, fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "stall-after-first", "stall_ms": 200}] * 2)
    started = time.perf_counter()
    assert client.models.generate_content(model=MODEL, contents="paused").text == REPLY_PREFIX + "paused"
    assert time.perf_counter() - started >= 0.19  # non-stream: between the two halves of the body
    streamed = client.models.generate_content_stream(model=MODEL, contents="paused")
    assert "".join(chunk.text or "" for chunk in streamed) == REPLY_PREFIX + "paused"


def test_hang_sends_nothing_until_the_client_gives_up(server: ServerThread[Starlette], fake: FakeUpstreamState) -> None:
    fake.add_script([{"fault": "hang"}] * 2)
    with httpx.Client(
        base_url=server.base_url, headers={"x-goog-api-key": API_KEY}, timeout=httpx.Timeout(5.0, read=0.3)
    ) as impatient:
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            impatient.post(SSE_PATH, json={"contents": [user("anyone?")]})
        assert time.perf_counter() - started >= 0.29
    sdk = genai.Client(
        vertexai=False,
        api_key=API_KEY,
        http_options=types.HttpOptions(base_url=server.base_url, api_version="v1beta", timeout=300),
    )
    with sdk, pytest.raises((httpx.TimeoutException, httpx2.TimeoutException)):
        sdk.models.generate_content(model=MODEL, contents="anyone?")
    assert len(fake.requests) == 2  # accepted and recorded, just never answered


# --------------------------------------------------------------------------------------------
# Models and token counting
# --------------------------------------------------------------------------------------------


def test_models_list_and_get(client: genai.Client) -> None:
    listed = [m.name for m in client.models.list(config={"page_size": 2})]
    assert listed == [
        "models/gemini-2.5-flash",
        "models/gemini-2.5-pro",
        "models/gemini-2.5-flash-lite",
        "models/gemini-3-flash-preview",
        "models/gemini-3-pro-preview",
        "models/fake-model",
    ]
    model = client.models.get(model=MODEL)
    assert (model.name, model.display_name, model.output_token_limit) == (f"models/{MODEL}", "Gemini 2.5 Flash", 65_536)
    with pytest.raises(errors.ClientError) as caught:
        client.models.get(model="nope")
    assert caught.value.code == 404


def test_count_tokens_matches_prompt_usage(client: genai.Client) -> None:
    counted = client.models.count_tokens(model=MODEL, contents="count these words")
    used = client.models.generate_content(model=MODEL, contents="count these words").usage_metadata
    assert used is not None and counted.total_tokens == used.prompt_token_count == 6


# --------------------------------------------------------------------------------------------
# Helpers and standalone mode
# --------------------------------------------------------------------------------------------


def test_signature_encoding_round_trips() -> None:
    signature = sign_thought("a thought")
    assert sign_thought("a thought") == signature  # deterministic
    raw = base64.b64decode(signature)
    assert decode_bytes(signature) == raw == decode_bytes(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    assert is_fake_signature(signature) and not is_fake_signature(base64.b64encode(b"other").decode())
    assert decode_bytes("not base64!") is None


def test_standalone_module_serves() -> None:
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.gemini_upstream", "--port", str(port), "--api-key", API_KEY],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20.0
        while True:
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/v1beta/models/{MODEL}:generateContent",
                    json={"contents": [user("standalone")]},
                    headers={"x-goog-api-key": API_KEY},
                )
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        assert response.json()["candidates"][0]["content"]["parts"] == [{"text": REPLY_PREFIX + "standalone"}]
    finally:
        process.terminate()
        process.wait(10)
