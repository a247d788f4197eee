"""The fake OpenAI Responses API upstream, driven over loopback HTTP by the official `openai` SDK.

The SDK is the reference client: `client.responses.create` parses the response object into its
models, and `client.responses.stream` rebuilds the response from the events with strict checks
(one `response.created` first, output items opened before their deltas, stable item identities, a
`response.completed` carrying the finished items). If the SDK accepts the fake's wire format, so
should a gateway. Raw `httpx` is used only where the SDK hides the wire (SSE framing, validation
errors, connection cuts).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import (
    FunctionToolParam,
    Response,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseReasoningItem,
    ResponseStreamEvent,
)
from starlette.applications import Starlette

from .openai_upstream import example_for_schema
from .responses_upstream import (
    ENCRYPTED_PREFIX,
    REASONING_TOKENS,
    REPLY_PREFIX,
    TOOL_REPLY_PREFIX,
    ResponsesState,
    create_app,
    cut_point,
    decrypt_reasoning,
    sse_frame,
)
from .server import ServerThread

API_KEY = "sk-test-fake-responses"

WEATHER_TOOL: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "verbose": {"type": "boolean"}},
        "required": ["city", "days"],
    },
    "strict": False,
}
TIME_TOOL: FunctionToolParam = {
    "type": "function",
    "name": "get_time",
    "parameters": {
        "type": "object",
        "properties": {"timezone": {"type": "string", "enum": ["UTC", "CET"]}},
        "required": ["timezone"],
        "additionalProperties": False,
    },
    "strict": True,
}
WEATHER_ARGUMENTS = {"city": "test", "days": 1}

# --------------------------------------------------------------------------------------------
# Fixtures: one server per module, state (log, script, store) reset before every test.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread[Starlette]]:
    with ServerThread(create_app(api_key=API_KEY)) as running:
        yield running


@pytest.fixture
def fake(server: ServerThread[Starlette]) -> ResponsesState:
    state: ResponsesState = server.app.state.fake
    state.clear_requests()
    state.clear_script()
    state.clear_store()
    return state


@pytest.fixture
def client(server: ServerThread[Starlette], fake: ResponsesState) -> Iterator[openai.OpenAI]:
    # max_retries=0: an injected error must surface at once rather than after SDK back-off.
    with openai.OpenAI(base_url=server.url("/v1"), api_key=API_KEY, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def http(server: ServerThread[Starlette], fake: ResponsesState) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=10.0) as raw:
        yield raw


def message(output: Sequence[object], index: int = -1) -> ResponseOutputMessage:
    item = output[index]
    assert isinstance(item, ResponseOutputMessage)
    return item


def calls(response: Response) -> list[ResponseFunctionToolCall]:
    return [item for item in response.output if isinstance(item, ResponseFunctionToolCall)]


def reasoning(response: Response) -> ResponseReasoningItem:
    item = response.output[0]
    assert isinstance(item, ResponseReasoningItem)
    return item


def collapse(types: Sequence[str]) -> list[str]:
    """Event types with each run of one delta type written once, as `<type>*`."""
    collapsed: list[str] = []
    for type_ in types:
        starred = type_ + "*"
        if type_.endswith(".delta") and collapsed and collapsed[-1] == starred:
            continue
        collapsed.append(starred if type_.endswith(".delta") else type_)
    return collapsed


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of every frame, asserting upstream's exact framing on the way."""
    frames = raw.split(b"\n\n")
    assert frames[-1] == b""  # every frame, the last included, ends with a blank line
    parsed: list[tuple[str, dict[str, Any]]] = []
    for frame in frames[:-1]:
        event_line, data_line = frame.split(b"\n")
        assert event_line.startswith(b"event: ") and data_line.startswith(b"data: ")
        parsed.append((event_line.removeprefix(b"event: ").decode(), json.loads(data_line.removeprefix(b"data: "))))
    return parsed


TEXT_STREAM = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta*",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]
REASONING_FUNCTION_CALL_STREAM = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",  # reasoning
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_text.delta*",
    "response.reasoning_summary_text.done",
    "response.reasoning_summary_part.done",
    "response.output_item.done",
    "response.output_item.added",  # function_call
    "response.function_call_arguments.delta*",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.completed",
]


# --------------------------------------------------------------------------------------------
# Non-streamed responses
# --------------------------------------------------------------------------------------------


