"""Cloud Code executors (Antigravity, Gemini CLI): the envelope out, plain Gemini back, and the outdated-client
refusal a 200 carries failing over, against the fake Cloud Code service on loopback."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import orjson
import pytest

from shared.adapters.upstream import HttpxUpstream
from shared.domain.combos import Combo, ComboTarget
from shared.domain.config import ConfigSnapshot, GatewaySettings
from shared.domain.plan import plan_for
from shared.errors import UpstreamFailed, UpstreamRejected
from shared.providers.executors import UpstreamCall, executor_for
from shared.providers.executors.cloud_code import session_id
from shared.providers.spec import WireFormat
from shared.services.chat import ChatService, JsonReply, StreamReply
from shared.services.router import Router
from shared.services.routing_state import RoutingState
from tests.fakes.cloud_code_upstream import CloudCodeState, create_app
from tests.fakes.server import ServerThread
from tests.shared.providers.executors.helpers import linked, route

pytestmark = pytest.mark.anyio

TOKEN = "ya29.fake-access-token"
PROJECT = "rising-fact-p41fc"
META = {"projectId": PROJECT, "email": "me@example.com"}
HELLO = {"contents": [{"role": "user", "parts": [{"text": "hi there"}]}]}
CHAT = {"model": "ag/claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi there"}]}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


async def json_of(reply: JsonReply | StreamReply) -> bytes:
    assert isinstance(reply, JsonReply), reply
    return reply.body


async def streamed(reply: JsonReply | StreamReply) -> bytes:
    assert isinstance(reply, StreamReply), reply
    try:
        return b"".join([chunk async for chunk in reply.chunks])
    finally:
        await reply.aclose()


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread[Any]]:
    with ServerThread(create_app(TOKEN, PROJECT)) as srv:
        yield srv


@pytest.fixture
def fake(server: ServerThread[Any]) -> CloudCodeState:
    state: CloudCodeState = server.app.state.fake
    state.clear_requests()
    state.clear_script()
    return state


def base(server: ServerThread[Any]) -> str:
    return server.base_url + "/v1internal"


def gemini_call(model: str, *, stream: bool) -> UpstreamCall:
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    url = f"https://daily-cloudcode-pa.googleapis.com/v1internal/models/{model}:{action}"
    headers = {"authorization": f"Bearer {TOKEN}", "user-agent": "omniroute-edge/0.1", "accept": "text/event-stream"}
    return UpstreamCall(url, headers, dict(HELLO), stream)


def openai_text(raw: bytes, *, stream: bool) -> str:
    """The answer text of an OpenAI Chat reply, streamed or not."""
    if not stream:
        return str(orjson.loads(raw)["choices"][0]["message"]["content"])
    frames = [f.removeprefix(b"data: ") for f in raw.split(b"\n\n") if f.strip()]
    assert frames[-1] == b"[DONE]", frames[-1]
    chunks = [orjson.loads(f) for f in frames[:-1]]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


# ----- prepare ------------------------------------------------------------------------------------------


def test_antigravity_call_is_the_v1internal_envelope() -> None:
    executor = executor_for("antigravity")
    assert executor is not None and executor.wire_format is WireFormat.GEMINI
    conn = linked("antigravity", TOKEN, "https://x", meta=META)
    call = executor.prepare(gemini_call("claude-sonnet-4-5", stream=True), conn)
    assert call.url == "https://daily-cloudcode-pa.googleapis.com/v1internal:streamGenerateContent?alt=sse"
    body = call.payload
    assert body["model"] == "claude-sonnet-4-5" and body["project"] == PROJECT
    assert body["userAgent"] == "antigravity" and body["requestType"] == "agent"
    assert body["requestId"].startswith("agent-") and len(body["requestId"]) == len("agent-") + 36
    assert body["request"]["contents"] == HELLO["contents"] and body["request"]["sessionId"]
    ua = call.headers["user-agent"]
    assert ua.startswith("antigravity/") and ua.endswith(" darwin/arm64")
    version = tuple(int(n) for n in ua.split()[0].split("/")[1].split("."))
    assert version >= (2, 9, 0)
    assert call.headers["authorization"] == f"Bearer {TOKEN}" and call.stream
    plain = executor.prepare(gemini_call("gemini-3-flash", stream=False), conn)
    assert plain.url.endswith("/v1internal:generateContent") and not plain.stream


def test_gemini_cli_row_has_its_own_envelope_and_user_agent() -> None:
    executor = executor_for("gemini-cli")
    assert executor is not None
    call = executor.prepare(gemini_call("gemini-2.5-pro", stream=False), linked("gemini-cli", TOKEN, "x", meta=META))
    body = call.payload
    assert "userAgent" not in body and "requestType" not in body and "requestId" not in body
    assert body["user_prompt_id"] and body["request"]["session_id"] and body["project"] == PROJECT
    assert call.headers["user-agent"].startswith("GeminiCLI/") and "/gemini-2.5-pro (" in call.headers["user-agent"]
    assert call.headers["x-goog-api-client"].startswith("google-genai-sdk/")


def test_session_is_one_per_conversation() -> None:
    later = {"contents": [*HELLO["contents"], {"role": "model", "parts": [{"text": "hello"}]}]}
    other = {"contents": [{"role": "user", "parts": [{"text": "something else"}]}]}
    assert session_id(HELLO) == session_id(later) != session_id(other)


def test_no_project_is_sent_when_the_account_has_none() -> None:
    executor = executor_for("antigravity")
    assert executor is not None
    call = executor.prepare(gemini_call("gemini-3-flash", stream=False), linked("antigravity", TOKEN, "x"))
    assert "project" not in call.payload


# ----- over HTTP ----------------------------------------------------------------------------------------


async def test_gemini_client_gets_plain_gemini_back(
    chat: ChatService, server: ServerThread[Any], fake: CloudCodeState
) -> None:
    conn = linked("antigravity", TOKEN, base(server), meta=META)
    reply = await chat.complete(HELLO, route("ag/claude-sonnet-4-5", conn), stream=False, client=WireFormat.GEMINI)
    doc = orjson.loads(await json_of(reply))
    assert "response" not in doc and "traceId" not in doc
    assert doc["candidates"][0]["content"]["parts"][0]["text"] == "Hello from fake-gemini: hi there"
    assert reply.outcome.usage is not None and reply.outcome.usage.input > 0
    (sent,) = fake.requests
    assert sent["path"] == "/v1internal:generateContent" and sent["body"]["project"] == PROJECT


async def test_openai_stream_is_translated_from_unwrapped_frames(
    chat: ChatService, server: ServerThread[Any], fake: CloudCodeState
) -> None:
    conn = linked("antigravity", TOKEN, base(server), meta=META)
    reply = await chat.complete(CHAT, route("ag/claude-sonnet-4-5", conn), stream=True, client=WireFormat.OPENAI)
    frames = [f.removeprefix(b"data: ") for f in (await streamed(reply)).split(b"\n\n") if f]
    assert frames[-1] == b"[DONE]"
    chunks = [orjson.loads(f) for f in frames[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello from fake-gemini: hi there"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert reply.outcome.usage is not None and reply.outcome.usage.output > 0 and reply.outcome.error is None
    assert fake.requests[0]["query"] == "alt=sse"


async def test_tool_call_round_trip(chat: ChatService, server: ServerThread[Any], fake: CloudCodeState) -> None:
    conn = linked("antigravity", TOKEN, base(server), meta=META)
    ask = {**CHAT, "tools": [WEATHER_TOOL]}
    reply = await chat.complete(ask, route("ag/claude-sonnet-4-5", conn), stream=False, client=WireFormat.OPENAI)
    message = orjson.loads(await json_of(reply))["choices"][0]["message"]
    (call,) = message["tool_calls"]
    assert call["function"]["name"] == "get_weather" and "city" in orjson.loads(call["function"]["arguments"])
    follow_up = {
        **ask,
        "messages": [
            *CHAT["messages"],
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
        ],
    }
    reply = await chat.complete(follow_up, route("ag/claude-sonnet-4-5", conn), stream=False, client=WireFormat.OPENAI)
    assert orjson.loads(await json_of(reply))["choices"][0]["message"]["content"] == "Tool said: sunny"
    declared = fake.requests[0]["body"]["request"]["tools"][0]["functionDeclarations"][0]
    assert declared["name"] == "get_weather"


async def test_outdated_client_refusal_is_a_failure_not_an_answer(
    chat: ChatService, server: ServerThread[Any], fake: CloudCodeState
) -> None:
    old = linked("antigravity", TOKEN, base(server), meta={**META, "clientVersion": "1.15.8"})
    with pytest.raises(UpstreamFailed, match="no longer supported") as caught:
        await chat.complete(HELLO, route("ag/gemini-3-flash", old), stream=False, client=WireFormat.GEMINI)
    assert caught.value.provider == "antigravity"
    reply = await chat.complete(CHAT, route("ag/gemini-3-flash", old), stream=True, client=WireFormat.OPENAI)
    body = await streamed(reply)
    frames = [orjson.loads(f.removeprefix(b"data: ")) for f in body.split(b"\n\n") if f and f != b"data: [DONE]"]
    assert all("error" in f for f in frames), frames  # nothing of the refusal reached the client as an answer
    assert reply.outcome.error is not None and "no longer supported" in reply.outcome.error
    assert fake.requests[0]["headers"]["user-agent"].startswith("antigravity/1.15.8 ")


@pytest.mark.parametrize("stream", [False, True])
async def test_router_moves_on_from_a_refused_client(
    upstream: HttpxUpstream, server: ServerThread[Any], fake: CloudCodeState, stream: bool
) -> None:
    """The refusal is about the client, not one account: the router goes on to the combo's next target."""
    antigravity = linked("antigravity", TOKEN, base(server), meta=META, conn_id="conn_ag")
    gemini_cli = linked("gemini-cli", TOKEN, base(server), meta=META, conn_id="conn_gc")
    team = Combo("team", (ComboTarget("ag/claude-sonnet-4-5"), ComboTarget("gc/gemini-2.5-pro")), "priority")
    snap = ConfigSnapshot.build(connections=[antigravity, gemini_cli], combos=[team])
    router = Router(ChatService(upstream), RoutingState(None, instance_id="t"), rng=random.Random(0))
    fake.script.append("outdated")  # the first call is refused
    reply = await router.complete(
        plan_for("team", snap), dict(CHAT, stream=stream), stream=stream, client=WireFormat.OPENAI,
        settings=GatewaySettings(),
    )  # fmt: skip
    raw = await streamed(reply) if stream else await json_of(reply)
    assert openai_text(raw, stream=stream) == "Hello from fake-gemini: hi there"
    assert b"no longer supported" not in raw
    assert reply.headers["x-omniroute-attempts"] == "2" and reply.outcome.connection_id == "conn_gc"
    assert [r["body"]["model"] for r in fake.requests] == ["claude-sonnet-4-5", "gemini-2.5-pro"]


