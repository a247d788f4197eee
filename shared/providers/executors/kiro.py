"""Kiro accounts: AWS CodeWhisperer's `generateAssistantResponse` (project notes `oauth-providers.md` §9).

The service is neither OpenAI nor SSE; this executor makes it look like an OpenAI Chat upstream:
- the request becomes a `conversationState`: the earlier turns as `history` (alternating `userInputMessage` and
  `assistantResponseMessage`), the last user turn as `currentMessage` with the tool declarations; tool calls
  ride on assistant turns as `toolUses`, their results on the next user turn as `toolResults`. There is no
  system field: the instructions are folded into the first user message. `profileArn` is sent for Google and
  GitHub logins only (Builder ID / IdC tokens are refused with it: hank9999/kiro.rs#168);
- the answer is always a binary AWS event stream (`aws_eventstream`) of `assistantResponseEvent {content}`,
  `toolUseEvent {name, toolUseId, input (a piece of the JSON text), stop}`, `contextUsageEvent`,
  `meteringEvent` (credits, not tokens); an `exception` or `error` message fails the call. It is turned into
  Chat completion chunks (a stream client) or one `chat.completion` (a JSON client).

CodeWhisperer reports no token counts, so the answers carry no usage and `ChatService` estimates it (the
usage event says `estimated`), unless an event does carry token counts.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from shared.domain.config import Connection
from shared.domain.usage import Usage
from shared.errors import NotSupported, UpstreamFailed
from shared.formats.canonical import (
    ChatRequest,
    FinishReason,
    Image,
    Message,
    Role,
    Text,
    Tool,
    ToolCall,
    ToolResult,
)
from shared.formats.openai_chat import parse_request, render_response, usage_to_openai
from shared.formats.openai_chat_stream import DONE_FRAME, OpenAIStreamEncoder
from shared.formats.stream import (
    Collector,
    PartEnd,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
)
from shared.ports import UpstreamResponse
from shared.providers.catalog import get_provider
from shared.providers.executors import UpstreamCall
from shared.providers.executors.aws_eventstream import EventMessage, EventStreamDecoder, EventStreamError
from shared.providers.spec import WireFormat

PROVIDER = "kiro"
ORIGIN = "AI_EDITOR"
SOCIAL_LOGINS = ("google", "github")  # meta.authMethod values whose tokens need the profileArn
EMPTY_USER = "Continue"  # the service refuses an empty message; a turn of tool results alone has no text
EMPTY_ASSISTANT = "..."  # likewise an assistant turn that only called tools
MAX_TOOL_DESCRIPTION = 10_000  # longer descriptions are refused
# The Kiro IDE's own client identity (its AWS SDK build); the fingerprint is per account.
USER_AGENT = (
    "aws-sdk-js/1.0.34 ua/2.1 os/darwin#24.6.0 lang/js md/nodejs#22.22.0 api/codewhispererstreaming#1.0.34 m/E "
    "KiroIDE-0.12.155-{fingerprint}"
)
X_AMZ_USER_AGENT = "aws-sdk-js/1.0.34 KiroIDE-0.12.155-{fingerprint}"


# ----- the request -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Turn:
    """One turn of the conversation as CodeWhisperer groups them (consecutive messages of a role merged)."""

    role: Role  # USER or ASSISTANT
    texts: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    uses: list[dict[str, Any]] = field(default_factory=list)

    @property
    def content(self) -> str:
        return "\n\n".join(t for t in self.texts if t)


def _image(image: Image) -> dict[str, Any]:
    if image.data is None:
        raise NotSupported(
            "Kiro takes images inline only (base64 `data:` URLs), not by URL.", param="messages", provider=PROVIDER
        )
    subtype = (image.media_type or "image/png").partition("/")[2] or "png"
    return {"format": subtype, "source": {"bytes": image.data}}


def _tool_result(result: ToolResult) -> dict[str, Any]:
    text = "\n".join(p.text for p in result.content if isinstance(p, Text))
    return {
        "toolUseId": result.call_id,
        "content": [{"text": text or "(no output)"}],
        "status": "error" if result.is_error else "success",
    }


def _tool_use(call: ToolCall) -> dict[str, Any]:
    try:
        arguments = orjson.loads(call.arguments) if call.arguments.strip() else {}
    except orjson.JSONDecodeError:
        arguments = {}
    return {"toolUseId": call.id, "name": call.name, "input": arguments if isinstance(arguments, dict) else {}}


def _tool_spec(tool: Tool) -> dict[str, Any]:
    schema = dict(tool.parameters) or {"type": "object", "properties": {}}
    description = (tool.description or "").strip() or f"Tool: {tool.name}"  # an empty one is refused
    return {
        "toolSpecification": {
            "name": tool.name,
            "description": description[:MAX_TOOL_DESCRIPTION],
            "inputSchema": {"json": schema},
        }
    }


def _turns(messages: tuple[Message, ...]) -> tuple[str, list[_Turn]]:
    """The instructions, and the conversation as alternating user and assistant turns."""
    system: list[str] = []
    turns: list[_Turn] = []
    for message in messages:
        if message.role in (Role.SYSTEM, Role.DEVELOPER):
            system.append(message.text)
            continue
        role = Role.ASSISTANT if message.role is Role.ASSISTANT else Role.USER  # tool results are user turns
        if not turns or turns[-1].role is not role:
            turns.append(_Turn(role))
        turn = turns[-1]
        for part in message.parts:
            if isinstance(part, Text):
                turn.texts.append(part.text)
            elif isinstance(part, Image) and role is Role.USER:
                turn.images.append(_image(part))
            elif isinstance(part, ToolResult):
                turn.results.append(_tool_result(part))
            elif isinstance(part, ToolCall):
                turn.uses.append(_tool_use(part))
            # reasoning cannot be replayed to CodeWhisperer: it is left out
    if turns and turns[0].role is Role.ASSISTANT:
        turns.insert(0, _Turn(Role.USER))  # history starts with a user turn
    return "\n\n".join(s for s in system if s), turns


def _user_message(turn: _Turn, model: str, context: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"content": turn.content or EMPTY_USER, "modelId": model, "origin": ORIGIN}
    if turn.images:
        message["images"] = turn.images
    if turn.results:
        context = {**context, "toolResults": turn.results}
    if context:
        message["userInputMessageContext"] = context
    return message


def _assistant_message(turn: _Turn) -> dict[str, Any]:
    message: dict[str, Any] = {"content": turn.content or EMPTY_ASSISTANT}
    if turn.uses:
        message["toolUses"] = turn.uses
    return message


def conversation_payload(
    request: ChatRequest, model: str, *, conversation_id: str, profile_arn: str | None = None
) -> dict[str, Any]:
    """A canonical request as a `generateAssistantResponse` body."""
    system, turns = _turns(request.messages)
    current = turns.pop() if turns and turns[-1].role is Role.USER else _Turn(Role.USER)
    first = turns[0] if turns else current
    if system:
        first.texts.insert(0, system)
    history: list[dict[str, Any]] = []
    for turn in turns:
        if turn.role is Role.USER:
            history.append({"userInputMessage": _user_message(turn, model, {})})
        else:
            history.append({"assistantResponseMessage": _assistant_message(turn)})
    context: dict[str, Any] = {}
    if request.tools:
        context["tools"] = [_tool_spec(t) for t in request.tools]
    current_message = _user_message(current, model, context)
    current_message.setdefault("userInputMessageContext", {})
    state: dict[str, Any] = {
        "chatTriggerType": "MANUAL",
        "conversationId": conversation_id,
        "currentMessage": {"userInputMessage": current_message},
        "history": history,
    }
    body: dict[str, Any] = {"conversationState": state}
    if profile_arn:
        body["profileArn"] = profile_arn
    inference = {
        k: v
        for k, v in (("maxTokens", request.max_tokens), ("temperature", request.temperature), ("topP", request.top_p))
        if v is not None
    }
    if inference:
        body["inferenceConfig"] = inference
    return body


class KiroExecutor:
    wire_format = WireFormat.OPENAI

    def prepare(self, call: UpstreamCall, connection: Connection | None) -> UpstreamCall:
        model = str(call.payload.get("model") or "")
        request = parse_request(call.payload)
        meta = connection.oauth.meta if connection is not None and connection.oauth is not None else {}
        social = str(meta.get("authMethod") or "").lower() in SOCIAL_LOGINS
        profile_arn = str(meta["profileArn"]) if social and meta.get("profileArn") else None
        payload = conversation_payload(request, model, conversation_id=str(uuid.uuid4()), profile_arn=profile_arn)
        fingerprint = hashlib.sha256((connection.id if connection else "anonymous").encode()).hexdigest()
        spec = get_provider(PROVIDER)
        headers = {k: v for k, v in call.headers.items() if k != "user-agent"}
        headers.update(spec.extra_headers if spec is not None else ())  # x-amz-target, the event-stream accept
        headers["user-agent"] = USER_AGENT.format(fingerprint=fingerprint)
        headers["x-amz-user-agent"] = X_AMZ_USER_AGENT.format(fingerprint=fingerprint)
        headers["x-amzn-codewhisperer-optout"] = "true"
        headers["amz-sdk-invocation-id"] = str(uuid.uuid4())
        headers["amz-sdk-request"] = "attempt=1; max=1"
        url = call.url.removesuffix("/chat/completions") + "/generateAssistantResponse"
        # the service only streams, whatever the client asked for
        return UpstreamCall(url, headers, payload, True, {**call.notes, "model": model})

    def adapt(self, resp: UpstreamResponse, call: UpstreamCall, *, client_stream: bool) -> UpstreamResponse:
        return KiroResponse(resp, str(call.notes.get("model") or ""), client_stream=client_stream)


# ----- the answer --------------------------------------------------------------------------------------


def _payload_json(message: EventMessage) -> dict[str, Any]:
    try:
        doc = orjson.loads(message.payload) if message.payload else {}
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


# The HTTP status each AWS exception has when it is not inside a stream: the router reads a throttled account
# (next account, cooled down) or a refused request (no other account) from it as from any upstream's status.
_EXCEPTION_STATUS = {
    "ThrottlingException": 429,
    "ServiceQuotaExceededException": 429,
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ConflictException": 409,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}


def _failure(message: EventMessage) -> UpstreamFailed:
    """An `exception` or `error` message as the failure it reports."""
    kind = message.header(":exception-type") or message.header(":error-code") or message.message_type
    doc = _payload_json(message)
    text = doc.get("message") or doc.get("Message") or message.header(":error-message")
    if not text:
        text = message.payload[:300].decode("utf-8", "replace")
    return UpstreamFailed(
        f"Kiro reported {kind}: {str(text)[:500]}",
        provider=PROVIDER,
        upstream_status=_EXCEPTION_STATUS.get(kind),
        body=message.payload[:8192],
    )


def _token_usage(doc: Mapping[str, Any]) -> Usage | None:
    """Token counts, if an event carries any (the known events carry credits and a context percentage)."""
    for candidate in (doc, doc.get("tokenUsage"), doc.get("usage")):
        if not isinstance(candidate, Mapping):
            continue
        inp, out = candidate.get("inputTokens"), candidate.get("outputTokens")
        if isinstance(inp, int) and isinstance(out, int) and not isinstance(inp, bool) and not isinstance(out, bool):
            return Usage(input=inp, output=out)
    return None


class KiroEvents:
    """Kiro's events as canonical stream events. State: the open text part, and each tool call's part by its
    `toolUseId` (a call's input arrives in pieces over several events, the last with `stop`)."""

    def __init__(self, model: str) -> None:
        self.start = StreamStart(id=f"chatcmpl-{uuid.uuid4().hex}", model=model, created=int(time.time()))
        self._started = False
        self._next = 0
        self._text: int | None = None
        self._calls: dict[str, int] = {}
        self._open_calls: set[str] = set()
        self._usage: Usage | None = None

    def _begin(self) -> list[StreamEvent]:
        if self._started:
            return []
        self._started = True
        return [self.start]

    def _close_text(self) -> list[StreamEvent]:
        if self._text is None:
            return []
        index, self._text = self._text, None
        return [PartEnd(index)]

    def feed(self, message: EventMessage) -> list[StreamEvent]:
        if message.message_type != "event":
            raise _failure(message)
        doc = _payload_json(message)
        usage = _token_usage(doc)
        if usage is not None:
            self._usage = usage
        event = message.event_type
        if event == "assistantResponseEvent":
            content = doc.get("content")
            if not isinstance(content, str) or not content:
                return []
            out = self._begin()
            if self._text is None:
                self._text, self._next = self._next, self._next + 1
            return [*out, TextDelta(self._text, content)]
        if event == "toolUseEvent":
            return self._tool_use(doc)
        return []  # contextUsageEvent, meteringEvent, messageStopEvent, and anything new: nothing to relay

    def _tool_use(self, doc: Mapping[str, Any]) -> list[StreamEvent]:
        call_id = str(doc.get("toolUseId") or "")
        if not call_id or (call_id in self._calls and call_id not in self._open_calls):
            return []  # a call that already ended is not reopened
        out = self._begin()
        if call_id not in self._calls:
            out += self._close_text()
            self._calls[call_id] = self._next
            self._next += 1
            self._open_calls.add(call_id)
            out.append(ToolCallStart(self._calls[call_id], call_id, str(doc.get("name") or "")))
        index = self._calls[call_id]
        piece = doc.get("input")
        if isinstance(piece, str) and piece:
            out.append(ToolCallDelta(index, piece))
        elif isinstance(piece, dict):  # an input sent whole, as an object
            out.append(ToolCallDelta(index, orjson.dumps(piece).decode()))
        if doc.get("stop") is True:
            self._open_calls.discard(call_id)
            out.append(PartEnd(index))
        return out

    def finish(self) -> list[StreamEvent]:
        if not self._started:
            raise UpstreamFailed("Kiro ended its answer without any text or tool call.", provider=PROVIDER)
        out = self._close_text()
        out += [PartEnd(self._calls[c]) for c in sorted(self._open_calls, key=self._calls.__getitem__)]
        self._open_calls.clear()
        finish = FinishReason.TOOL_CALLS if self._calls else FinishReason.STOP
        return [*out, StreamEnd(finish, self._usage)]


class KiroResponse:
    """The event stream as an OpenAI Chat answer: SSE chunks for a stream client, one JSON object for the rest."""

    def __init__(self, resp: UpstreamResponse, model: str, *, client_stream: bool) -> None:
        self._resp = resp
        self._translator = KiroEvents(model)
        self.status = resp.status
        kept = {k: v for k, v in resp.headers.items() if k.lower() not in _BODY_HEADERS}
        kept["content-type"] = "text/event-stream" if client_stream else "application/json"
        self.headers: Mapping[str, str] = kept

    async def events(self) -> AsyncIterator[list[StreamEvent]]:
        decoder = EventStreamDecoder()
        translator = self._translator
        async for chunk in self._resp.aiter_bytes():
            try:
                messages = decoder.feed(chunk)
            except EventStreamError as exc:
                raise UpstreamFailed(f"Kiro's event stream is corrupt ({exc}).", provider=PROVIDER) from exc
            batch: list[StreamEvent] = []
            for message in messages:
                batch += translator.feed(message)
            if batch:
                yield batch
        if decoder.pending:
            raise UpstreamFailed("Kiro's event stream ended in the middle of a message.", provider=PROVIDER)
        yield translator.finish()

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        encoder = OpenAIStreamEncoder(include_usage=False)
        async for batch in self.events():
            out = b""
            for event in batch:
                frames = encoder.feed(event)
                if isinstance(event, StreamEnd) and event.usage is not None:
                    # only real counts get a usage chunk; without one ChatService estimates (and says so)
                    frames = frames.removesuffix(DONE_FRAME) + self._usage_chunk(event.usage) + DONE_FRAME
                out += frames
            if out:
                yield out

    def _usage_chunk(self, usage: Usage) -> bytes:
        start = self._translator.start
        chunk: dict[str, Any] = {
            "id": start.id,
            "object": "chat.completion.chunk",
            "created": start.created,
            "model": start.model,
            "choices": [],
            "usage": usage_to_openai(usage),
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    async def aread(self) -> bytes:
        collector = Collector()
        async for batch in self.events():
            for event in batch:
                collector.feed(event)
        return orjson.dumps(render_response(collector.response()))

    async def aclose(self) -> None:
        await self._resp.aclose()


_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding", "transfer-encoding"})
