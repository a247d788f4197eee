"""Chat Completions pass-through to OpenAI-format upstreams, streamed or not.

The pipeline: resolve the model from the in-process snapshot → pick the first enabled connection by
priority → forward the client's body with only `model` rewritten (and `stream_options.include_usage` asked
for on streams) → relay the answer. Streams are forwarded frame by frame as they arrive; the usage-only
chunk we asked for is dropped again when the client did not ask for it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import orjson

from shared.domain.config import Connection, GatewaySettings
from shared.domain.live_quota import windows_from_headers
from shared.domain.quota import LiveWindow
from shared.domain.resolve import Route
from shared.domain.usage import Usage
from shared.errors import GatewayError, NotSupported, UpstreamFailed, UpstreamRejected
from shared.formats.anthropic_messages import usage_from_anthropic
from shared.formats.canonical import ChatRequest, ChatResponse, Reasoning, Text, ToolCall
from shared.formats.codecs import feed_decoder, new_decoder, new_encoder
from shared.formats.errors import openai_error_object, upstream_error_message
from shared.formats.gemini import usage_from_gemini
from shared.formats.openai_chat import sanitise_response, usage_from_openai
from shared.formats.openai_responses import echo as responses_echo
from shared.formats.openai_responses import usage_from_responses
from shared.formats.registry import FORMATS
from shared.formats.sse import FrameTooLarge, SseFramer, frame_data
from shared.formats.stream import (
    Collector,
    ReasoningDelta,
    StreamEnd,
    StreamEvent,
    StreamFailed,
    StreamOrderError,
    StreamStart,
    TextDelta,
    ToolCallDelta,
)
from shared.formats.thinking import apply_thinking_mode, with_system_prompt
from shared.formats.tokens import estimate_tokens
from shared.ports import UpstreamClient, UpstreamResponse
from shared.providers.executors import UpstreamCall, executor_for, keeps_state
from shared.providers.quirks import normalise_openai_roles
from shared.providers.spec import AuthHeader, WireFormat
from shared.services.reasoning_memory import ReasoningMemory
from shared.services.responses_state import ResponsesState, stored_items

TRANSLATABLE = (WireFormat.OPENAI, WireFormat.ANTHROPIC, WireFormat.GEMINI, WireFormat.RESPONSES)


def endpoint(fmt: WireFormat, model: str, *, stream: bool) -> str:
    """The path under the upstream's base URL for one completion."""
    if fmt is WireFormat.ANTHROPIC:
        return "/messages"
    if fmt is WireFormat.RESPONSES:
        return "/responses"
    if fmt is WireFormat.GEMINI:
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"/models/{quote(model, safe='/-._~')}:{action}"
    return "/chat/completions"


log = logging.getLogger("omniroute.chat")

_RELAYED_ERROR_HEADERS = ("retry-after", "retry-after-ms")
_RELAYED_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "x-codex-")
_DONE_FRAME = b"data: [DONE]\n\n"
USER_AGENT = "omniroute-edge/0.1"


@dataclass(slots=True)
class Outcome:
    """What happened to one request; filled while the answer is relayed (usage arrives last on streams).

    `output_chars`: characters of answer text, tool arguments and reasoning relayed, the basis of an
    estimate when the upstream reports no usage. `windows`: the quota windows the answer's headers
    published (subscription providers)."""

    provider: str = ""
    model: str = ""
    connection_id: str | None = None
    status: int = 0
    usage: Usage | None = None
    error: str | None = None
    upstream_model: str = ""
    output_chars: int = 0
    windows: tuple[LiveWindow, ...] = ()
    # the gateway error a stream ended with (an executor's typed refusal, e.g. Kiro's throttling as a 429),
    # so a stream that fails before its first byte is judged like the same failure of a JSON answer
    failure: GatewayError | None = None


@dataclass(slots=True)
class JsonReply:
    status: int
    body: bytes
    headers: dict[str, str]
    outcome: Outcome


@dataclass(slots=True)
class StreamReply:
    """A stream to relay. `aclose` releases the upstream connection and must run however the relay ends,
    including when it never starts (a client gone before the first byte)."""

    chunks: AsyncIterator[bytes]
    headers: dict[str, str]
    aclose: Callable[[], Awaitable[None]]
    outcome: Outcome