def test_text_response_has_the_sdk_fields(client: openai.OpenAI) -> None:
    response = client.responses.create(model="gpt-4o-mini", input="hi there")
    assert response.id.startswith("resp_") and len(response.id) == len("resp_") + 48
    assert response.object == "response"
    assert response.status == "completed"
    assert response.model == "gpt-4o-mini"
    assert response.output_text == REPLY_PREFIX + "hi there"
    assert response.created_at > 1_700_000_000
    assert response.completed_at is not None
    assert response.error is None and response.incomplete_details is None
    assert response.instructions is None and response.previous_response_id is None
    assert response.tools == [] and response.tool_choice == "auto" and response.parallel_tool_calls is True
    assert response.text is not None and response.text.format is not None and response.text.format.type == "text"
    assert response.reasoning is not None and response.reasoning.effort is None
    assert response.model_extra is not None and response.model_extra["store"] is True  # `store` defaults to true
    assert response.metadata == {} and response.truncation == "disabled"

    item = message(response.output)
    assert item.id.startswith("msg_") and item.role == "assistant" and item.status == "completed"
    assert item.content[0].type == "output_text" and item.content[0].annotations == []

    usage = response.usage
    assert usage is not None
    assert usage.input_tokens == 2 + 3  # two words + one item
    assert usage.output_tokens == 5  # "Hello from fake-responses: hi there"
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_input_items_instructions_and_content_parts(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="gpt-4.1",
        instructions="Be brief.",
        input=[
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": "an older question"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "an older answer"}]},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "describe"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"},
                    {"type": "input_text", "text": "this"},
                ],
            },
        ],
        metadata={"trace": "t-1"},
        temperature=0.2,
    )
    assert response.output_text == REPLY_PREFIX + "describe this"
    assert response.instructions == "Be brief."
    assert response.metadata == {"trace": "t-1"} and response.temperature == 0.2
    assert response.usage is not None
    # words: instructions 2 + items 3 + 3 + 3 + 2, plus 3 per item and for the instructions
    assert response.usage.input_tokens == 13 + 3 * 5


def test_requests_are_recorded_with_lowercased_headers(client: openai.OpenAI, fake: ResponsesState) -> None:
    client.responses.create(model="gpt-4o", input="record me", extra_headers={"X-Trace-Id": "abc"})
    (recorded,) = fake.requests
    assert recorded["method"] == "POST" and recorded["path"] == "/v1/responses"
    assert recorded["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert recorded["headers"]["x-trace-id"] == "abc"
    assert recorded["body"] == {"model": "gpt-4o", "input": "record me"}


def test_function_tool_call(client: openai.OpenAI) -> None:
    response = client.responses.create(model="gpt-4o", input="weather in Paris?", tools=[WEATHER_TOOL, TIME_TOOL])
    (call,) = calls(response)
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == WEATHER_ARGUMENTS == example_for_schema(WEATHER_TOOL["parameters"])
    assert call.call_id.startswith("call_") and len(call.call_id) == 29
    assert call.id is not None and call.id.startswith("fc_")
    assert call.status == "completed"
    assert response.output_text == ""
    # Tools are echoed the way upstream does: flat, with description and strict filled in.
    echoed = [tool.to_dict() for tool in response.tools]
    assert echoed[0] == {**WEATHER_TOOL, "strict": False}
    assert echoed[1] == {**TIME_TOOL, "description": None}


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        ("none", None),
        ("auto", "get_weather"),
        ("required", "get_weather"),
        ({"type": "function", "name": "get_time"}, "get_time"),
    ],
)
def test_tool_choice(client: openai.OpenAI, tool_choice: Any, expected: str | None) -> None:
    response = client.responses.create(
        model="gpt-4o", input="what now?", tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=tool_choice
    )
    assert [call.name for call in calls(response)] == ([expected] if expected else [])
    assert response.output_text == ("" if expected else REPLY_PREFIX + "what now?")
    assert response.to_dict()["tool_choice"] == tool_choice


def test_parallel_tool_calls(client: openai.OpenAI) -> None:
    tools = [WEATHER_TOOL, TIME_TOOL]
    both = client.responses.create(model="gpt-4o", input="check both in parallel", tools=tools)
    assert [call.name for call in calls(both)] == ["get_weather", "get_time"]
    assert len({call.call_id for call in calls(both)}) == 2
    one = client.responses.create(
        model="gpt-4o", input="check both in parallel", tools=tools, parallel_tool_calls=False
    )
    assert [call.name for call in calls(one)] == ["get_weather"]
    assert one.parallel_tool_calls is False


def test_tool_choice_must_name_a_declared_function(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="gpt-4o", input="x", tools=[WEATHER_TOOL], tool_choice={"type": "function", "name": "nope"}
        )
    assert caught.value.param == "tool_choice"