async def test_200_without_a_response_object_fails(
    chat: ChatService, server: ServerThread[Any], fake: CloudCodeState
) -> None:
    conn = linked("antigravity", TOKEN, base(server), meta=META)
    fake.script.append("no-response")
    with pytest.raises(UpstreamFailed, match="without a response object"):
        await chat.complete(HELLO, route("ag/gemini-3-flash", conn), stream=False, client=WireFormat.GEMINI)


async def test_gemini_cli_row_over_http(chat: ChatService, server: ServerThread[Any], fake: CloudCodeState) -> None:
    conn = linked("gemini-cli", TOKEN, base(server), meta=META)
    reply = await chat.complete(HELLO, route("gc/gemini-2.5-pro", conn), stream=True, client=WireFormat.GEMINI)
    body = await streamed(reply)
    frames = [orjson.loads(f.removeprefix(b"data: ")) for f in body.split(b"\r\n\r\n") if f.strip()]
    assert all("response" not in f and "candidates" in f for f in frames)
    text = "".join(p.get("text", "") for f in frames for p in f["candidates"][0]["content"].get("parts", []))
    assert text == "Hello from fake-gemini: hi there"
    assert "user_prompt_id" in fake.requests[0]["body"]


async def test_wrong_token_is_refused_by_the_service(
    chat: ChatService, server: ServerThread[Any], fake: CloudCodeState
) -> None:
    conn = linked("antigravity", "ya29.stale", base(server), meta=META)
    with pytest.raises(UpstreamRejected) as caught:
        await chat.complete(HELLO, route("ag/gemini-3-flash", conn), stream=False, client=WireFormat.GEMINI)
    assert caught.value.upstream_status == 401