def upstream_headers(route: Route, connection: Connection | None, *, stream: bool) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "accept": "text/event-stream" if stream else "application/json",
        "user-agent": USER_AGENT,
    }
    key = connection.api_key if connection is not None else None
    if key:
        if route.auth_header is AuthHeader.BEARER:
            headers["authorization"] = f"Bearer {key}"
        elif route.auth_header is AuthHeader.X_API_KEY:
            headers["x-api-key"] = key
        elif route.auth_header is AuthHeader.X_GOOG_API_KEY:
            headers["x-goog-api-key"] = key
    headers.update(route.extra_headers)
    return headers


async def _raise_for_status(resp: UpstreamResponse, route: Route) -> None:
    if resp.status < 400:
        return
    try:
        body = await resp.aread()
    finally:
        await resp.aclose()
    message = upstream_error_message(route.provider_id, resp.status, body)
    relayed = tuple((h, resp.headers[h]) for h in _RELAYED_ERROR_HEADERS if h in resp.headers)
    relayed += tuple((h, v) for h, v in resp.headers.items() if h.lower().startswith(_RELAYED_PREFIXES))
    if resp.status >= 500:
        raise UpstreamFailed(
            message, provider=route.provider_id, upstream_status=resp.status, body=body, headers=relayed
        )
    raise UpstreamRejected(message, upstream_status=resp.status, body=body, headers=relayed, provider=route.provider_id)


