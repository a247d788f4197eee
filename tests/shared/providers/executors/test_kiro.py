"""The Kiro executor: OpenAI Chat in, CodeWhisperer's conversationState out, its binary event stream back as Chat
chunks or one completion, against the fake Kiro service on loopback (whose checks also vet the payloads built
offline)."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import replace
from typing import Any

import orjson
import pytest

from shared.adapters.upstream import HttpxUpstream
from shared.domain.config import ConfigSnapshot, Connection, GatewaySettings
from shared.domain.plan import plan_for
from shared.errors import NotSupported, UpstreamFailed, UpstreamRejected
from shared.providers.executors import UpstreamCall, executor_for
from shared.providers.executors.kiro import EMPTY_USER, KiroResponse
from shared.providers.spec import WireFormat
from shared.services.chat import ChatService, JsonReply, StreamReply
from shared.services.router import Router
from shared.services.routing_state import RoutingState
from tests.fakes.kiro_upstream import TARGET, KiroState, check_request, create_app, encode_message, event, split_odd
from tests.fakes.server import ServerThread
from tests.shared.providers.executors.helpers import linked as linked_account
from tests.shared.providers.executors.helpers import route

pytestmark = pytest.mark.anyio

TOKEN = "aoa-fake-kiro-access-token"
ARN = "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK"
MODEL = "kr/claude-sonnet-4.5"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def chat_body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": list(messages), **extra}


USER = {"role": "user", "content": "hi there"}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread[Any]]:
    with ServerThread(create_app(TOKEN)) as srv:
        yield srv


@pytest.fixture(scope="module")
def other() -> Iterator[ServerThread[Any]]:
    """A second Kiro endpoint (another region, say)."""
    with ServerThread(create_app(TOKEN)) as srv:
        yield srv


@pytest.fixture(scope="module")
def social() -> Iterator[ServerThread[Any]]:
    """Kiro as a Google or GitHub login sees it: the profile ARN is required."""
    with ServerThread(create_app(TOKEN, profile_arn=ARN)) as srv:
        yield srv


@pytest.fixture
def fake(server: ServerThread[Any]) -> KiroState:
    state: KiroState = server.app.state.fake
    state.clear_requests()
    state.clear_script()
    return state


def linked(
    base_url: str, *, meta: Mapping[str, Any] | None = None, token: str = TOKEN, conn_id: str = "c1"
) -> Connection:
    return linked_account("kiro", token, base_url, meta=meta, conn_id=conn_id)


def prepare(body: dict[str, Any], meta: Mapping[str, Any] | None = None) -> UpstreamCall:
    executor = executor_for("kiro")
    assert executor is not None and executor.wire_format is WireFormat.OPENAI
    headers = {"authorization": f"Bearer {TOKEN}", "accept": "application/json", "user-agent": "omniroute-edge/0.1"}
    call = UpstreamCall(
        "https://codewhisperer.example/chat/completions", headers, dict(body, model="claude-sonnet-4.5"), False
    )
    return executor.prepare(call, linked("https://codewhisperer.example", meta=meta))


async def read(reply: JsonReply | StreamReply) -> bytes:
    if isinstance(reply, JsonReply):
        return reply.body
    try:
        return b"".join([chunk async for chunk in reply.chunks])
    finally:
        await reply.aclose()


def chunks_of(raw: bytes) -> list[dict[str, Any]]:
    frames = [f.removeprefix(b"data: ") for f in raw.split(b"\n\n") if f.strip()]
    assert frames[-1] == b"[DONE]", frames[-1]
    return [orjson.loads(f) for f in frames[:-1]]


# ----- the request ---------------------------------------------------------------------------------------


def test_call_is_a_conversation_state_sent_as_a_stream() -> None:
    call = prepare(chat_body({"role": "system", "content": "Be brief."}, USER, max_tokens=100, temperature=0.2))
    assert call.url == "https://codewhisperer.example/generateAssistantResponse" and call.stream
    assert call.headers["x-amz-target"] == TARGET and call.headers["authorization"] == f"Bearer {TOKEN}"
    assert uuid.UUID(call.headers["amz-sdk-invocation-id"]).version == 4
    assert call.headers["accept"] == "application/vnd.amazon.eventstream"
    assert "KiroIDE-" in call.headers["user-agent"] and TOKEN not in call.headers["user-agent"]
    current = check_request(call.payload, None)
    assert current["content"] == "Be brief.\n\nhi there"  # the instructions folded into the first user message
    assert current["modelId"] == "claude-sonnet-4.5" and current["userInputMessageContext"] == {}
    state = call.payload["conversationState"]
    assert state["history"] == [] and uuid.UUID(state["conversationId"])
    assert call.payload["inferenceConfig"] == {"maxTokens": 100, "temperature": 0.2}
    assert "profileArn" not in call.payload


def test_tool_calls_and_results_become_tool_uses_and_tool_results() -> None:
    calls = [
        {"id": "tooluse_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}
    ]
    body = chat_body(
        {"role": "developer", "content": "Use tools."},
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "tooluse_1", "content": "sunny"},
        tools=[WEATHER_TOOL],
    )
    payload = prepare(body).payload
    current = check_request(payload, None)
    history = payload["conversationState"]["history"]
    assert history[0]["userInputMessage"]["content"] == "Use tools.\n\nweather?"
    assert "userInputMessageContext" not in history[0]["userInputMessage"]  # tools go on the current message only
    assert history[1]["assistantResponseMessage"]["toolUses"] == [
        {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Oslo"}}
    ]
    assert current["content"] == EMPTY_USER
    context = current["userInputMessageContext"]
    assert context["toolResults"] == [{"toolUseId": "tooluse_1", "content": [{"text": "sunny"}], "status": "success"}]
    spec = context["tools"][0]["toolSpecification"]
    assert spec["name"] == "get_weather" and spec["inputSchema"]["json"]["required"] == ["city"]


def test_odd_conversations_still_alternate() -> None:
    """An assistant turn first, two user messages in a row, a trailing assistant message (a prefill)."""
    body = chat_body(
        {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": "one"},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "Sure:"},
    )
    payload = prepare(body).payload
    current = check_request(payload, None)
    roles = [next(iter(turn)) for turn in payload["conversationState"]["history"]]
    assert roles == ["userInputMessage", "assistantResponseMessage", "userInputMessage", "assistantResponseMessage"]
    assert payload["conversationState"]["history"][2]["userInputMessage"]["content"] == "one\n\ntwo"
    assert current["content"] == EMPTY_USER


def test_profile_arn_only_for_social_logins() -> None:
    for method in ("google", "GitHub"):
        assert prepare(chat_body(USER), {"authMethod": method, "profileArn": ARN}).payload["profileArn"] == ARN
    for meta in ({"authMethod": "builder-id", "profileArn": ARN}, {"authMethod": "idc"}, {}):
        assert "profileArn" not in prepare(chat_body(USER), meta).payload


def test_images_go_inline_or_not_at_all() -> None:
    data_url = {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}
    body = chat_body({"role": "user", "content": [{"type": "text", "text": "what is it?"}, data_url]})
    current = check_request(prepare(body).payload, None)
    assert current["images"] == [{"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}]
    by_url = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(NotSupported, match="inline"):
        prepare(chat_body({"role": "user", "content": [by_url]}))


# ----- over HTTP ----------------------------------------------------------------------------------------


async def test_json_client_gets_one_completion_without_usage(
    chat: ChatService, server: ServerThread[Any], fake: KiroState
) -> None:
    reply = await chat.complete(chat_body(USER), route(MODEL, linked(server.base_url)), stream=False)
    assert isinstance(reply, JsonReply)
    doc = orjson.loads(reply.body)
    assert doc["object"] == "chat.completion" and doc["model"] == "claude-sonnet-4.5"
    assert doc["choices"][0]["message"]["content"] == "Hello from fake-kiro: hi there"
    assert doc["choices"][0]["finish_reason"] == "stop" and "usage" not in doc
    assert reply.outcome.usage is None and reply.outcome.output_chars == len("Hello from fake-kiro: hi there")
    (sent,) = fake.requests
    assert sent["path"] == "/generateAssistantResponse" and sent["headers"]["x-amz-target"] == TARGET


async def test_stream_client_gets_chat_chunks(chat: ChatService, server: ServerThread[Any], fake: KiroState) -> None:
    body = chat_body(USER, stream=True, stream_options={"include_usage": True})
    reply = await chat.complete(body, route(MODEL, linked(server.base_url)), stream=True)
    chunks = chunks_of(await read(reply))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello from fake-kiro: hi there"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert not any(c.get("usage") for c in chunks)  # no counts from the service: the gateway estimates them
    assert reply.outcome.usage is None and reply.outcome.error is None and reply.outcome.output_chars > 0


async def test_streamed_tool_call_and_its_result(chat: ChatService, server: ServerThread[Any], fake: KiroState) -> None:
    ask = chat_body(USER, tools=[WEATHER_TOOL], stream=True)
    chunks = chunks_of(await read(await chat.complete(ask, route(MODEL, linked(server.base_url)), stream=True)))
    pieces = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if c["choices"][0]["delta"].get("tool_calls")]
    assert len(pieces) == 4  # the call's start, then the input in the three pieces the service sent
    call_id, name = pieces[0]["id"], pieces[0]["function"]["name"]
    arguments = "".join(p["function"]["arguments"] for p in pieces)
    assert name == "get_weather" and orjson.loads(arguments) == {"city": "test"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    follow_up = chat_body(
        USER,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ]},
        {"role": "tool", "tool_call_id": call_id, "content": "sunny"},
        tools=[WEATHER_TOOL],
    )  # fmt: skip
    reply = await chat.complete(follow_up, route(MODEL, linked(server.base_url)), stream=False)
    assert orjson.loads(await read(reply))["choices"][0]["message"]["content"] == "Tool said: sunny"
    assert fake.requests[1]["body"]["conversationState"]["history"][1]["assistantResponseMessage"]["toolUses"]


async def test_anthropic_client_is_translated_from_the_chunks(chat: ChatService, server: ServerThread[Any]) -> None:
    body = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi there"}], "stream": True}
    reply = await chat.complete(body, route(MODEL, linked(server.base_url)), stream=True, client=WireFormat.ANTHROPIC)
    raw = (await read(reply)).decode()
    events = [line.removeprefix("event: ") for line in raw.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    deltas = [orjson.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: ")]
    text = "".join(d["delta"].get("text", "") for d in deltas if d["type"] == "content_block_delta")
    assert text == "Hello from fake-kiro: hi there"


async def test_exception_event_fails_the_call(chat: ChatService, server: ServerThread[Any], fake: KiroState) -> None:
    fake.script.append("exception-first")
    with pytest.raises(UpstreamFailed, match="ThrottlingException: Too many requests") as caught:
        await chat.complete(chat_body(USER), route(MODEL, linked(server.base_url)), stream=False)
    assert caught.value.provider == "kiro"
    fake.script.append("exception-later")
    reply = await chat.complete(chat_body(USER, stream=True), route(MODEL, linked(server.base_url)), stream=True)
    frames = [orjson.loads(f.removeprefix(b"data: ")) for f in (await read(reply)).split(b"\n\n") if f.strip()]
    assert frames[-1]["error"]["message"].startswith("Kiro reported ThrottlingException")
    assert reply.outcome.error is not None and "[DONE]" not in str(frames)


@pytest.mark.parametrize(("script", "message"), [("corrupt", "corrupt"), ("cut", "middle of a message")])
async def test_broken_event_streams_fail(
    chat: ChatService, server: ServerThread[Any], fake: KiroState, script: str, message: str
) -> None:
    fake.script.append(script)
    with pytest.raises(UpstreamFailed, match=message):
        await chat.complete(chat_body(USER), route(MODEL, linked(server.base_url)), stream=False)


async def test_a_throttled_account_gives_way_to_the_next(
    upstream: HttpxUpstream, server: ServerThread[Any], fake: KiroState
) -> None:
    """A ThrottlingException is the account's rate limit (HTTP 429 outside a stream): the router cools the account
    down and the next one answers; the client never sees the exception."""
    first, second = linked(server.base_url, conn_id="c1"), replace(linked(server.base_url, conn_id="c2"), priority=1)
    snap = ConfigSnapshot.build(connections=[first, second])
    state = RoutingState(None, instance_id="t")
    router = Router(ChatService(upstream), state, rng=random.Random(0))
    fake.script.append("exception-first")
    reply = await router.complete(
        plan_for(MODEL, snap), chat_body(USER), stream=False, client=WireFormat.OPENAI, settings=GatewaySettings()
    )
    assert orjson.loads(await read(reply))["choices"][0]["message"]["content"] == "Hello from fake-kiro: hi there"
    assert reply.headers["x-omniroute-attempts"] == "2" and reply.outcome.connection_id == "c2"
    cooling = state.cooldown("c1", None, state.now())
    assert cooling is not None and cooling.reason == "rate_limited"


async def test_a_throttled_stream_cools_the_account_down_like_a_json_answer(
    upstream: HttpxUpstream, server: ServerThread[Any], fake: KiroState
) -> None:
    """The throttling arrives after the stream's 200, before its first byte: it still counts as the account's
    429 (not as a cut stream), so the account cools down and its sibling on the same endpoint answers."""
    first, second = linked(server.base_url, conn_id="c1"), replace(linked(server.base_url, conn_id="c2"), priority=1)
    state = RoutingState(None, instance_id="t")
    router = Router(ChatService(upstream), state, rng=random.Random(0))
    fake.script.append("exception-first")
    reply = await router.complete(
        plan_for(MODEL, ConfigSnapshot.build(connections=[first, second])), chat_body(USER, stream=True),
        stream=True, client=WireFormat.OPENAI, settings=GatewaySettings(),
    )  # fmt: skip
    chunks = chunks_of(await read(reply))
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello from fake-kiro: hi there"
    assert reply.outcome.connection_id == "c2"
    cooling = state.cooldown("c1", None, state.now())
    assert cooling is not None and cooling.reason == "rate_limited"


async def test_an_exception_before_the_first_byte_moves_a_stream_on(
    upstream: HttpxUpstream, server: ServerThread[Any], other: ServerThread[Any], fake: KiroState
) -> None:
    """In a stream the failure comes after the 200: the router takes it as a cut endpoint and goes on to an account
    on another endpoint; nothing of the failed attempt reaches the client."""
    here, there = linked(server.base_url, conn_id="c1"), replace(linked(other.base_url, conn_id="c2"), priority=1)
    router = Router(ChatService(upstream), RoutingState(None, instance_id="t"), rng=random.Random(0))
    fake.script.append("exception-first:InternalServerException")
    reply = await router.complete(
        plan_for(MODEL, ConfigSnapshot.build(connections=[here, there])), chat_body(USER, stream=True), stream=True,
        client=WireFormat.OPENAI, settings=GatewaySettings(),
    )  # fmt: skip
    chunks = chunks_of(await read(reply))
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello from fake-kiro: hi there"
    assert reply.outcome.connection_id == "c2" and reply.headers["x-omniroute-attempts"] == "2"
    assert b"InternalServerException" not in b"".join(orjson.dumps(c) for c in chunks)


async def test_social_login_sends_the_profile_arn(chat: ChatService, social: ServerThread[Any]) -> None:
    conn = linked(social.base_url, meta={"authMethod": "google", "profileArn": ARN})
    reply = await chat.complete(chat_body(USER), route(MODEL, conn), stream=False)
    assert orjson.loads(await read(reply))["choices"][0]["message"]["content"].startswith("Hello from fake-kiro")
    builder = linked(social.base_url, meta={"authMethod": "builder-id", "profileArn": ARN})
    with pytest.raises(UpstreamRejected) as caught:  # the fake, like the service, wants it for social logins
        await chat.complete(chat_body(USER), route(MODEL, builder), stream=False)
    assert caught.value.upstream_status == 403


async def test_wrong_token_is_refused(chat: ChatService, server: ServerThread[Any]) -> None:
    with pytest.raises(UpstreamRejected) as caught:
        await chat.complete(chat_body(USER), route(MODEL, linked(server.base_url, token="aoa-stale")), stream=False)
    assert caught.value.upstream_status == 403 and "bearer token" in caught.value.message


# ----- token counts, when an event has them ---------------------------------------------------------------


class _Recorded:
    """A finished upstream answer replayed from bytes (the decoder's input), in odd-sized pieces."""

    status = 200
    headers: Mapping[str, str] = {"content-type": "application/vnd.amazon.eventstream"}

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for piece in split_odd(self._data):
            yield piece

    async def aread(self) -> bytes:
        return self._data

    async def aclose(self) -> None:
        return None


async def test_token_counts_in_an_event_become_a_usage_chunk() -> None:
    data = event("assistantResponseEvent", {"content": "Hi"}) + event(
        "meteringEvent", {"unit": "credit", "usage": 0.5, "tokenUsage": {"inputTokens": 12, "outputTokens": 3}}
    )
    chunks = chunks_of(
        b"".join([c async for c in KiroResponse(_Recorded(data), "m", client_stream=True).aiter_bytes()])
    )
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 12
    assert chunks[-1]["id"] == chunks[0]["id"]
    doc = orjson.loads(await KiroResponse(_Recorded(data), "m", client_stream=False).aread())
    assert doc["usage"]["completion_tokens"] == 3 and doc["choices"][0]["message"]["content"] == "Hi"


async def test_an_answer_with_nothing_in_it_fails() -> None:
    data = event("meteringEvent", {"unit": "credit", "usage": 0.5})
    with pytest.raises(UpstreamFailed, match="without any text or tool call"):
        await KiroResponse(_Recorded(data), "m", client_stream=False).aread()


async def test_an_error_message_fails_with_its_code_and_text() -> None:
    headers = {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "the model crashed"}
    data = event("assistantResponseEvent", {"content": "Hi"}) + encode_message(headers, b"")
    with pytest.raises(UpstreamFailed, match="Kiro reported InternalFailure: the model crashed") as caught:
        await KiroResponse(_Recorded(data), "m", client_stream=False).aread()
    assert caught.value.upstream_status is None  # not a known AWS exception: a failure of the service
