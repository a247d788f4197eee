"""Responses streams: every golden answer streamed out and read back gives the answer; the official SDK's
stream accumulator accepts the encoder's events; the decoder reads an independent Responses stream (the
fake upstream's) as its complete answer; splitting the bytes anywhere changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.responses import Response, ResponseStreamEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route

from shared.domain.usage import Usage
from shared.formats.canonical import (
    ChatResponse,
    FinishReason,
    Reasoning,
    Text,
    ToolCall,
    response_from_json,
    to_json,
)
from shared.formats.openai_chat_stream import OpenAIStreamDecoder, OpenAIStreamEncoder
from shared.formats.openai_responses import ITEM_IDS, parse_response, render_response, wrap_custom_input
from shared.formats.openai_responses_stream import ResponsesStreamDecoder, ResponsesStreamEncoder
from shared.formats.sse import SseFramer, event_name, frame_data
from shared.formats.stream import (
    Collector,
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
from tests.fakes.responses_upstream import create_app
from tests.fakes.server import ServerThread

GOLDEN = Path(__file__).parent / "golden"
ANSWERS = sorted(p.parent for p in GOLDEN.glob("*/response.responses.json"))
EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)


def _answer(scenario: Path) -> ChatResponse:
    return response_from_json(json.loads((scenario / "response.canonical.json").read_text(encoding="utf-8")))


def encode(answer: ChatResponse, events: list[StreamEvent] | None = None) -> bytes:
    encoder = ResponsesStreamEncoder(extensions=answer.extensions)
    return b"".join(encoder.feed(e) for e in (events if events is not None else events_for(answer)))


def decode(chunks: list[bytes]) -> list[StreamEvent]:
    framer = SseFramer()
    decoder = ResponsesStreamDecoder()
    events: list[StreamEvent] = []
    for chunk in chunks:
        for frame in framer.feed(chunk):
            data = frame_data(frame)
            if data is not None:
                events += decoder.feed(event_name(frame), data)
    return events + decoder.finish()


def collect(events: list[StreamEvent]) -> ChatResponse:
    collector = Collector()
    for e in events:
        collector.feed(e)
    return collector.response()


def payloads(wire: bytes) -> list[dict[str, Any]]:
    out = []
    for frame in SseFramer().feed(wire):
        data = frame_data(frame)
        assert data is not None
        body = json.loads(data)
        assert event_name(frame) == body["type"]
        out.append(body)
    return out


def _comparable(answer: ChatResponse) -> dict[str, Any]:
    out = to_json(answer)
    out.pop("extensions", None)  # echoed request fields and item ids ride on the final Response only
    out.pop("stop_sequence", None)
    return out


# ----- the encoder ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ANSWERS, ids=lambda p: p.name)
def test_streamed_answer_reads_back_as_the_answer(scenario: Path) -> None:
    answer = _answer(scenario)
    assert _comparable(collect(decode([encode(answer)]))) == _comparable(answer)


@pytest.mark.parametrize("scenario", ANSWERS, ids=lambda p: p.name)
def test_every_event_is_valid_in_order_and_the_last_carries_the_complete_answer(scenario: Path) -> None:
    answer = _answer(scenario)
    events = payloads(encode(answer))
    for event in events:
        EVENTS.validate_python(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    final = events[-1]
    expected = render_response(_without_item_ids(answer))  # streamed item ids are the deterministic ones
    assert final["type"] == ("response.incomplete" if expected["status"] == "incomplete" else "response.completed")
    assert final["response"] == expected
    # each item: added, then its own events, then done; the done item is the one in the final output
    opened: set[int] = set()
    closed: set[int] = set()
    for event in events[2:-1]:
        index = event["output_index"]
        if event["type"] == "response.output_item.added":
            assert index not in opened and index == len(opened)
            opened.add(index)
        else:
            assert index in opened and index not in closed, event["type"]
        if event["type"] == "response.output_item.done":
            closed.add(index)
            assert event["item"] == expected["output"][index]
    assert opened == closed == set(range(len(expected["output"])))


def _without_item_ids(answer: ChatResponse) -> ChatResponse:
    return ChatResponse(
        answer.id,
        answer.model,
        answer.parts,
        answer.finish_reason,
        answer.usage,
        answer.created,
        answer.stop_sequence,
        {k: v for k, v in answer.extensions.items() if k != ITEM_IDS},
    )


def test_message_and_reasoning_content_events_come_in_the_documented_order() -> None:
    answer = ChatResponse(
        "resp_o", "m", (Reasoning("think", "enc"), Text("hi"), ToolCall("c", "f", '{"a":1}')), FinishReason.TOOL_CALLS
    )
    types = [e["type"] for e in payloads(encode(answer))]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]


def test_freeform_calls_stream_their_input_unwrapped() -> None:
    extensions = {"responses.tools": [{"type": "custom", "name": "apply_patch"}]}
    answer = ChatResponse(
        "resp_c",
        "m",
        (ToolCall("call_1", "apply_patch", wrap_custom_input('*** Begin Patch\n+"é"\n')),),
        FinishReason.TOOL_CALLS,
        extensions=extensions,
    )
    events = payloads(encode(answer))
    kinds = [e["type"] for e in events]
    assert "response.custom_tool_call_input.delta" in kinds and "response.function_call_arguments.delta" not in kinds
    done = next(e for e in events if e["type"] == "response.custom_tool_call_input.done")
    assert done["input"] == '*** Begin Patch\n+"é"\n'
    assert collect(decode([encode(answer)])).parts == answer.parts


def test_a_chat_upstreams_interleaved_tool_calls_become_interleaved_items() -> None:
    """An OpenAI Chat stream keeps its tool parts open until the end; the items stay valid."""
    answer = ChatResponse(
        "chatcmpl-1",
        "m",
        (Text("Checking."), ToolCall("a", "f", '{"x":1}'), ToolCall("b", "g", "{}")),
        FinishReason.TOOL_CALLS,
        Usage(input=3, output=4),
        created=5,
    )
    chat_encoder = OpenAIStreamEncoder(include_usage=True)
    chat_wire = b"".join(chat_encoder.feed(e) for e in events_for(answer))
    chat = OpenAIStreamDecoder()
    events: list[StreamEvent] = []
    for frame in SseFramer().feed(chat_wire):
        data = frame_data(frame)
        if data is not None:
            events += chat.feed(data)
    wire = encode(answer, events)
    for event in payloads(wire):
        EVENTS.validate_python(event)
    assert collect(decode([wire])) == ChatResponse(
        "chatcmpl-1", "m", answer.parts, FinishReason.TOOL_CALLS, Usage(input=3, output=4), created=5
    )


def test_an_upstream_failure_is_response_failed_with_the_items_so_far() -> None:
    encoder = ResponsesStreamEncoder()
    wire = encoder.feed(StreamStart("resp_f", "m", 1)) + encoder.feed(TextDelta(0, "par")) + encoder.feed(PartEnd(0))
    wire += encoder.feed(StreamFailed("Slow down", "rate_limit_error"))
    assert encoder.feed(StreamEnd(FinishReason.STOP)) == b""
    last = payloads(wire)[-1]
    EVENTS.validate_python(last)
    assert last["type"] == "response.failed" and last["response"]["status"] == "failed"
    assert last["response"]["error"] == {"code": "rate_limit_exceeded", "message": "Slow down"}
    assert last["response"]["output"][0]["content"][0]["text"] == "par"
    assert decode([wire])[-1] == StreamFailed("Slow down", "rate_limit_error")


def test_a_delta_for_a_part_that_never_started_is_an_order_error() -> None:
    encoder = ResponsesStreamEncoder()
    encoder.feed(StreamStart("r", "m"))
    with pytest.raises(StreamOrderError):
        encoder.feed(ToolCallDelta(3, "{}"))


# ----- the official SDK's accumulator ---------------------------------------------------------------------


@pytest.fixture
def serve() -> Iterator[Any]:
    """A loopback server answering `POST /v1/responses` with whatever bytes the test sets."""
    body: dict[str, bytes] = {}

    async def responses(request: Request) -> StarletteResponse:
        await request.body()
        return StarletteResponse(body["wire"], media_type="text/event-stream")

    app = Starlette(routes=[Route("/v1/responses", responses, methods=["POST"])])
    with ServerThread(app) as server:

        def run(wire: bytes) -> openai.OpenAI:
            body["wire"] = wire
            return openai.OpenAI(api_key="test", base_url=server.base_url + "/v1", max_retries=0)

        yield run


@pytest.mark.parametrize("scenario", ANSWERS, ids=lambda p: p.name)
def test_the_sdk_stream_accumulator_rebuilds_the_answer(serve: Any, scenario: Path) -> None:
    answer = _answer(scenario)
    with serve(encode(answer)) as client, client.responses.stream(model=answer.model, input="hi") as stream:
        if answer.finish_reason is FinishReason.LENGTH:  # the SDK only finalises `response.completed`
            last = list(stream)[-1]
            assert last.type == "response.incomplete"
            final = last.response
        else:
            final = stream.get_final_response()
    got = parse_response(final.to_dict())
    assert _comparable(got) == _comparable(answer)
    # the echoed request fields come through the SDK too
    assert {k: v for k, v in got.extensions.items() if k != ITEM_IDS} == dict(_without_item_ids(answer).extensions)


def test_the_sdk_sees_text_deltas_as_they_come(serve: Any) -> None:
    events = [
        StreamStart("resp_d", "m", 1),
        TextDelta(0, "Hel"),
        TextDelta(0, "lo"),
        PartEnd(0),
        StreamEnd(FinishReason.STOP),
    ]
    wire = encode(ChatResponse("resp_d", "m", (), FinishReason.STOP), events)
    with serve(wire) as client, client.responses.stream(model="m", input="hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        assert deltas == ["Hel", "lo"] and stream.get_final_response().output_text == "Hello"


# ----- the decoder ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_upstream() -> Iterator[str]:
    with ServerThread(create_app(record=False)) as server:
        yield server.base_url


WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}


@pytest.mark.parametrize(
    "body",
    [
        {"input": "hello there"},
        {
            "input": "think first",
            "reasoning": {"effort": "low", "summary": "auto"},
            "include": ["reasoning.encrypted_content"],
            "store": False,
        },
        {"input": "parallel please", "tools": [WEATHER, {**WEATHER, "name": "get_time"}]},
        {"input": "a long question " * 20, "reasoning": {"effort": "minimal"}, "max_output_tokens": 16},
    ],
    ids=["text", "reasoning", "parallel-calls", "incomplete"],
)
def test_the_decoder_reads_an_independent_stream_as_its_final_response(
    fake_upstream: str, body: dict[str, Any]
) -> None:
    """The fake upstream (written from OpenAI's docs, obfuscation pads included) streams; the events read
    back must give the answer its own `response.completed`/`incomplete` carries."""
    request = {"model": "gpt-5", "stream": True, **body}
    with httpx.Client(base_url=fake_upstream) as client:
        wire = client.post("/v1/responses", json=request).content
    final = payloads(wire)[-1]
    assert final["type"] in ("response.completed", "response.incomplete")
    expected = parse_response(final["response"])
    # byte-split in two places too: the framing must not matter
    third = len(wire) // 3
    for chunks in ([wire], [wire[:third], wire[third : 2 * third], wire[2 * third :]]):
        assert _comparable(collect(decode(chunks))) == _comparable(expected)


def _frames(*events: dict[str, Any]) -> bytes:
    return b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + json.dumps({**e, "sequence_number": i}).encode() + b"\n\n"
        for i, e in enumerate(events)
    )


def _ev(kind: str, output_index: int | None = None, **fields: Any) -> dict[str, Any]:
    """One Responses event; `kind` without its "response." prefix."""
    event: dict[str, Any] = {"type": "response." + kind, **fields}
    if output_index is not None:
        event["output_index"] = output_index
    return event


def _summary(kind: str, summary_index: int, **fields: Any) -> dict[str, Any]:
    return _ev(kind, 0, item_id="rs_1", summary_index=summary_index, **fields)


CREATED = _ev("created", response={"id": "resp_1", "model": "gpt-5", "created_at": 9, "output": []})
COMPLETED = _ev("completed", response={"id": "resp_1", "status": "completed"})
REASONING = {"id": "rs_1", "type": "reasoning", "summary": []}
CALL = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "namespace": "ns", "name": "f", "arguments": ""}
CUSTOM = {"id": "c", "type": "custom_tool_call", "call_id": "k", "name": "apply_patch", "input": ""}
MESSAGE = {"id": "m", "type": "message", "content": []}


def test_summary_parts_are_joined_and_the_signature_comes_with_the_done_item() -> None:
    usage = {"input_tokens": 5, "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 4}}
    wire = _frames(
        CREATED,
        _ev("output_item.added", 0, item=REASONING),
        _summary("reasoning_summary_part.added", 0),
        _summary("reasoning_summary_text.delta", 0, delta="**A**"),
        _summary("reasoning_summary_part.added", 1),
        _summary("reasoning_summary_text.delta", 1, delta="**B**"),
        _ev("output_item.done", 0, item={**REASONING, "encrypted_content": "gAAAA-x"}),
        _ev("output_item.added", 1, item=CALL),
        _ev("function_call_arguments.delta", 1, item_id="fc_1", delta='{"a":'),
        _ev("function_call_arguments.delta", 1, item_id="fc_1", delta="1}"),
        _ev("output_item.done", 1, item={**CALL, "arguments": '{"a":1}'}),
        _ev("completed", response={"id": "resp_1", "status": "completed", "usage": usage}),
    )
    events = decode([wire])
    assert events[0] == StreamStart("resp_1", "gpt-5", 9)
    assert collect(events) == ChatResponse(
        "resp_1",
        "gpt-5",
        (Reasoning("**A**\n\n**B**", "gAAAA-x"), ToolCall("call_1", "ns__f", '{"a":1}')),
        FinishReason.TOOL_CALLS,
        Usage(input=5, output=7, reasoning=4),
        created=9,
    )
    assert [e for e in events if isinstance(e, PartEnd)] == [PartEnd(0), PartEnd(1)]


def test_content_an_upstream_only_put_in_done_items_is_recovered() -> None:
    wire = _frames(
        CREATED,
        _ev("output_item.added", 0, item=MESSAGE),
        _ev("output_item.done", 0, item={**MESSAGE, "content": [{"type": "output_text", "text": "whole"}]}),
        _ev("output_item.added", 1, item=CUSTOM),
        _ev("output_item.done", 1, item={**CUSTOM, "input": 'a "b"'}),
        COMPLETED,
    )
    answer = collect(decode([wire]))
    assert answer.parts == (Text("whole"), ToolCall("k", "apply_patch", wrap_custom_input('a "b"')))


def test_a_stream_of_only_the_final_response_is_read_from_it() -> None:
    final = render_response(ChatResponse("resp_2", "m", (Text("all at once"),), FinishReason.STOP, Usage(1, 2)))
    events = decode([_frames(_ev("completed", response=final))])
    assert isinstance(events[0], StreamStart) and isinstance(events[-1], StreamEnd)
    assert collect(events).parts == (Text("all at once"),) and collect(events).usage == Usage(1, 2)


def test_hosted_tool_items_are_skipped_and_refusals_are_text() -> None:
    search = {"id": "ws", "type": "web_search_call"}
    wire = _frames(
        CREATED,
        _ev("output_item.added", 0, item=search),
        _ev("output_item.done", 0, item=search),
        _ev("output_item.added", 1, item=MESSAGE),
        _ev("content_part.added", 1, content_index=0, part={"type": "refusal", "refusal": ""}),
        _ev("refusal.delta", 1, content_index=0, delta="No."),
        _ev("output_item.done", 1, item={**MESSAGE, "content": [{"type": "refusal", "refusal": "No."}]}),
        COMPLETED,
    )
    answer = collect(decode([wire]))
    assert answer.parts == (Text("No."),) and answer.finish_reason is FinishReason.REFUSAL


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            _ev(
                "failed", response={"id": "r", "status": "failed", "error": {"code": "server_error", "message": "boom"}}
            ),
            StreamFailed("boom", "api_error"),
        ),
        (
            {"type": "error", "code": "rate_limit_exceeded", "message": "slow down", "param": None},
            StreamFailed("slow down", "rate_limit_error"),
        ),
    ],
)
def test_failures_inside_the_stream(event: dict[str, Any], expected: StreamFailed) -> None:
    events = decode([_frames(CREATED, event)])
    assert events[-1] == expected and isinstance(events[0], StreamStart)


def test_a_stream_that_stops_without_a_terminal_event_is_a_failure() -> None:
    events = decode([_frames(CREATED, _ev("output_text.delta", 0, content_index=0, delta="x"))])
    assert isinstance(events[-1], StreamFailed) and TextDelta(0, "x") in events


def test_garbage_is_an_order_error() -> None:
    with pytest.raises(StreamOrderError):
        ResponsesStreamDecoder().feed("response.created", b"{not json")


def test_decoded_events_keep_the_canonical_order_rules() -> None:
    answer = _answer(GOLDEN / "responses-codex-agent-turn")
    events = decode([encode(answer)])
    assert isinstance(events[0], StreamStart) and isinstance(events[-1], StreamEnd)
    started: set[int] = set()
    ended: set[int] = set()
    for e in events[1:-1]:
        if isinstance(e, ToolCallStart | TextDelta | ReasoningDelta) and e.index not in started:
            started.add(e.index)
        elif isinstance(e, ToolCallDelta | TextDelta | ReasoningDelta):
            assert e.index in started and e.index not in ended
        elif isinstance(e, PartEnd):
            ended.add(e.index)
    assert started == ended


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=12))
def test_splitting_the_bytes_anywhere_gives_the_same_events(cuts: list[int]) -> None:
    wire = encode(_answer(GOLDEN / "responses-codex-agent-turn"))
    points = sorted({c % (len(wire) + 1) for c in cuts})
    pieces = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    assert decode(pieces) == decode([wire])


def test_sdk_response_model_accepts_the_failed_response() -> None:
    encoder = ResponsesStreamEncoder()
    wire = encoder.feed(StreamStart("resp_f", "m")) + encoder.feed(StreamFailed("x"))
    Response.model_validate(payloads(wire)[-1]["response"])


_ids = st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=12)
_parts = st.lists(
    st.one_of(
        st.builds(Text, st.text(max_size=30)),
        st.builds(Reasoning, st.text(max_size=30), st.none() | st.text(min_size=1, max_size=20)),
        st.builds(ToolCall, _ids, st.text(min_size=1, max_size=12), st.text(max_size=30)),
    ),
    max_size=5,
)


@settings(max_examples=80, deadline=None)
@given(
    parts=_parts,
    finish=st.sampled_from([FinishReason.STOP, FinishReason.LENGTH, FinishReason.CONTENT_FILTER]),
    usage=st.none() | st.builds(Usage, *(st.integers(0, 10**6) for _ in range(5))),
    created=st.none() | st.integers(1, 2**31),
    response_id=_ids,
)
def test_any_answer_survives_render_parse_and_the_stream(
    parts: list[Any], finish: FinishReason, usage: Usage | None, created: int | None, response_id: str
) -> None:
    if finish is FinishReason.STOP and any(isinstance(p, ToolCall) for p in parts):
        finish = FinishReason.TOOL_CALLS  # a completed response with calls reads back as TOOL_CALLS
    answer = ChatResponse("resp_" + response_id, "m", tuple(parts), finish, usage, created)
    body = render_response(answer)
    Response.model_validate(body)
    assert parse_response(body) == answer
    assert collect(decode([encode(answer)])) == answer