class ChatService:
    def __init__(
        self,
        upstream: UpstreamClient,
        memory: ReasoningMemory | None = None,
        responses_state: ResponsesState | None = None,
    ) -> None:
        self._upstream = upstream
        self._memory = memory or ReasoningMemory()
        self._state = responses_state

    async def complete(
        self,
        body: dict[str, Any],
        route: Route,
        *,
        stream: bool,
        client: WireFormat = WireFormat.OPENAI,
        client_headers: Mapping[str, str] | None = None,
        client_model: str | None = None,
        settings: GatewaySettings | None = None,
        idle_timeout: float | None = None,
    ) -> JsonReply | StreamReply:
        """Send `body` (in the `client` format) to the route's upstream and answer in the client's format.

        Same format on both sides: the body passes through with only `model` rewritten. Otherwise it is
        translated through the canonical model, and so is the answer, streamed or not.
        """
        executor = executor_for(route.provider_id)
        upstream = executor.wire_format if executor is not None else route.wire_format
        if upstream not in TRANSLATABLE:
            raise NotSupported(
                f"`{route.public_model}` is served by {route.provider_id}, which speaks the {upstream.value} "
                "format; this build translates to OpenAI Chat and Responses, Anthropic Messages and Gemini "
                "upstreams only.",
                param="model",
                provider=route.provider_id,
            )
        connection = route.connections[0]
        outcome = Outcome(
            provider=route.provider_id,
            model=route.public_model,
            connection_id=connection.id if connection else None,
            upstream_model=route.upstream_model,
        )
        echoed: dict[str, Any] = {}
        # Responses clients rely on server state; a Responses upstream keeps its own unless it is a stateless
        # backend (Codex and the Grok CLI proxy take `store: false` only): every other upstream gets ours
        stateful_upstream = upstream is WireFormat.RESPONSES and (executor is None or keeps_state(executor))
        state = self._state if client is WireFormat.RESPONSES and not stateful_upstream else None
        if state is not None and upstream is WireFormat.RESPONSES and not _uses_state(body):
            state = None  # `store: false` and nothing to look up (the Codex CLI): the body passes through
        request: ChatRequest | None = None
        client_wants_usage = True
        if client is WireFormat.OPENAI and stream:
            client_wants_usage = (body.get("stream_options") or {}).get("include_usage") is True
        if client is upstream and state is None and not (settings and settings.rewrites_requests):
            payload = dict(body)
            if upstream is not WireFormat.GEMINI:  # Gemini names the model and the stream in the URL
                payload["model"] = route.upstream_model
                if stream:
                    payload["stream"] = True
        else:
            if state is not None:
                body = await state.resolve_item_references(body)
            request = FORMATS[client].parse_request(body, model=client_model)
            if client is WireFormat.RESPONSES:
                echoed = responses_echo(request)  # what a Response repeats of its request
            if state is not None:
                request = await state.expand(request)
            if settings is not None:
                request = with_system_prompt(request, settings.system_prompt)
                request = apply_thinking_mode(request, settings.thinking_mode, settings.thinking_budget)
            if client is not upstream:
                request = await self._memory.restore_from_anywhere(request, upstream)
            payload = FORMATS[upstream].render_request(replace(request, model=route.upstream_model, stream=stream))
        if upstream is WireFormat.OPENAI:
            payload = normalise_openai_roles(payload, route.provider_id, route.upstream_model)
            if stream:
                payload["stream_options"] = {**(payload.get("stream_options") or {}), "include_usage": True}
        headers = upstream_headers(route, connection, stream=stream)
        if upstream is WireFormat.ANTHROPIC and client_headers and client_headers.get("anthropic-beta"):
            headers["anthropic-beta"] = client_headers["anthropic-beta"]  # features the client opted into
        url = route.base_url_for(connection) + endpoint(upstream, route.upstream_model, stream=stream)
        call = UpstreamCall(url, headers, payload, stream)
        if executor is not None:
            call = executor.prepare(call, connection)
        # A translated request's output limit is the client format's (Anthropic requires one; Claude Code
        # asks for 32000): an upstream model that allows fewer refuses it, so it is tried once without.
        resp = await self._send(
            call.url,
            call.headers,
            call.payload,
            stream=call.stream,
            route=route,
            fmt=upstream,
            may_drop_limit=client is not upstream,
            read_timeout=idle_timeout if call.stream else None,
        )
        if executor is not None:
            resp = executor.adapt(resp, call, client_stream=stream)
        try:
            reply_headers = {
                "x-omniroute-provider": route.provider_id,
                "x-omniroute-model": header_safe(route.public_model),
            }
            outcome.status = resp.status
            outcome.windows = windows_from_headers(resp.headers, time.time())
            if not stream:
                raw = await resp.aread()
                doc = _json_object(raw, route)
                if client is upstream and state is None:
                    outcome.usage = _usage_of(upstream, doc)
                    if outcome.usage is None:  # the basis of an estimate
                        outcome.output_chars = _answer_chars(FORMATS[upstream].parse_response(doc))
                    if upstream is WireFormat.OPENAI and (clean := sanitise_response(doc)) is not None:
                        raw = orjson.dumps(clean)  # vendor extras strictly typed clients reject
                    return JsonReply(resp.status, raw, reply_headers, outcome)
                answer = FORMATS[upstream].parse_response(doc)
                await self._memory.keep_answer(answer.parts)
                outcome.usage = answer.usage
                if answer.usage is None:
                    outcome.output_chars = _answer_chars(answer)
                if echoed:
                    answer = replace(answer, extensions={**answer.extensions, **echoed})
                rendered = FORMATS[client].render_response(answer)
                if state is not None and request is not None:
                    await state.save(request, answer, stored_items(rendered))
                translated = orjson.dumps(rendered)
                return JsonReply(resp.status, translated, reply_headers, outcome)
            await _ensure_event_stream(resp, route)
        except BaseException:
            await resp.aclose()
            raise
        if client is upstream is WireFormat.OPENAI:
            chunks = _relay(resp, client_wants_usage, outcome)
        else:
            save = None
            if state is not None and request is not None:
                save = _saver(state, request, echoed)
            chunks = _translate_stream(resp, upstream, client, client_wants_usage, outcome, self._memory, echoed, save)
        return StreamReply(chunks, reply_headers, resp.aclose, outcome)

    async def _send(
        self,
        url: str,
        headers: Mapping[str, str],
        payload: dict[str, Any],
        *,
        stream: bool,
        route: Route,
        fmt: WireFormat,
        may_drop_limit: bool,
        read_timeout: float | None = None,
    ) -> UpstreamResponse:
        """Send, and raise the upstream's refusal as ours (the response is closed then)."""
        for attempt in range(2):
            try:
                resp = await self._upstream.send(
                    "POST", url, headers, orjson.dumps(payload), stream=stream, read_timeout=read_timeout
                )
            except GatewayError as err:
                err.provider = err.provider or route.provider_id
                raise
            try:
                await _raise_for_status(resp, route)
            except UpstreamRejected as err:
                trimmed = _without_output_limit(payload, err, fmt) if may_drop_limit else None
                if attempt == 0 and trimmed is not None:
                    log.info(
                        "%s refused the output limit; trying again without it: %.200s", route.provider_id, err.message
                    )
                    payload = trimmed
                    continue
                raise
            return resp
        raise AssertionError("unreachable")  # the loop returns or raises

    async def count_tokens(
        self, body: dict[str, Any], route: Route, *, client_headers: Mapping[str, str] | None = None
    ) -> JsonReply:
        """Anthropic's `count_tokens`: asked of an Anthropic upstream, estimated for any other (and marked
        `x-omniroute-estimated: true`)."""
        connection = route.connections[0]
        outcome = Outcome(provider=route.provider_id, model=route.public_model)
        reply_headers = {
            "x-omniroute-provider": route.provider_id,
            "x-omniroute-model": header_safe(route.public_model),
        }
        executor = executor_for(route.provider_id)
        upstream = executor.wire_format if executor is not None else route.wire_format
        if upstream is not WireFormat.ANTHROPIC:
            request = FORMATS[WireFormat.ANTHROPIC].parse_request(body)
            reply_headers["x-omniroute-estimated"] = "true"
            outcome.status = 200
            return JsonReply(200, orjson.dumps({"input_tokens": estimate_tokens(request)}), reply_headers, outcome)
        payload = {**body, "model": route.upstream_model}
        payload.pop("max_tokens", None)
        headers = upstream_headers(route, connection, stream=False)
        if client_headers and client_headers.get("anthropic-beta"):
            headers["anthropic-beta"] = client_headers["anthropic-beta"]
        call = UpstreamCall(route.base_url_for(connection) + "/messages/count_tokens", headers, payload, False)
        if executor is not None:
            call = executor.prepare(call, connection)
        try:
            resp = await self._upstream.send("POST", call.url, call.headers, orjson.dumps(call.payload), stream=False)
        except GatewayError as err:
            err.provider = err.provider or route.provider_id
            raise
        await _raise_for_status(resp, route)
        raw = await resp.aread()
        _json_object(raw, route)
        outcome.status = resp.status
        return JsonReply(resp.status, raw, reply_headers, outcome)