# ----- the refusal gate, frame by frame ---------------------------------------------------------------------


class _Paced:
    """An upstream stream handed over one frame at a time; `sent` says how far the reader has pulled it."""

    status = 200
    headers: Mapping[str, str] = {"content-type": "text/event-stream"}

    def __init__(self, *texts: str, thought_first: bool = False) -> None:
        frames: list[dict[str, Any]] = []
        if thought_first:
            frames.append({"candidates": [{"content": {"parts": [{"text": "Thinking.", "thought": True}]}}]})
        frames += [{"candidates": [{"content": {"role": "model", "parts": [{"text": t}]}}]} for t in texts]
        frames[-1]["candidates"][0]["finishReason"] = "STOP"
        self.frames = [b"data: " + orjson.dumps({"response": f, "traceId": "t"}) + b"\r\n\r\n" for f in frames]
        self.sent = 0

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for frame in self.frames:
            self.sent += 1
            yield frame

    async def aread(self) -> bytes:
        return b"".join(self.frames)

    async def aclose(self) -> None:
        return None


def _adapt(upstream: _Paced) -> Any:
    executor = executor_for("antigravity")
    assert executor is not None
    call = UpstreamCall("https://x/v1internal:streamGenerateContent?alt=sse", {}, {}, True)
    return executor.adapt(upstream, call, client_stream=True)