def test_reasoning_item_with_summary_and_encrypted_content(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="o4-mini",
        input="think first",
        reasoning={"effort": "low", "summary": "auto"},
        include=["reasoning.encrypted_content"],
    )
    item = reasoning(response)
    assert item.id.startswith("rs_")
    assert [part.text for part in item.summary] == ["Thinking about: think first"]
    assert item.encrypted_content is not None and item.encrypted_content.startswith(ENCRYPTED_PREFIX)
    assert decrypt_reasoning(item.encrypted_content) == {"id": item.id, "summary": "Thinking about: think first"}
    assert response.output_text == REPLY_PREFIX + "think first"
    assert response.reasoning is not None
    assert (response.reasoning.effort, response.reasoning.summary) == ("low", "auto")
    usage = response.usage
    assert usage is not None
    assert usage.output_tokens_details.reasoning_tokens == REASONING_TOKENS["low"]
    assert usage.output_tokens == REASONING_TOKENS["low"] + 5


def test_reasoning_without_summary_or_include(client: openai.OpenAI) -> None:
    response = client.responses.create(model="o4-mini", input="x", reasoning={"effort": "high"})
    item = reasoning(response)
    assert item.summary == [] and item.encrypted_content is None
    assert "encrypted_content" not in item.to_dict()
    assert response.usage is not None and response.usage.output_tokens_details.reasoning_tokens == 32
    plain = client.responses.create(model="gpt-5", input="x", reasoning={"effort": "none"})
    assert [item.type for item in plain.output] == ["message"]


# --------------------------------------------------------------------------------------------
# Conversation state: function_call_output round trips, previous_response_id, item_reference
# --------------------------------------------------------------------------------------------


def test_function_call_output_round_trip_by_resending_items(client: openai.OpenAI) -> None:
    question = {"role": "user", "content": "weather and time, in parallel"}
    first = client.responses.create(model="gpt-4o", input=[question], tools=[WEATHER_TOOL, TIME_TOOL])
    weather, clock = calls(first)
    second = client.responses.create(
        model="gpt-4o",
        tools=[WEATHER_TOOL, TIME_TOOL],
        input=[
            question,
            *first.output,  # the SDK sends its own output models back as input items
            {"type": "function_call_output", "call_id": weather.call_id, "output": "sunny"},
            {"type": "function_call_output", "call_id": clock.call_id, "output": "noon"},
        ],
    )
    assert second.output_text == TOOL_REPLY_PREFIX + "sunny | noon"
    assert second.previous_response_id is None


def test_function_call_output_round_trip_by_previous_response_id(client: openai.OpenAI) -> None:
    first = client.responses.create(model="gpt-4o", input="weather?", tools=[WEATHER_TOOL])
    (call,) = calls(first)
    second = client.responses.create(
        model="gpt-4o",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "22 degrees"}],
        tools=[WEATHER_TOOL],
    )
    assert second.output_text == TOOL_REPLY_PREFIX + "22 degrees"
    assert second.previous_response_id == first.id
    assert first.usage is not None and second.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens  # the stored conversation is prepended

    # Tools and instructions are not carried over: without tools the next turn is plain text.
    third = client.responses.create(model="gpt-4o", previous_response_id=second.id, input="thanks")
    assert third.output_text == REPLY_PREFIX + "thanks"
    assert third.usage is not None and third.usage.input_tokens > second.usage.input_tokens


def test_unanswered_function_call_is_rejected(client: openai.OpenAI) -> None:
    first = client.responses.create(model="gpt-4o", input="weather?", tools=[WEATHER_TOOL])
    (call,) = calls(first)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4o", previous_response_id=first.id, input="never mind")
    assert caught.value.message.endswith(f"No tool output found for function call {call.call_id}.")
    assert caught.value.param == "input"


def test_function_call_output_without_its_call_is_rejected(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="gpt-4o", input=[{"type": "function_call_output", "call_id": "call_unknown", "output": "x"}]
        )
    assert "No tool call found for function call output with call_id call_unknown." in caught.value.message


def test_item_reference_resolves_stored_items(client: openai.OpenAI) -> None:
    first = client.responses.create(model="gpt-4o", input="weather?", tools=[WEATHER_TOOL])
    (call,) = calls(first)
    assert call.id is not None
    # The call is named by reference only; pairing its output proves the reference resolved.
    second = client.responses.create(
        model="gpt-4o",
        input=[
            {"role": "user", "content": "weather?"},
            {"type": "item_reference", "id": call.id},
            {"type": "function_call_output", "call_id": call.call_id, "output": "rain"},
        ],
    )
    assert second.output_text == TOOL_REPLY_PREFIX + "rain"

    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="gpt-4o", input=[{"type": "item_reference", "id": "msg_missing"}])
    assert caught.value.message.startswith("Error code: 404 - ")
    assert caught.value.body == {
        "message": "Item with id 'msg_missing' not found. Items are not persisted when `store` is set to false. "
        "Try again with `store` set to true, or remove this item from your input.",
        "type": "invalid_request_error",
        "param": "input",
        "code": None,
    }