def _uses_state(body: Mapping[str, Any]) -> bool:
    """Whether a Responses request needs server state: it continues a stored response, refers to stored
    items, or asks to be stored itself (the default)."""
    if body.get("store") is not False or body.get("previous_response_id"):
        return True
    items = body.get("input")
    return isinstance(items, list) and any(isinstance(i, dict) and i.get("type") == "item_reference" for i in items)


def header_safe(value: str) -> str:
    """Model ids are client text; a header value must be visible ASCII (RFC 9110), so escape the rest."""
    return quote(value, safe="/:@._-+~!$&'()*,;=")


async def _ensure_event_stream(resp: UpstreamResponse, route: Route) -> None:
    """A stream request answered with JSON (an error object, or an upstream that ignored `stream`) is a
    failure the client must hear about, not an empty successful stream."""
    content_type = resp.headers.get("content-type", "")
    if content_type.startswith("text/event-stream"):
        return
    body = await resp.aread()
    detail = upstream_error_message(route.provider_id, resp.status, body)
    raise UpstreamFailed(
        f"{detail} (a {content_type or 'untyped'} body where an event stream was expected)",
        provider=route.provider_id,
    )


async def _answer_ended(
    answer: ChatResponse, memory: ReasoningMemory, save: Callable[[ChatResponse], Awaitable[None]] | None
) -> None:
    """What a translated stream's complete answer leaves behind, kept before the client sees its end (so a
    follow-up request can rely on it at once): the reasoning before its tool calls, the Responses state."""
    await memory.keep_answer(answer.parts)
    if save is not None:
        await save(answer)


_LIMIT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "maxoutputtokens")


def _without_output_limit(payload: dict[str, Any], err: UpstreamRejected, fmt: WireFormat) -> dict[str, Any] | None:
    """The payload without its output limit, when a 400 says the limit is what the upstream refused."""
    if err.upstream_status != 400 or fmt is WireFormat.ANTHROPIC:  # Anthropic requires the limit
        return None
    if not any(name in err.message.lower() for name in _LIMIT_FIELDS):
        return None
    if fmt is WireFormat.GEMINI:
        config = payload.get("generationConfig")
        if isinstance(config, dict) and "maxOutputTokens" in config:
            return {**payload, "generationConfig": {k: v for k, v in config.items() if k != "maxOutputTokens"}}
        return None
    present = [k for k in ("max_tokens", "max_completion_tokens", "max_output_tokens") if k in payload]
    if not present:
        return None
    return {k: v for k, v in payload.items() if k not in present}


def _saver(
    state: ResponsesState, request: ChatRequest, echoed: Mapping[str, Any]
) -> Callable[[ChatResponse], Awaitable[None]]:
    async def save(answer: ChatResponse) -> None:
        answer = replace(answer, extensions={**answer.extensions, **echoed})
        await state.save(request, answer, stored_items(FORMATS[WireFormat.RESPONSES].render_response(answer)))

    return save