async def test_an_ordinary_answer_is_not_held_back() -> None:
    upstream = _Paced("Hello ", "there")
    stream = _adapt(upstream).aiter_bytes()
    first = await stream.__anext__()
    assert upstream.sent == 1 and b'"Hello "' in first and b"traceId" not in first
    assert b'"there"' in await stream.__anext__()
    await stream.aclose()


async def test_text_that_only_starts_like_the_refusal_is_released() -> None:
    upstream = _Paced("This version ", "of the code ", "is fine.")
    stream = _adapt(upstream).aiter_bytes()
    first = await stream.__anext__()  # held while it could still be the refusal, released once it is not
    assert upstream.sent == 2 and first.count(b"data: ") == 2
    await stream.aclose()
    thinking = _Paced("This version ", "of Antigravity", thought_first=True)
    stream = _adapt(thinking).aiter_bytes()
    first = await stream.__anext__()
    assert thinking.sent == 1 and b'"thought":true' in first  # a thought first: a real answer, nothing held
    await stream.aclose()


async def test_the_refusal_split_over_frames_fails_before_any_byte() -> None:
    upstream = _Paced("This version of ", "Antigravity is no ", "longer supported. Please upgrade.")
    with pytest.raises(UpstreamFailed, match="refused this client's version"):
        await _adapt(upstream).aiter_bytes().__anext__()