def test_store_false_responses_cannot_be_referenced(client: openai.OpenAI) -> None:
    unstored = client.responses.create(model="gpt-4o", input="forget me", store=False)
    assert unstored.model_extra is not None and unstored.model_extra["store"] is False

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4o", previous_response_id=unstored.id, input="and then?")
    error = caught.value
    assert error.status_code == 400
    assert error.code == "previous_response_not_found"
    assert error.param == "previous_response_id"
    assert error.type == "invalid_request_error"
    assert error.body == {
        "message": f"Previous response with id '{unstored.id}' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }

    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="gpt-4o", input=[{"type": "item_reference", "id": unstored.output[0].id}])


def test_stateless_reasoning_travels_as_encrypted_content(client: openai.OpenAI) -> None:
    """store=false: reasoning comes back with its encrypted_content, or it cannot come back at all."""
    question = {"role": "user", "content": "weather?"}
    first = client.responses.create(
        model="o4-mini",
        input=[question],
        tools=[WEATHER_TOOL],
        store=False,
        reasoning={"effort": "medium"},
        include=["reasoning.encrypted_content"],
    )
    thought = reasoning(first)
    (call,) = calls(first)
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "hail"}
    second = client.responses.create(
        model="o4-mini", input=[question, *first.output, result], store=False, reasoning={"effort": "medium"}
    )
    assert second.output_text == TOOL_REPLY_PREFIX + "hail"

    tampered = {**thought.to_dict(), "encrypted_content": ENCRYPTED_PREFIX + "not-base64!"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="o4-mini", input=[question, tampered, call, result], store=False)
    assert caught.value.code == "invalid_encrypted_content"

    # Without include=["reasoning.encrypted_content"] the unstored reasoning item is just an id.
    bare = client.responses.create(
        model="o4-mini", input=[question], tools=[WEATHER_TOOL], store=False, reasoning={"effort": "low"}
    )
    (bare_call,) = calls(bare)
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(
            model="o4-mini",
            input=[question, *bare.output, {**result, "call_id": bare_call.call_id}],
            store=False,
        )
    assert f"Item with id '{reasoning(bare).id}' not found." in missing.value.message