def _json_object(raw: bytes, route: Route) -> dict[str, Any]:
    """The upstream's 200 must be a JSON object: an HTML page or an empty body is not an answer."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        snippet = raw[:120].decode("utf-8", "replace")
        raise UpstreamFailed(
            f"Upstream {route.provider_id} answered 200 without a JSON object: {snippet!r}", provider=route.provider_id
        )
    return doc


def _answer_chars(answer: ChatResponse) -> int:
    """Characters of an answer's text, reasoning and tool arguments (for a usage estimate)."""
    total = 0
    for part in answer.parts:
        if isinstance(part, Text | Reasoning):
            total += len(part.text)
        elif isinstance(part, ToolCall):
            total += len(part.name) + len(part.arguments)
    return total


def _usage_of(fmt: WireFormat, doc: dict[str, Any]) -> Usage | None:
    if fmt is WireFormat.ANTHROPIC:
        return usage_from_anthropic(doc.get("usage"))
    if fmt is WireFormat.RESPONSES:
        return usage_from_responses(doc.get("usage"))
    if fmt is WireFormat.GEMINI:
        return usage_from_gemini(doc.get("usageMetadata"))
    return usage_from_openai(doc.get("usage"))


async def _translate_stream(
    resp: UpstreamResponse,
    upstream: WireFormat,
    client: WireFormat,
    client_wants_usage: bool,
    outcome: Outcome,
    memory: ReasoningMemory,
    echoed: Mapping[str, Any] | None = None,
    save: Callable[[ChatResponse], Awaitable[None]] | None = None,
) -> AsyncIterator[bytes]:
    """Relay a stream, translating (or, Anthropic to Anthropic, checking) each event as it arrives.

    Anthropic-to-Anthropic frames pass byte for byte; the decoder only reads them for usage and to notice
    a stream that ends before `message_stop`, which then gets an `error` event instead of silence.
    """
    framer = SseFramer()
    decoder = new_decoder(upstream)
    passthrough = client is upstream and save is None  # an answer to keep as our state is read, not relayed
    encoder = new_encoder(client, include_usage=client_wants_usage, extensions=echoed)

    collector = Collector()  # the answer as it streams, for the reasoning before each tool call
    ended: list[ChatResponse] = []  # the complete answer, once the stream ended

    def handle(events: list[StreamEvent]) -> bytes:
        out = b""
        for event in events:
            if not passthrough:
                collector.feed(event)
            if isinstance(event, TextDelta | ReasoningDelta):
                outcome.output_chars += len(event.text)
            elif isinstance(event, ToolCallDelta):
                outcome.output_chars += len(event.arguments)
            elif isinstance(event, StreamStart) and event.usage is not None and outcome.usage is None:
                outcome.usage = event.usage  # what is known so far (Anthropic: the input), if the end never comes
            if isinstance(event, StreamEnd):
                if not passthrough:
                    ended.append(collector.response())
                if event.usage is not None:
                    outcome.usage = event.usage
            elif isinstance(event, StreamFailed):
                outcome.error = event.message
            if not passthrough:
                out += encoder.feed(event)
            elif isinstance(event, StreamFailed):
                out += encoder.feed(event)  # only the failure we detected is ours to add
        return out

    try:
        async for chunk in resp.aiter_bytes():
            out = b""
            for frame in framer.feed(chunk):
                data = frame_data(frame)
                if data is None:
                    continue
                translated = handle(feed_decoder(decoder, upstream, frame, data))
                out += frame if passthrough else translated
            if ended:
                await _answer_ended(ended.pop(), memory, save)  # kept before the client sees the end
            if out:
                yield out
        rest = framer.flush()
        if rest.strip():
            data = frame_data(rest + b"\n\n")
            if data is not None:
                translated = handle(feed_decoder(decoder, upstream, rest, data))
                yield (rest + b"\n\n") if passthrough else translated
        tail = handle(decoder.finish())
        if ended:
            await _answer_ended(ended.pop(), memory, save)
        if tail:
            yield tail
    except Exception as exc:
        if isinstance(exc, GatewayError):
            message = exc.message
            outcome.failure = exc
        elif isinstance(exc, FrameTooLarge | StreamOrderError):
            message = f"The upstream stream could not be relayed ({exc})."
        else:
            message = "The gateway failed while relaying the stream; see its log."
            log.exception("translating the stream from %s (%s) failed", outcome.provider, outcome.model)
        log.warning("stream from %s (%s) ended early: %.300s", outcome.provider, outcome.model, message)
        outcome.error = message
        yield encoder.feed(StreamFailed(message))
    finally:
        await resp.aclose()


