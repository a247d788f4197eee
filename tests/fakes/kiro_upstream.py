"""A fake Kiro upstream: AWS CodeWhisperer's `generateAssistantResponse`, answered as a binary AWS event stream.

    POST /generateAssistantResponse

What it checks (project notes `oauth-providers.md` §9): `Authorization: Bearer <access token>` (else 403
AccessDeniedException), `x-amz-target: AmazonCodeWhispererStreamingService.GenerateAssistantResponse`, an
`amz-sdk-invocation-id` uuid, and the `conversationState` shape: `chatTriggerType: "MANUAL"`, a
`conversationId`, `currentMessage.userInputMessage {content (not empty), modelId (a known model), origin:
"AI_EDITOR", userInputMessageContext}`, a history that starts with a user turn and alternates, each history user
turn with content, modelId and origin, and tool results only for tool uses of the assistant turn before. A
`profileArn` is required when the fake is built with one (social logins) and refused otherwise (Builder ID).
Refusals are 400 `{"__type": "...#ValidationException", "message": "Improperly formed request."}` as the real
service words them, with the reason the fake found.

The deterministic model: with tools declared and no tool results in the current message, it calls the first
tool (arguments from its schema, `openai_upstream.example_for_schema`), its input sent in three pieces over
`toolUseEvent`s, the last with `stop: true`; otherwise it answers "Hello from fake-kiro: <current content>" (or
"Tool said: <result texts>") word by word over `assistantResponseEvent`s. Then a `meteringEvent` (credits) and a
`contextUsageEvent`. The encoded stream is sent in chunks of odd sizes (1, 2, 3, 5, 7, 11, 13 bytes, cycling),
so messages and even preludes are split across network reads.

Scripted replies (`state.script`, one per request):
    "exception-first"   a ThrottlingException message before any event ("exception-first:<Type>": another type)
    "exception-later"   one text event, then the exception (":<Type>" likewise)
    "corrupt"           the first message's CRC is wrong
    "cut"               the stream stops in the middle of its second message
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import cycle
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.openai_upstream import example_for_schema

TARGET = "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"
MODELS = ("claude-sonnet-4.5", "claude-haiku-4.5")
REPLY_PREFIX = "Hello from fake-kiro: "
TOOL_REPLY_PREFIX = "Tool said: "
CHUNK_SIZES = (1, 2, 3, 5, 7, 11, 13)
SCRIPTS = ("exception-first", "exception-later", "corrupt", "cut")


# ----- the event-stream encoder (the decoder under test is shared.providers.executors.aws_eventstream) ------

# An explicit (type, value) pair picks a header type a Python value does not imply (byte, short, long, timestamp).
Header = bool | int | bytes | str | uuid.UUID | tuple[int, int]
_INT_TYPES = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}


def encode_header(name: str, value: Header) -> bytes:
    raw = name.encode()
    out = struct.pack(">B", len(raw)) + raw
    if isinstance(value, bool):
        return out + struct.pack(">B", 0 if value else 1)
    if isinstance(value, tuple):
        kind, number = value
        return out + struct.pack(">B", kind) + struct.pack(_INT_TYPES[kind], number)
    if isinstance(value, int):
        return out + struct.pack(">Bi", 4, value)
    if isinstance(value, uuid.UUID):
        return out + struct.pack(">B", 9) + value.bytes
    data, kind = (value.encode(), 7) if isinstance(value, str) else (value, 6)
    return out + struct.pack(">BH", kind, len(data)) + data


def encode_message(headers: Mapping[str, Header], payload: bytes) -> bytes:
    """One event-stream message: prelude, its CRC, headers, payload, the message CRC."""
    header_bytes = b"".join(encode_header(k, v) for k, v in headers.items())
    total = 12 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack(">II", total, len(header_bytes))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + header_bytes + payload
    return head + struct.pack(">I", zlib.crc32(head))


def event(event_type: str, payload: Mapping[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, orjson.dumps(payload))


def exception(kind: str, message: str) -> bytes:
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return encode_message(headers, orjson.dumps({"message": message}))


def split_odd(data: bytes) -> list[bytes]:
    sizes = cycle(CHUNK_SIZES)
    pieces: list[bytes] = []
    pos = 0
    while pos < len(data):
        size = next(sizes)
        pieces.append(data[pos : pos + size])
        pos += size
    return pieces


# ----- the service -------------------------------------------------------------------------------------


@dataclass
class KiroState:
    access_token: str
    profile_arn: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    script: deque[str] = field(default_factory=deque)

    def clear_requests(self) -> None:
        self.requests.clear()

    def clear_script(self) -> None:
        self.script.clear()


class Refused(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message

    def response(self) -> Response:
        body = {"__type": f"com.amazon.aws.codewhisperer#{self.kind}", "message": self.message}
        return Response(orjson.dumps(body), status_code=self.status, media_type="application/json")


def _malformed(reason: str) -> Refused:
    return Refused(400, "ValidationException", f"Improperly formed request. ({reason})")


def _user_message(msg: Any, where: str) -> dict[str, Any]:
    if not isinstance(msg, dict):
        raise _malformed(f"{where} is not an object")
    if not isinstance(msg.get("content"), str) or not msg["content"].strip():
        raise _malformed(f"{where}.content is empty")
    if msg.get("modelId") not in MODELS:
        raise _malformed(f"{where}.modelId {msg.get('modelId')!r} is not a model")
    if msg.get("origin") != "AI_EDITOR":
        raise _malformed(f"{where}.origin must be AI_EDITOR")
    return msg


def _results_of(msg: Mapping[str, Any]) -> list[dict[str, Any]]:
    context = msg.get("userInputMessageContext") or {}
    return list(context.get("toolResults") or [])


def check_request(body: Any, profile_arn: str | None) -> dict[str, Any]:
    """The conversationState, checked as the service would; returns the current userInputMessage."""
    if not isinstance(body, dict) or not isinstance(body.get("conversationState"), dict):
        raise _malformed("no conversationState")
    if profile_arn is not None and body.get("profileArn") != profile_arn:
        raise Refused(403, "AccessDeniedException", "User is not authorized: profileArn is missing or wrong.")
    if profile_arn is None and "profileArn" in body:
        raise _malformed("profileArn is not accepted for this login")
    state = body["conversationState"]
    if state.get("chatTriggerType") != "MANUAL":
        raise _malformed("chatTriggerType must be MANUAL")
    if not isinstance(state.get("conversationId"), str) or not state["conversationId"]:
        raise _malformed("conversationId is missing")
    current = state.get("currentMessage")
    if not isinstance(current, dict):
        raise _malformed("currentMessage is missing")
    message = _user_message(current.get("userInputMessage"), "currentMessage.userInputMessage")
    if not isinstance(message.get("userInputMessageContext"), dict):
        raise _malformed("currentMessage.userInputMessage.userInputMessageContext is missing")
    history = state.get("history", [])
    if not isinstance(history, list):
        raise _malformed("history is not a list")
    uses: set[str] = set()
    expect_user = True
    for i, turn in enumerate(history):
        key = "userInputMessage" if expect_user else "assistantResponseMessage"
        if not isinstance(turn, dict) or set(turn) != {key}:
            raise _malformed(f"history[{i}] must be a {key}")
        if expect_user:
            msg = _user_message(turn[key], f"history[{i}].userInputMessage")
            if {r.get("toolUseId") for r in _results_of(msg)} - uses:
                raise _malformed(f"history[{i}] answers a tool use the assistant did not make")
            if (msg.get("userInputMessageContext") or {}).get("tools"):
                raise _malformed(f"history[{i}] declares tools; only the current message may")
        else:
            reply = turn[key]
            if not isinstance(reply, dict) or not isinstance(reply.get("content"), str):
                raise _malformed(f"history[{i}].assistantResponseMessage.content is missing")
            uses = {u["toolUseId"] for u in reply.get("toolUses") or []}
        expect_user = not expect_user
    if not expect_user:
        raise _malformed("history must end with an assistant turn (the current message is the next user turn)")
    if {r.get("toolUseId") for r in _results_of(message)} - uses:
        raise _malformed("the current message answers a tool use the assistant did not make")
    for tool in message["userInputMessageContext"].get("tools") or []:
        spec = tool.get("toolSpecification") if isinstance(tool, dict) else None
        if not isinstance(spec, dict) or not spec.get("name") or not spec.get("description"):
            raise _malformed("a tool needs a name and a description")
        if not isinstance((spec.get("inputSchema") or {}).get("json"), dict):
            raise _malformed(f"tool {spec['name']} has no inputSchema.json")
    return message


def answer(message: Mapping[str, Any]) -> list[bytes]:
    """The deterministic reply's events (before any scripted fault)."""
    context = message.get("userInputMessageContext") or {}
    tools = context.get("tools") or []
    results = _results_of(message)
    events: list[bytes] = []
    if tools and not results:
        spec = tools[0]["toolSpecification"]
        arguments = orjson.dumps(example_for_schema(spec["inputSchema"]["json"])).decode()
        call_id = "tooluse_" + uuid.uuid4().hex[:20]
        third = max(1, len(arguments) // 3)
        pieces = [arguments[:third], arguments[third : 2 * third], arguments[2 * third :]]
        for i, piece in enumerate(pieces):
            payload: dict[str, Any] = {"name": spec["name"], "toolUseId": call_id, "input": piece}
            if i == len(pieces) - 1:
                payload["stop"] = True
            events.append(event("toolUseEvent", payload))
    else:
        if results:
            texts = [" ".join(c.get("text", "") for c in r.get("content") or []) for r in results]
            text = TOOL_REPLY_PREFIX + " | ".join(texts)
        else:
            text = REPLY_PREFIX + message["content"].rsplit("\n\n", 1)[-1]
        words = text.split(" ")
        for i, word in enumerate(words):
            events.append(event("assistantResponseEvent", {"content": word + (" " if i < len(words) - 1 else "")}))
    events.append(event("meteringEvent", {"unit": "credit", "unitPlural": "credits", "usage": 0.0123}))
    events.append(event("contextUsageEvent", {"contextUsagePercentage": 1.25}))
    return events


def _scripted(events: list[bytes], script: str | None) -> bytes:
    script, _, kind = (script or "").partition(":")
    throttled = exception(kind or "ThrottlingException", "Too many requests, please wait before trying again.")
    if script == "exception-first":
        return throttled
    if script == "exception-later":
        return events[0] + throttled
    data = b"".join(events)
    if script == "corrupt":
        first = bytearray(events[0])
        first[-1] ^= 0xFF
        return bytes(first) + b"".join(events[1:])
    if script == "cut":
        return events[0] + events[1][: len(events[1]) // 2]
    return data


def create_app(access_token: str, *, profile_arn: str | None = None) -> Starlette:
    state = KiroState(access_token=access_token, profile_arn=profile_arn)

    async def generate(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        state.requests.append({"path": request.url.path, "headers": headers, "body": body})
        try:
            if headers.get("authorization") != f"Bearer {state.access_token}":
                raise Refused(403, "AccessDeniedException", "The bearer token included in the request is invalid.")
            if headers.get("x-amz-target") != TARGET:
                raise Refused(400, "UnknownOperationException", "The operation is not known.")
            try:
                uuid.UUID(headers.get("amz-sdk-invocation-id", ""))
            except ValueError:
                raise _malformed("amz-sdk-invocation-id is not a uuid") from None
            message = check_request(body, state.profile_arn)
        except Refused as refused:
            return refused.response()
        data = _scripted(answer(message), state.script.popleft() if state.script else None)

        async def chunks() -> Any:
            for piece in split_odd(data):
                yield piece

        return StreamingResponse(chunks(), media_type="application/vnd.amazon.eventstream")

    app = Starlette(routes=[Route("/generateAssistantResponse", generate, methods=["POST"])])
    app.state.fake = state
    return app