def test_retrieve_and_delete(client: openai.OpenAI, fake: ResponsesState) -> None:
    created = client.responses.create(model="gpt-4o", input="keep me")
    fetched = client.responses.retrieve(created.id)
    assert fetched.to_dict() == created.to_dict()
    assert set(fake.responses) == {created.id}

    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(created.id)
    assert caught.value.body == {
        "message": f"Response with id '{created.id}' not found.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.BadRequestError) as gone:
        client.responses.create(model="gpt-4o", previous_response_id=created.id, input="x")
    assert gone.value.code == "previous_response_not_found"
    assert [r["method"] for r in fake.requests] == ["POST", "GET", "DELETE", "GET", "POST"]


# --------------------------------------------------------------------------------------------
# Streaming
# --------------------------------------------------------------------------------------------


def test_stream_text_events_and_final_response(client: openai.OpenAI) -> None:
    events: list[ResponseStreamEvent] = []
    deltas: list[str] = []
    with client.responses.stream(model="gpt-4o-mini", input="stream me please") as stream:
        for event in stream:
            events.append(event)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
                assert event.snapshot == "".join(deltas)  # the SDK's running text
        final = stream.get_final_response()

    assert collapse([e.type for e in events]) == TEXT_STREAM
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert deltas == ["Hello ", "from ", "fake-responses: ", "stream ", "me ", "please"]
    assert final.output_text == "".join(deltas) == REPLY_PREFIX + "stream me please"
    assert final.status == "completed" and final.usage is not None

    created, in_progress, completed = events[0], events[1], events[-1]
    assert created.type == "response.created" and in_progress.type == "response.in_progress"
    assert created.response.status == "in_progress" and created.response.output == []
    assert created.response.usage is None
    assert completed.type == "response.completed"
    assert {created.response.id, in_progress.response.id, final.id} == {completed.response.id}
    added = events[2]
    assert added.type == "response.output_item.added"
    assert added.item.type == "message" and added.item.status == "in_progress" and added.item.content == []


def test_stream_function_call_with_reasoning(client: openai.OpenAI) -> None:
    events: list[ResponseStreamEvent] = []
    arguments: list[str] = []
    summary: list[str] = []
    with client.responses.stream(
        model="o4-mini",
        input="weather?",
        tools=[WEATHER_TOOL],
        reasoning={"effort": "medium", "summary": "detailed"},
        include=["reasoning.encrypted_content"],
    ) as stream:
        for event in stream:
            events.append(event)
            if event.type == "response.function_call_arguments.delta":
                arguments.append(event.delta)
                assert event.snapshot == "".join(arguments)
            elif event.type == "response.reasoning_summary_text.delta":
                summary.append(event.delta)
        final = stream.get_final_response()

    assert collapse([e.type for e in events]) == REASONING_FUNCTION_CALL_STREAM
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert len(arguments) >= 3  # relays see partial JSON
    thought, call = final.output
    assert isinstance(thought, ResponseReasoningItem) and isinstance(call, ResponseFunctionToolCall)
    assert json.loads("".join(arguments)) == json.loads(call.arguments) == WEATHER_ARGUMENTS
    assert "".join(summary) == thought.summary[0].text == "Deciding to call get_weather."
    assert thought.encrypted_content is not None and thought.encrypted_content.startswith(ENCRYPTED_PREFIX)

    by_type = {e.type: e for e in events}
    (call_added,) = [e for e in events if e.type == "response.output_item.added" and e.output_index == 1]
    assert call_added.type == "response.output_item.added"
    assert call_added.item.type == "function_call"
    assert (call_added.item.status, call_added.item.arguments) == ("in_progress", "")
    assert call_added.item.call_id == call.call_id
    done = by_type["response.function_call_arguments.done"]
    assert done.type == "response.function_call_arguments.done"
    assert (done.item_id, done.output_index, done.arguments) == (call.id, 1, call.arguments)
    part_added = by_type["response.reasoning_summary_part.added"]
    assert part_added.type == "response.reasoning_summary_part.added"
    assert (part_added.item_id, part_added.summary_index, part_added.part.text) == (thought.id, 0, "")
    reasoning_added = events[2]
    assert reasoning_added.type == "response.output_item.added" and reasoning_added.item.type == "reasoning"
    assert reasoning_added.item.summary == []
    assert final.usage is not None
    assert final.usage.output_tokens_details.reasoning_tokens == REASONING_TOKENS["medium"]


def test_raw_sse_framing_and_obfuscation(http: httpx.Client) -> None:
    payload = {"model": "gpt-4o", "input": "frame me", "stream": True}
    response = http.post("/v1/responses", json=payload)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["x-request-id"].startswith("req_")
    assert b"[DONE]" not in response.content  # the Responses API has no sentinel
    events = sse_events(response.content)
    for name, data in events:
        assert name == data["type"]  # the SSE event name repeats the data's type
        assert next(iter(data)) == "type" and list(data)[1] == "sequence_number"
    deltas = [data for name, data in events if name.endswith(".delta")]
    assert deltas and all(len(d["delta"] + d["obfuscation"]) % 16 == 0 for d in deltas)
    assert all(d["logprobs"] == [] for d in deltas)
    assert sse_frame(events[0][1]) == response.content.split(b"\n\n")[0] + b"\n\n"

    plain = http.post("/v1/responses", json={**payload, "stream_options": {"include_obfuscation": False}}).content
    assert all("obfuscation" not in data for _, data in sse_events(plain))


def test_async_client_stream(server: ServerThread[Starlette], fake: ResponsesState) -> None:
    async def run() -> tuple[list[str], Response]:
        async with openai.AsyncOpenAI(base_url=server.url("/v1"), api_key=API_KEY, max_retries=0) as sdk:
            deltas: list[str] = []
            async with sdk.responses.stream(model="gpt-4o", input="async") as stream:
                async for event in stream:
                    if event.type == "response.output_text.delta":
                        deltas.append(event.delta)
                return deltas, await stream.get_final_response()

    deltas, final = asyncio.run(run())
    assert "".join(deltas) == final.output_text == REPLY_PREFIX + "async"


# --------------------------------------------------------------------------------------------
# max_output_tokens
# --------------------------------------------------------------------------------------------

LONG_INPUT = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"


def test_max_output_tokens_makes_the_response_incomplete(client: openai.OpenAI) -> None:
    response = client.responses.create(model="gpt-4o", input=LONG_INPUT, max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    assert response.max_output_tokens == 16
    item = message(response.output)
    assert item.status == "incomplete"
    assert (
        response.output_text
        == REPLY_PREFIX + "one two three four five six seven eight nine ten eleven twelve thirteen "
    )
    assert response.usage is not None and response.usage.output_tokens == 16

    # Reasoning spends the budget first: with effort "medium" (16 tokens) no text is left.
    thought_only = client.responses.create(
        model="o4-mini", input=LONG_INPUT, max_output_tokens=16, reasoning={"effort": "medium"}
    )
    assert [item.type for item in thought_only.output] == ["reasoning"]
    assert thought_only.status == "incomplete"

    enough = client.responses.create(model="gpt-4o", input="short", max_output_tokens=16)
    assert enough.status == "completed" and enough.incomplete_details is None


def test_streamed_incomplete_response(client: openai.OpenAI) -> None:
    with client.responses.stream(model="gpt-4o", input=LONG_INPUT, max_output_tokens=16) as stream:
        events = list(stream)
    assert collapse([e.type for e in events]) == [*TEXT_STREAM[:-1], "response.incomplete"]
    last, item_done = events[-1], events[-2]
    assert last.type == "response.incomplete" and last.response.status == "incomplete"
    assert item_done.type == "response.output_item.done" and item_done.item.status == "incomplete"


def test_max_output_tokens_has_upstreams_minimum(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4o", input="x", max_output_tokens=8)
    assert caught.value.code == "integer_below_min_value"
    assert caught.value.param == "max_output_tokens"
    assert "Expected a value >= 16, but got 8 instead." in caught.value.message


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "exception", "code"),
    [
        ("error-400", openai.BadRequestError, None),
        ("error-401", openai.AuthenticationError, "invalid_api_key"),
        ("error-404", openai.NotFoundError, "model_not_found"),
        ("error-429", openai.RateLimitError, "rate_limit_exceeded"),
        ("error-500", openai.InternalServerError, None),
        ("error-503", openai.InternalServerError, "server_is_overloaded"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_injected_errors_are_typed_sdk_exceptions(
    client: openai.OpenAI, model: str, exception: type[openai.APIStatusError], code: str | None, stream: bool
) -> None:
    with pytest.raises(exception) as caught:
        client.responses.create(model=model, input="x", stream=stream)
    assert caught.value.status_code == int(model.removeprefix("error-"))
    assert caught.value.code == code
    assert set(caught.value.response.json()["error"]) == {"message", "type", "param", "code"}
    if model == "error-429":
        assert caught.value.response.headers["retry-after"] == "1"


def test_unknown_model_is_model_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-nope", input="x")
    assert caught.value.status_code == 400
    assert caught.value.body == {
        "message": "The requested model 'gpt-nope' does not exist.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (b"{not json", None, None),
        (b"[]", None, None),
        (b'{"input": "x"}', "model", "missing_required_parameter"),
        (b'{"model": "gpt-4o"}', "input", "missing_required_parameter"),
        (b'{"model": "gpt-4o", "input": {"role": "user"}}', "input", "invalid_type"),
        (b'{"model": "gpt-4o", "input": [{"content": "x"}]}', "input[0].type", "missing_required_parameter"),
        (b'{"model": "gpt-4o", "input": [{"role": "bot", "content": "x"}]}', "input[0].role", "invalid_value"),
        (b'{"model": "gpt-4o", "input": [{"role": "user"}]}', "input[0].content", "missing_required_parameter"),
        (
            b'{"model": "gpt-4o", "input": [{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]}',
            "input[0].content[0]",
            "invalid_value",
        ),
        (
            b'{"model": "gpt-4o", "input": [{"type": "function_call", "call_id": "c", "name": "f"}]}',
            "input[0].arguments",
            "missing_required_parameter",
        ),
        (b'{"model": "gpt-4o", "input": [{"type": "shell_magic"}]}', "input[0].type", "invalid_value"),
        (  # the Chat Completions tool shape
            b'{"model": "gpt-4o", "input": "x", "tools": [{"type": "function", "function": {"name": "f"}}]}',
            "tools[0].name",
            "missing_required_parameter",
        ),
        (
            b'{"model": "gpt-4o", "input": "x", "reasoning": {"effort": "maximal"}}',
            "reasoning.effort",
            "invalid_value",
        ),
        (b'{"model": "gpt-4o", "input": "x", "store": "yes"}', "store", "invalid_type"),
    ],
)
def test_request_validation(http: httpx.Client, body: bytes, param: str | None, code: str | None) -> None:
    response = http.post("/v1/responses", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


def test_invalid_value_lists_the_supported_values(http: httpx.Client) -> None:
    content = [{"type": "input_text", "text": "x"}]
    response = http.post(
        "/v1/responses", json={"model": "gpt-4o", "input": [{"role": "assistant", "content": content}]}
    )
    message = response.json()["error"]["message"]
    assert message == "Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'."


def test_api_key_is_required(server: ServerThread[Starlette], fake: ResponsesState) -> None:
    with openai.OpenAI(base_url=server.url("/v1"), api_key="sk-wrong-key-123", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError) as caught:
            wrong.responses.create(model="gpt-4o", input="x")
        assert caught.value.code == "invalid_api_key"
        assert "sk-wrong-key-123" not in caught.value.message  # the key is masked
    missing = httpx.post(server.url("/v1/responses"), json={"model": "gpt-4o", "input": "x"})
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert missing.json()["error"]["message"].startswith("You didn't provide an API key.")
    assert len(fake.requests) == 2  # rejected attempts are recorded too


def test_unknown_route_uses_openai_error_shape(http: httpx.Client) -> None:
    response = http.post("/v1/responses-nope", json={})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_models_endpoint(client: openai.OpenAI) -> None:
    assert "o4-mini" in [model.id for model in client.models.list()]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-nope")


# --------------------------------------------------------------------------------------------
# Cut connections, mid-stream failures and pacing
# --------------------------------------------------------------------------------------------


def test_cut_stream_raises_in_the_sdk(client: openai.OpenAI) -> None:
    received: list[str] = []

    def consume(stream: Iterable[ResponseStreamEvent]) -> None:
        for event in stream:
            if event.type == "response.output_text.delta":
                received.append(event.delta)

    with (
        client.responses.stream(model="cut-stream", input="never finished") as stream,
        pytest.raises(openai.APIConnectionError),
    ):
        consume(stream)
    assert received == ["Hello ", "from "]  # the two deltas sent before the cut


def test_cut_stream_is_a_protocol_error_for_httpx(http: httpx.Client, fake: ResponsesState) -> None:
    received: list[bytes] = []
    payload = {"model": "cut-stream", "input": "x", "stream": True}
    with (
        http.stream("POST", "/v1/responses", json=payload) as response,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        received.extend(response.iter_raw())
    names = [name for name, _ in sse_events(b"".join(received))]
    assert collapse(names) == TEXT_STREAM[:5]
    assert names.count("response.output_text.delta") == 2
    assert fake.responses == {}  # a cut response is not stored


def test_cut_non_stream_body(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        client.responses.create(model="cut-stream", input="x")


def test_fail_stream_emits_response_failed(client: openai.OpenAI, fake: ResponsesState) -> None:
    with client.responses.stream(model="fail-stream", input="doomed") as stream:
        events = list(stream)
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()
    assert collapse([e.type for e in events]) == [*TEXT_STREAM[:5], "response.failed"]
    failed = events[-1]
    assert failed.type == "response.failed"
    assert failed.response.status == "failed"
    assert failed.response.error is not None and failed.response.error.code == "server_error"
    assert "Please include the request ID req_" in failed.response.error.message
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert fake.responses == {}

    with pytest.raises(openai.InternalServerError):
        client.responses.create(model="fail-stream", input="doomed")


def test_drip_paces_the_frames(client: openai.OpenAI) -> None:
    started = time.perf_counter()
    with client.responses.stream(model="drip-20", input="slowly") as stream:
        events = list(stream)
    assert time.perf_counter() - started >= 0.019 * (len(events) - 1)


def test_cut_point_falls_back_to_before_the_terminal_event() -> None:
    events = [{"type": "response.created"}, {"type": "response.in_progress"}, {"type": "response.completed"}]
    assert cut_point(events) == 2


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
    client: openai.OpenAI, fake: ResponsesState, status: int, exception: type[openai.APIStatusError], type_: str
) -> None:
    fake.add_script([{"status": status, "headers": {"Retry-After": "2"}}])
    with pytest.raises(exception) as caught:
        client.responses.create(model="gpt-4o", input="x")
    assert caught.value.status_code == status
    assert caught.value.type == type_
    assert set(caught.value.response.json()["error"]) == {"message", "type", "param", "code"}
    assert caught.value.response.headers["retry-after"] == "2"  # the script's, not the 429 default of 1


@pytest.mark.parametrize(
    ("stream", "content_type"), [(False, "application/json"), (True, "text/event-stream; charset=utf-8")]
)
def test_cut_before_body_sends_the_headers_then_drops_the_connection(
    http: httpx.Client, fake: ResponsesState, stream: bool, content_type: str
) -> None:
    fake.add_script([{"fault": "cut-before-body"}])
    received: list[bytes] = []
    with http.stream("POST", "/v1/responses", json={"model": "gpt-4o", "input": "x", "stream": stream}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == content_type
        assert response.headers["x-request-id"].startswith("req_")
        # A JSON answer announces its full length; a stream is chunked.
        assert ("content-length" in response.headers) is not stream
        with pytest.raises(httpx.RemoteProtocolError):
            received.extend(response.iter_raw())
    assert b"".join(received) == b""
    assert fake.responses == {}  # never delivered, so never stored


def test_cut_before_body_is_a_connection_error_in_the_sdk(client: openai.OpenAI, fake: ResponsesState) -> None:
    fake.add_script([{"fault": "cut-before-body"}] * 2)
    with pytest.raises(openai.APIConnectionError):
        client.responses.create(model="gpt-4o", input="x")
    with client.responses.stream(model="gpt-4o", input="x") as stream, pytest.raises(openai.APIConnectionError):
        list(stream)


def test_stall_after_first_pauses_after_response_created(http: httpx.Client, fake: ResponsesState) -> None:
    fake.add_script([{"fault": "stall-after-first", "stall_ms": 600}])
    started = time.perf_counter()
    with http.stream("POST", "/v1/responses", json={"model": "gpt-4o", "input": "a b", "stream": True}) as response:
        chunks = response.iter_raw()
        first = next(chunks)
        first_at = time.perf_counter() - started
        second = next(chunks)
        second_at = time.perf_counter() - started
        rest = b"".join(chunks)
    assert second_at >= 0.58
    # Most of the pause falls between the first two frames (the margin absorbs a busy test thread).
    assert second_at - first_at >= 0.3
    assert [name for name, _ in sse_events(first)] == ["response.created"]
    assert collapse([name for name, _ in sse_events(first + second + rest)]) == TEXT_STREAM
    assert len(fake.responses) == 1  # delivered in the end, so stored


def test_stall_after_first_trips_an_idle_timeout(server: ServerThread[Starlette], fake: ResponsesState) -> None:
    fake.add_script([{"fault": "stall-after-first", "stall_ms": 2000}])
    received: list[bytes] = []
    headers = {"authorization": f"Bearer {API_KEY}"}
    with (
        httpx.Client(base_url=server.base_url, headers=headers, timeout=httpx.Timeout(5.0, read=0.5)) as impatient,
        impatient.stream("POST", "/v1/responses", json={"model": "gpt-4o", "input": "x", "stream": True}) as response,
        pytest.raises(httpx.ReadTimeout),
    ):
        received.extend(response.iter_raw())
    assert [name for name, _ in sse_events(b"".join(received))] == ["response.created"]


def test_stall_after_first_then_answers_normally(client: openai.OpenAI, fake: ResponsesState) -> None:
    fake.add_script([{"fault": "stall-after-first", "stall_ms": 200}] * 2)
    started = time.perf_counter()
    assert client.responses.create(model="gpt-4o", input="paused").output_text == REPLY_PREFIX + "paused"
    assert time.perf_counter() - started >= 0.19  # non-stream: between the two halves of the body
    with client.responses.stream(model="gpt-4o", input="paused") as stream:
        assert stream.get_final_response().output_text == REPLY_PREFIX + "paused"


def test_hang_sends_nothing_until_the_client_gives_up(server: ServerThread[Starlette], fake: ResponsesState) -> None:
    fake.add_script([{"fault": "hang"}] * 2)
    headers = {"authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=httpx.Timeout(5.0, read=0.3)) as impatient:
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            impatient.post("/v1/responses", json={"model": "gpt-4o", "input": "anyone?", "stream": True})
        assert time.perf_counter() - started >= 0.29
    with (
        openai.OpenAI(base_url=server.url("/v1"), api_key=API_KEY, max_retries=0, timeout=0.3) as sdk,
        pytest.raises(openai.APITimeoutError),
    ):
        sdk.responses.create(model="gpt-4o", input="anyone?")
    assert len(fake.requests) == 2  # accepted and recorded, just never answered
    assert fake.responses == {}


# --------------------------------------------------------------------------------------------
# Script queue
# --------------------------------------------------------------------------------------------


def test_scripted_directives_are_consumed_in_order(
    client: openai.OpenAI, http: httpx.Client, fake: ResponsesState
) -> None:
    script: list[dict[str, Any]] = [
        {"status": 429, "headers": {"retry-after": "7"}},
        {"delay_ms": 100},
        {"fault": "cut-stream"},
    ]
    assert http.post("/_fake/script", json=script).json() == {"queued": 3}
    assert http.get("/_fake/script").json() == script

    with pytest.raises(openai.RateLimitError) as limited:
        client.responses.create(model="gpt-4o", input="x")
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["retry-after"] == "7"

    started = time.perf_counter()
    delayed = client.responses.create(model="gpt-4o", input="delayed")
    assert time.perf_counter() - started >= 0.09
    assert delayed.output_text == REPLY_PREFIX + "delayed"

    with client.responses.stream(model="gpt-4o", input="x") as stream, pytest.raises(openai.APIConnectionError):
        list(stream)

    assert client.responses.create(model="gpt-4o", input="normal").output_text == REPLY_PREFIX + "normal"
    assert http.get("/_fake/script").json() == []
    assert len(http.get("/_fake/requests").json()) == 4
    assert http.delete("/_fake/requests").json() == {"cleared": 4}