_FINISH = re.compile(rb'"finish_reason"\s*:\s*"')
# The text of a Chat chunk's delta (content, reasoning, tool arguments): counted for a usage estimate
# when the upstream reports none. JSON-escaped, so a little over the real count; an estimate says so.
_DELTA_TEXT = re.compile(rb'"(?:content|reasoning_content|reasoning|arguments)"\s*:\s*"((?:[^"\\]|\\.)*)"')


@dataclass(slots=True)
class _RelayState:
    """What the relay has seen so far: the sentinel, and whether the answer finished."""

    saw_done: bool = False
    saw_finish: bool = False


async def _relay(resp: UpstreamResponse, client_wants_usage: bool, outcome: Outcome) -> AsyncIterator[bytes]:
    framer = SseFramer()
    state = _RelayState()
    try:
        async for chunk in resp.aiter_bytes():
            out = [f for f in framer.feed(chunk) if _keep(f, state, outcome, client_wants_usage)]
            if out:
                yield b"".join(out)
        rest = framer.flush()
        if rest.strip():
            # The upstream closed mid-frame or without the final blank line: treat it as the last frame.
            last = rest + b"\n\n"
            if _keep(last, state, outcome, client_wants_usage):
                yield last
        if not state.saw_done and outcome.error is None:
            if not state.saw_finish:
                raise UpstreamFailed(
                    "The upstream ended the stream before finishing its answer (no finish_reason, no [DONE]).",
                    provider=outcome.provider,
                )
            # Some OpenAI-compatible upstreams end without the sentinel; OpenAI clients expect exactly one.
            yield _DONE_FRAME
    except Exception as exc:
        # The status line is long gone: the client learns of the failure in-stream, as OpenAI does.
        if isinstance(exc, GatewayError):
            err = exc
            outcome.failure = exc
            log.warning("stream from %s (%s) ended early: %.300s", outcome.provider, outcome.model, err.message)
        elif isinstance(exc, FrameTooLarge):
            err = UpstreamFailed(f"The upstream sent an event too large to relay ({exc}).")
            log.warning("stream from %s (%s): %s", outcome.provider, outcome.model, exc)
        else:
            err = UpstreamFailed("The gateway failed while relaying the stream; see its log.")
            log.exception("relaying the stream from %s (%s) failed", outcome.provider, outcome.model)
        outcome.error = err.message
        yield b"data: " + orjson.dumps({"error": openai_error_object(err)}) + b"\n\n"
    finally:
        await resp.aclose()


def _keep(frame: bytes, state: _RelayState, outcome: Outcome, client_wants_usage: bool) -> bool:
    """Inspect one frame on its way through; False drops it."""
    data = frame_data(frame)
    if data is None:
        return True  # comments and keepalives pass
    if data == b"[DONE]":
        keep = not state.saw_done  # exactly one sentinel
        state.saw_done = True
        return keep
    if state.saw_done:
        return False  # nothing after the sentinel reaches an OpenAI client
    if data.startswith(b'{"error"') and outcome.error is None:
        # An OpenAI-compatible upstream's in-stream failure (OpenRouter, vLLM): relayed as it is, and noted,
        # so a stream that opens with it is not taken for an answer.
        outcome.error = _stream_error_message(data)
    if not state.saw_finish and _FINISH.search(data):
        state.saw_finish = True
    for text in _DELTA_TEXT.findall(data):
        outcome.output_chars += len(text)
    if b'"usage"' in data:
        return _inspect_usage(data, outcome, client_wants_usage)
    return True


def _stream_error_message(data: bytes) -> str:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return "The upstream sent an error event."
    error = doc.get("error") if isinstance(doc, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return str(message or "The upstream sent an error event.")[:500]


def _inspect_usage(data: bytes, outcome: Outcome, client_wants_usage: bool) -> bool:
    """Record usage from a chunk; False means drop the chunk (a usage-only chunk the client did not ask for)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return True
    if not isinstance(doc, dict) or not isinstance(doc.get("usage"), dict):
        return True  # `"usage": null` rides on ordinary chunks (and on Azure's prompt-filter chunk): keep them
    usage = usage_from_openai(doc["usage"])
    if usage is not None:
        outcome.usage = usage
    # Usage riding on a chunk that also carries choices is harmless; a usage-only chunk is not asked for.
    return client_wants_usage or bool(doc.get("choices"))
