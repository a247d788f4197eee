"""A fake Anthropic Messages API upstream that speaks the real wire format over real HTTP.

The sibling of `openai_upstream` for the gateway's Anthropic provider: it answers `POST /v1/messages`
with Anthropic's message object, streams Anthropic's named SSE events (thinking, signature and
tool-input deltas included), rejects requests the way the real API does (auth, `anthropic-version`,
body validation, tool_use/tool_result pairing, thinking signatures) with Anthropic's error envelope,
and misbehaves on demand. It is deliberately dumb and deterministic: the reply is always
`"Hello from fake-anthropic: " + <last user text>`, token counts are word counts, tool inputs are
derived from the tool's `input_schema`, and thinking signatures are checkable hashes of the thought.

Endpoints
    POST   /v1/messages                the fake model (stream and non-stream)
    POST   /v1/messages/count_tokens   `{"input_tokens": N}`, the same N as `usage.input_tokens`
    GET    /v1/models                  model list; GET /v1/models/{id} for one model
    GET    /_fake/requests             every recorded /v1 request (DELETE clears them)
    GET    /_fake/script               pending scripted directives; POST appends, DELETE clears
    GET    /_fake/health               readiness probe for out-of-process users

Wire facts taken from Anthropic's documentation and recorded traffic (see the tests for each):
the stream is `message_start` (empty content, input usage) · per block `content_block_start`,
`content_block_delta`s, `content_block_stop` · `message_delta` (stop_reason, cumulative usage) ·
`message_stop`, with a `ping` after the first block opens; a thinking block opens as
`{"type":"thinking","thinking":"","signature":""}` and ends with one `signature_delta`; a tool_use
block opens with `"input": {}` and streams its input as `input_json_delta` pieces, the first one
empty. Errors are `{"type":"error","error":{"type","message"},"request_id"}`; mid-stream errors are
an `event: error` frame.

The deterministic model (`build_reply`)
    - tool results in the last user message: text `"Tool said: " + <results joined by " | ">`;
    - else custom tools and `tool_choice` not `none`: `tool_use` blocks (the first tool, the named
      one, or the first two when the first user text says "parallel"), stop_reason `tool_use`;
    - else text `REPLY_PREFIX + <last user text>`, cut by `stop_sequences` and `max_tokens`;
    - `thinking` `enabled`/`adaptive` prepends a thinking block at the start of an assistant turn;
      after tool results (the same turn) only with interleaved thinking (`anthropic-beta:
      interleaved-thinking-2025-05-14`, or `adaptive`/`between_tools`).
    Auth is `x-api-key` or `Authorization: Bearer` (the SDK 2.x default); `anthropic-version` must be
    one of `API_VERSIONS`, and from 2026-10-21 on temperature/top_p/top_k are rejected.

Fault injection by model name (the OpenAI fake's names, see `openai_upstream.parse_fault`, plus one)
    error-<status>          answer <status> with Anthropic's envelope (429 adds `retry-after: 1`,
                            529 is `overloaded_error`)
    slow-<ms>, ttfb-<ms>, drip-<ms>, stall-<ms>, cut-stream, cut-before-body, hang
                            as in the OpenAI fake (cut-stream sends message_start, the first
                            block's start, the ping and two deltas, then drops the connection
                            without message_stop; stall-<ms> pauses after message_start)
    stream-error-<status>   stream normally up to the same point, then send `event: error` with
                            the error for <status> (529: overloaded_error) and end the response
Fault-named models are always accepted; any other model outside `models` is a 404 not_found_error.

Scripted directives: exactly the OpenAI fake's (`openai_upstream.Directive`), consumed one per
`POST /v1/messages`:
    {"status": 529, "headers": {...}, "body": ...}   canned response (no body: Anthropic's envelope)
    {"delay_ms": 200}                                 wait, then answer normally
    {"fault": "<any model-name fault above>"}         e.g. "cut-stream", "cut-before-body", "hang"
    {"fault": "stall-after-first", "stall_ms": 500}   the same as the fault `stall-500`
A canned 4xx/5xx without a body gets Anthropic's envelope; a canned str body is sent verbatim, so
`{"status": 200, "headers": {"content-type": "text/event-stream"}, "body": b"".join(sse_frame(...)
...).decode()}` replays any hand-written stream.

Run standalone:
    python -m tests.fakes.anthropic_upstream --port 8090 [--host 127.0.0.1] [--api-key KEY] [--any-model]
        [--no-record]
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.control import fake_app, run_standalone

from .openai_upstream import (
    Directive,
    FakeUpstreamState,
    Fault,
    RecordedRequest,
    example_for_schema,
    paced_json,
    paced_response,
    pacing_for,
    parse_fault,
    split_evenly,
)

JSONObject = dict[str, Any]

REPLY_PREFIX: Final = "Hello from fake-anthropic: "
TOOL_REPLY_PREFIX: Final = "Tool said: "
THINKING_PREFIX: Final = "Thinking about: "
# Current ids only: the SDK warns (an error under `filterwarnings = error`) for deprecated ones.
DEFAULT_MODELS: Final[tuple[str, ...]] = (
    "claude-sonnet-4-6",
    "claude-opus-4-7",
    "claude-haiku-4-5",
    "claude-haiku-4-5-20251001",
    "fake-model",
)
# Every value the API has documented for the `anthropic-version` header.
API_VERSIONS: Final[tuple[str, ...]] = ("2023-01-01", "2023-06-01", "2026-10-21")
# From this version on, the sampling parameters are rejected even at their default values.
SAMPLING_REMOVED_VERSION: Final = "2026-10-21"
SAMPLING_PARAMETERS: Final = ("temperature", "top_p", "top_k")
INTERLEAVED_THINKING_BETA: Final = "interleaved-thinking-2025-05-14"
MIN_THINKING_BUDGET: Final = 1024
# Charged per message on top of its words, as in the OpenAI fake.
TOKENS_PER_MESSAGE: Final = 3
# A fixed timestamp keeps the model list byte-identical between runs.
MODELS_CREATED_AT: Final = "2025-01-01T00:00:00Z"
# message_start, the first content_block_start, the ping and two deltas: where faults strike.
FRAMES_BEFORE_FAULT: Final = 5

_JSON_CONTENT_TYPE: Final = "application/json"
_SSE_CONTENT_TYPE: Final = "text/event-stream; charset=utf-8"
_BASE62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Words keep their trailing whitespace so that streamed pieces concatenate back to the exact text.
_WORD_PIECES: Final = re.compile(r"\S+\s*|\s+")
_PARALLEL_WORD: Final = re.compile(r"\bparallel\b", re.IGNORECASE)
_STREAM_ERROR_PATTERN: Final = re.compile(r"^stream-error-(\d+)$")
_SIGNATURE_MAGIC: Final = b"fake-anthropic-sig:"
_THINKING_TYPES: Final = ("enabled", "disabled", "adaptive", "between_tools")
_THINKING_DOCS: Final = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"


def _random_id(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(_BASE62) for _ in range(length))


def new_request_id() -> str:
    return _random_id("req_011C", 20)


def new_message_id() -> str:
    return _random_id("msg_01", 22)


def new_tool_use_id() -> str:
    return _random_id("toolu_01", 22)


# --------------------------------------------------------------------------------------------
# Errors in Anthropic's envelope
# --------------------------------------------------------------------------------------------

# The documented HTTP status of every error type.
ERROR_TYPES: Final[Mapping[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for(status: int) -> str:
    return ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def error_payload(type_: str, message: str, request_id: str | None = None) -> JSONObject:
    """Anthropic's error body; the stream's `event: error` frame carries it without request_id."""
    payload: JSONObject = {"type": "error", "error": {"type": type_, "message": message}}
    if request_id is not None:
        payload["request_id"] = request_id
    return payload


class AnthropicAPIError(Exception):
    """An error response in Anthropic's shape, raised anywhere in request handling."""

    def __init__(
        self, status: int, message: str, type_: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_ or error_type_for(status)
        self.headers = dict(headers or {})

    def payload(self, request_id: str | None = None) -> JSONObject:
        return error_payload(self.type, self.message, request_id)

    def response(self, request_id: str | None = None) -> Response:
        request_id = request_id or new_request_id()
        headers = {"request-id": request_id, **self.headers}
        if self.status == 400:
            headers.setdefault("x-should-retry", "false")
        return _json_response(self.payload(request_id), status=self.status, headers=headers)


def invalid_request(message: str) -> AnthropicAPIError:
    return AnthropicAPIError(400, message, "invalid_request_error")


def injected_error(status: int, model: str) -> AnthropicAPIError:
    """The error the real API would plausibly send for `status` (used by `error-<status>`)."""
    messages = {
        400: f"Injected bad request for model '{model}'.",
        401: "invalid x-api-key",
        402: "Injected billing error: your credit balance is too low.",
        403: "Your API key does not have permission to use the specified resource.",
        404: f"model: {model}",
        413: "Request exceeds the maximum allowed number of bytes.",
        429: f"This request would exceed the rate limit for {model} (injected). Please try again in 1s.",
        500: "Internal server error",
        504: "Request timed out",
        529: "Overloaded",
    }
    headers = {"retry-after": "1"} if status == 429 else None
    return AnthropicAPIError(status, messages.get(status, f"Injected HTTP {status} error."), headers=headers)


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


def parse_stream_error(name: str) -> int | None:
    """The status of a `stream-error-<status>` model name (400..599), else None."""
    match = _STREAM_ERROR_PATTERN.match(name)
    if match is None or not 400 <= int(match.group(1)) <= 599:
        return None
    return int(match.group(1))


def is_fault_model(name: str) -> bool:
    return parse_fault(name) is not None or parse_stream_error(name) is not None


# --------------------------------------------------------------------------------------------
# Thinking signatures: opaque to clients, checkable by the fake
# --------------------------------------------------------------------------------------------


def sign_thinking(thinking: str) -> str:
    """A deterministic, self-checking signature for a thought (base64, like the real ones).

    It embeds the thought's hash, so the fake can verify a thinking block passed back in a later
    turn: unchanged thinking text (or the empty text of a `display: omitted` block) with an
    unchanged signature.
    """
    digest = hashlib.sha256(thinking.encode()).digest()
    mac = hashlib.sha256(_SIGNATURE_MAGIC + digest).digest()[:8]
    return base64.b64encode(_SIGNATURE_MAGIC + digest + mac).decode()


def signature_matches(thinking: str, signature: object) -> bool:
    if not isinstance(signature, str):
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        return False
    magic, digest, mac = raw[: len(_SIGNATURE_MAGIC)], raw[len(_SIGNATURE_MAGIC) : -8], raw[-8:]
    if magic != _SIGNATURE_MAGIC or len(digest) != 32 or hashlib.sha256(magic + digest).digest()[:8] != mac:
        return False
    return thinking == "" or hashlib.sha256(thinking.encode()).digest() == digest


# --------------------------------------------------------------------------------------------
# Request content helpers
# --------------------------------------------------------------------------------------------


def _blocks(content: object) -> list[JSONObject]:
    """Content as a list of block objects (a str is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    return []


def message_text(content: object) -> str:
    """Text of a message's content: a string, or its `text` blocks joined by spaces."""
    return " ".join(b["text"] for b in _blocks(content) if b.get("type") == "text" and isinstance(b.get("text"), str))


def tool_result_text(block: JSONObject) -> str:
    """Text of a `tool_result` block, whose content is a string or a list of text blocks."""
    return message_text(block.get("content"))


def tool_results(message: JSONObject) -> list[JSONObject]:
    return [b for b in _blocks(message.get("content")) if b.get("type") == "tool_result"]


def tool_uses(message: JSONObject) -> list[JSONObject]:
    return [b for b in _blocks(message.get("content")) if b.get("type") == "tool_use"]


def count_input_tokens(body: JSONObject) -> int:
    """Whitespace words of the system prompt and of every text and tool_result block, plus
    TOKENS_PER_MESSAGE per message. Tool definitions are free."""
    total = len(message_text(body.get("system")).split())
    for message in body.get("messages") or []:
        words = message_text(message.get("content")).split()
        words += [w for r in tool_results(message) for w in tool_result_text(r).split()]
        total += len(words) + TOKENS_PER_MESSAGE
    return total


def beta_flags(request: Request) -> set[str]:
    """The `anthropic-beta` header's comma-separated names, over all occurrences."""
    return {flag.strip() for value in request.headers.getlist("anthropic-beta") for flag in value.split(",")} - {""}


# --------------------------------------------------------------------------------------------
# The deterministic "model"
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """What the fake model answers: wire-ready content blocks, stop reason and usage."""

    content: tuple[JSONObject, ...]
    stop_reason: str
    stop_sequence: str | None
    input_tokens: int
    output_tokens: int


def _custom_tools(body: JSONObject) -> list[JSONObject]:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    return [
        t
        for t in tools
        if isinstance(t, dict) and t.get("type", "custom") == "custom" and isinstance(t.get("name"), str)
    ]


def _tool_use_block(tool: JSONObject) -> JSONObject:
    example = example_for_schema(tool.get("input_schema") or {"type": "object"})
    # Tool input is always an object, even for a (malformed) non-object schema.
    return {
        "type": "tool_use",
        "id": new_tool_use_id(),
        "name": tool["name"],
        "input": example if isinstance(example, dict) else {},
    }


def _apply_stop_sequences(text: str, stop_sequences: object) -> tuple[str, str | None]:
    """Cut `text` before the earliest stop sequence; returns the text and the sequence hit."""
    if not isinstance(stop_sequences, list):
        return text, None
    hits = [(text.find(s), s) for s in stop_sequences if isinstance(s, str) and s and s in text]
    if not hits:
        return text, None
    position, sequence = min(hits, key=lambda hit: hit[0])
    return text[:position], sequence


def _first_words(text: str, count: int) -> str:
    """The prefix of `text` holding its first `count` whitespace-separated words."""
    if count <= 0:
        return ""
    match = re.match(rf"(?:\s*\S+){{{count}}}", text)
    return match.group(0) if match else text


def _thinks(body: JSONObject, answering_tools: bool, interleaved: bool) -> bool:
    """Whether this turn opens with a thinking block.

    Thinking happens at the start of an assistant turn. A reply to tool results continues the same
    turn, so it only thinks with interleaved thinking: the beta header, `adaptive` (which implies
    it) or `between_tools`.
    """
    thinking = body.get("thinking")
    type_ = thinking.get("type") if isinstance(thinking, dict) else None
    if type_ == "adaptive":
        return True
    if type_ == "enabled":
        return not answering_tools or interleaved
    return type_ == "between_tools" and answering_tools


def build_reply(body: JSONObject, messages: list[JSONObject], *, interleaved: bool = False) -> Reply:
    """Decide the deterministic answer to a validated messages request."""
    input_tokens = count_input_tokens(body)
    last = messages[-1]
    answering = tool_results(last) if last.get("role") == "user" else []
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    user_text = message_text(last_user.get("content")) if last_user is not None else ""

    content: list[JSONObject] = []
    output_words = 0
    if _thinks(body, bool(answering), interleaved):
        thought = THINKING_PREFIX + ("the tool results" if answering else user_text)
        thinking = body["thinking"]
        shown = "" if thinking.get("display") == "omitted" else thought
        content.append({"type": "thinking", "thinking": shown, "signature": sign_thinking(shown)})
        output_words += len(thought.split())  # omitted thinking is still billed

    tools = _custom_tools(body)
    tool_choice: JSONObject = body["tool_choice"] if isinstance(body.get("tool_choice"), dict) else {}
    choice_type = tool_choice.get("type", "auto")
    text: str
    if answering:
        text = TOOL_REPLY_PREFIX + " | ".join(tool_result_text(r) for r in answering)
    elif tools and choice_type != "none":
        if choice_type == "tool":
            chosen = [t for t in tools if t["name"] == tool_choice.get("name")][:1]
        else:
            first_user = next((m for m in messages if m.get("role") == "user"), None)
            wants_parallel = (
                first_user is not None
                and tool_choice.get("disable_parallel_tool_use") is not True
                and len(tools) >= 2
                and _PARALLEL_WORD.search(message_text(first_user.get("content"))) is not None
            )
            chosen = tools[:2] if wants_parallel else tools[:1]
        calls = [_tool_use_block(t) for t in chosen]
        content.extend(calls)
        output_words += sum(len(c["name"].split()) + len(orjson.dumps(c["input"]).split()) for c in calls)
        # Tool calls are never truncated by max_tokens (the fake's calls are a few tokens).
        return Reply(tuple(content), "tool_use", None, input_tokens, max(1, output_words))
    else:
        text = REPLY_PREFIX + user_text

    text, stop_sequence = _apply_stop_sequences(text, body.get("stop_sequences"))
    stop_reason = "end_turn" if stop_sequence is None else "stop_sequence"
    budget = body["max_tokens"] - output_words
    if len(text.split()) > budget:
        text = _first_words(text, budget)
        stop_reason, stop_sequence = "max_tokens", None
    if text:
        content.append({"type": "text", "text": text})
        output_words += len(text.split())
    return Reply(tuple(content), stop_reason, stop_sequence, input_tokens, max(1, output_words))


# --------------------------------------------------------------------------------------------
# Wire objects
# --------------------------------------------------------------------------------------------


def usage_object(input_tokens: int, output_tokens: int) -> JSONObject:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message_object(message_id: str, model: str, reply: Reply) -> JSONObject:
    """A non-streamed message (the response of `POST /v1/messages`)."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(reply.content),
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "usage": usage_object(reply.input_tokens, reply.output_tokens),
    }


def sse_frame(event: str, data: object) -> bytes:
    """One SSE event as Anthropic sends it: an `event:` line, a `data:` line, a blank line."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _event(data: JSONObject) -> bytes:
    return sse_frame(data["type"], data)


def _block_frames(index: int, block: JSONObject) -> tuple[bytes, list[bytes]]:
    """The content_block_start frame of a block and its delta frames."""
    type_ = block["type"]
    deltas: list[JSONObject]
    if type_ == "thinking":
        opening: JSONObject = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": p} for p in _WORD_PIECES.findall(block["thinking"])]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif type_ == "tool_use":
        opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        arguments = orjson.dumps(block["input"]).decode()
        # An empty first piece, then at least three pieces of partial JSON, as the API streams.
        pieces = ["", *split_evenly(arguments, max(3, len(arguments) // 8))]
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
    else:
        opening = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in _WORD_PIECES.findall(block["text"])]
    start = _event({"type": "content_block_start", "index": index, "content_block": opening})
    return start, [_event({"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]


def stream_frames(message_id: str, model: str, reply: Reply) -> list[bytes]:
    """The SSE frames of a streamed answer, from `message_start` to `message_stop`."""
    start = message_object(message_id, model, reply) | {
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage_object(reply.input_tokens, 1),
    }
    frames = [_event({"type": "message_start", "message": start})]
    for index, block in enumerate(reply.content):
        opening, deltas = _block_frames(index, block)
        frames.append(opening)
        if index == 0:
            frames.append(_event({"type": "ping"}))
        frames.extend(deltas)
        frames.append(_event({"type": "content_block_stop", "index": index}))
    usage = usage_object(reply.input_tokens, reply.output_tokens)
    del usage["cache_creation"], usage["service_tier"]  # message_delta carries the cumulative counts only
    frames.append(
        _event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence},
                "usage": usage,
            }
        )
    )
    frames.append(_event({"type": "message_stop"}))
    return frames


def model_object(model_id: str) -> JSONObject:
    return {
        "type": "model",
        "id": model_id,
        "display_name": model_id.replace("-", " ").title(),
        "created_at": MODELS_CREATED_AT,
        "lifecycle": "active",
    }


# --------------------------------------------------------------------------------------------
# Request validation (shallow, in the real API's words where known)
# --------------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_content(index: int, message: JSONObject, is_last: bool) -> None:
    if "content" not in message:
        raise invalid_request(f"messages.{index}.content: Field required")
    content = message["content"]
    if not isinstance(content, str | list):
        raise invalid_request(f"messages.{index}.content: Input should be a valid string or a valid list")
    if isinstance(content, list):
        for position, block in enumerate(content):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise invalid_request(f"messages.{index}.content.{position}.type: Field required")
            if block["type"] == "text" and block.get("text") == "":
                raise invalid_request("messages: text content blocks must be non-empty")
    if not content and not (is_last and message["role"] == "assistant"):
        raise invalid_request(
            f"messages.{index}: all messages must have non-empty content except for the optional final assistant"
            " message"
        )


def _validate_tool_pairing(messages: list[JSONObject]) -> None:
    """Each tool_use needs its tool_result in the next message, and each tool_result its tool_use."""
    for index, message in enumerate(messages):
        if message["role"] == "assistant" and index + 1 < len(messages):
            answered = {r.get("tool_use_id") for r in tool_results(messages[index + 1])}
            missing = [str(u.get("id")) for u in tool_uses(message) if u.get("id") not in answered]
            if missing:
                raise invalid_request(
                    f"messages.{index + 1}: `tool_use` ids were found without `tool_result` blocks immediately"
                    f" after: {', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result`"
                    " block in the next message."
                )
        if message["role"] == "user":
            previous = messages[index - 1] if index > 0 and messages[index - 1]["role"] == "assistant" else {}
            called = {u.get("id") for u in tool_uses(previous)}
            for position, block in enumerate(_blocks(message.get("content"))):
                if block.get("type") == "tool_result" and block.get("tool_use_id") not in called:
                    raise invalid_request(
                        f"messages.{index}.content.{position}: unexpected `tool_use_id` found in `tool_result`"
                        f" blocks: {block.get('tool_use_id')}. Each `tool_result` block must have a corresponding"
                        " `tool_use` block in the previous message."
                    )


def _validate_thinking(body: JSONObject, messages: list[JSONObject], *, counting: bool) -> None:
    thinking = body.get("thinking")
    if thinking is None:
        return
    if not isinstance(thinking, dict) or thinking.get("type") not in _THINKING_TYPES:
        tag = thinking.get("type") if isinstance(thinking, dict) else None
        raise invalid_request(
            f"thinking: Input tag '{tag}' found using 'type' does not match any of the expected tags: "
            + ", ".join(f"'{t}'" for t in _THINKING_TYPES)
        )
    type_ = thinking["type"]
    if type_ == "enabled":
        budget = thinking.get("budget_tokens")
        if budget is None:
            raise invalid_request("thinking.enabled.budget_tokens: Field required")
        if not _is_int(budget):
            raise invalid_request("thinking.enabled.budget_tokens: Input should be a valid integer")
        if budget < MIN_THINKING_BUDGET:
            raise invalid_request(
                f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_THINKING_BUDGET}"
            )
        if not counting and body["max_tokens"] <= budget:
            raise invalid_request(
                "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at"
                f" {_THINKING_DOCS}#max-tokens-and-context-window-size"
            )
    if type_ == "disabled":
        return
    tool_choice = body.get("tool_choice")
    if isinstance(tool_choice, dict) and tool_choice.get("type") in ("any", "tool"):
        raise invalid_request("Thinking may not be enabled when tool_choice forces tool use.")
    # Continuing a turn after tool results: the assistant message that called the tools must
    # start with the thinking block it was given, so gateways must pass thinking blocks back.
    last = messages[-1]
    if len(messages) >= 2 and last["role"] == "user" and tool_results(last):
        calling = messages[-2]
        first = _blocks(calling.get("content"))[:1]
        found = first[0].get("type") if first else "nothing"
        if found not in ("thinking", "redacted_thinking"):
            raise invalid_request(
                f"messages.{len(messages) - 2}.content.0.type: Expected `thinking` or `redacted_thinking`, but found"
                f" `{found}`. When `thinking` is enabled, a final `assistant` message must start with a thinking"
                " block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you"
                " include thinking blocks from previous turns. To avoid this requirement, disable `thinking`."
                f" Please consult our documentation at {_THINKING_DOCS}"
            )


def _validate_signatures(messages: list[JSONObject]) -> None:
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        for position, block in enumerate(_blocks(message.get("content"))):
            if block.get("type") != "thinking":
                continue
            thinking = block.get("thinking")
            if not isinstance(thinking, str) or not signature_matches(thinking, block.get("signature")):
                raise invalid_request(f"messages.{index}.content.{position}: Invalid `signature` in `thinking` block")


def _validate_tools(body: JSONObject) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid_request("tools: Input should be a valid list")
        for index, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise invalid_request(f"tools.{index}: Input should be a valid dictionary")
            if tool.get("type", "custom") != "custom":
                continue  # a server tool: accepted as is
            if not isinstance(tool.get("name"), str):
                raise invalid_request(f"tools.{index}.custom.name: Field required")
            if not isinstance(tool.get("input_schema"), dict):
                raise invalid_request(f"tools.{index}.custom.input_schema: Field required")
    tool_choice = body.get("tool_choice")
    if tool_choice is None:
        return
    if not isinstance(tool_choice, dict) or tool_choice.get("type") not in ("auto", "any", "tool", "none"):
        raise invalid_request(
            "tool_choice: Input tag found using 'type' does not match any of the expected tags: 'auto', 'any',"
            " 'tool', 'none'"
        )
    if tool_choice["type"] == "tool":
        name = tool_choice.get("name")
        if not isinstance(name, str):
            raise invalid_request("tool_choice.tool.name: Field required")
        if name not in {t["name"] for t in _custom_tools(body)}:
            raise invalid_request(f"tool_choice.name: Tool '{name}' not found in 'tools'.")


def validate_body(body: object, *, counting: bool = False) -> tuple[JSONObject, str, list[JSONObject]]:
    """400s for malformed requests; `counting` relaxes what count_tokens does not need."""
    if not isinstance(body, dict):
        raise invalid_request("Input should be a valid dictionary")
    if "model" not in body:
        raise invalid_request("model: Field required")
    model = body["model"]
    if not isinstance(model, str) or not model:
        raise invalid_request("model: Input should be a valid string")
    if not counting:
        if "max_tokens" not in body:
            raise invalid_request("max_tokens: Field required")
        if not _is_int(body["max_tokens"]):
            raise invalid_request("max_tokens: Input should be a valid integer")
        if body["max_tokens"] < 1:
            raise invalid_request("max_tokens: Input should be greater than or equal to 1")
    if "messages" not in body:
        raise invalid_request("messages: Field required")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise invalid_request("messages: Input should be a valid list")
    if not messages:
        raise invalid_request("messages: at least one message is required")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid_request(f"messages.{index}: Input should be a valid dictionary")
        if message.get("role") not in ("user", "assistant"):
            raise invalid_request(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        _validate_content(index, message, index == len(messages) - 1)
    if messages[0]["role"] != "user":
        raise invalid_request('messages: first message must use the "user" role')
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise invalid_request("system: Input should be a valid string or a valid list")
    stop_sequences = body.get("stop_sequences")
    if stop_sequences is not None and (
        not isinstance(stop_sequences, list) or not all(isinstance(s, str) for s in stop_sequences)
    ):
        raise invalid_request("stop_sequences: Input should be a valid list of strings")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise invalid_request("stream: Input should be a valid boolean")
    _validate_tools(body)
    _validate_tool_pairing(messages)
    _validate_thinking(body, messages, counting=counting)
    _validate_signatures(messages)
    return body, model, messages


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


def _json_response(payload: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, headers=headers, media_type=_JSON_CONTENT_TYPE)


class _Handlers:
    """Route handlers bound to one app's state."""

    def __init__(self, state: FakeUpstreamState, *, any_model: bool, api_versions: Sequence[str]) -> None:
        self.state = state
        self.any_model = any_model
        self.api_versions = frozenset(api_versions)

    # -- shared checks ----------------------------------------------------------------------

    async def _record(self, request: Request) -> tuple[Any, bool]:
        """Parse and (when enabled) record the request before anything can fail."""
        raw = await request.body()
        body: Any = None
        parsed = False
        if raw:
            with contextlib.suppress(orjson.JSONDecodeError):
                body, parsed = orjson.loads(raw), True
        if self.state.record:
            self.state.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.url.path,
                    query=request.url.query,
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=body,
                )
            )
        return body, parsed

    def _check_auth(self, request: Request) -> None:
        """`x-api-key` (preferred when both are sent, as the API does) or `Authorization: Bearer`."""
        expected = self.state.api_key
        if expected is None:
            return
        api_key = request.headers.get("x-api-key")
        if api_key is not None:
            if api_key != expected:
                raise AnthropicAPIError(401, "invalid x-api-key")
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AnthropicAPIError(401, "x-api-key header is required")
        if token.strip() != expected:
            raise AnthropicAPIError(401, "Invalid bearer token")

    def _check_version(self, request: Request) -> str:
        values = request.headers.getlist("anthropic-version")
        if not values:
            raise invalid_request("anthropic-version: header is required")
        version = ", ".join(values)
        if version not in self.api_versions:
            raise invalid_request(f'anthropic-version: "{version}" is not a valid version')
        return version

    def _check_model(self, model: str) -> None:
        if not self.any_model and model not in self.state.models and not is_fault_model(model):
            raise AnthropicAPIError(404, f"model: {model}")

    def _validated(
        self, request: Request, body: Any, parsed: bool, *, counting: bool
    ) -> tuple[JSONObject, str, list[JSONObject]]:
        self._check_auth(request)
        version = self._check_version(request)
        if not parsed:
            raise invalid_request("The request body is not valid JSON.")
        body, model, messages = validate_body(body, counting=counting)
        if version >= SAMPLING_REMOVED_VERSION:
            for name in SAMPLING_PARAMETERS:
                if name in body:
                    raise invalid_request(f"{name}: Extra inputs are not permitted")
        self._check_model(model)
        return body, model, messages

    # -- /v1/messages -----------------------------------------------------------------------

    async def messages(self, request: Request) -> Response:
        body, parsed = await self._record(request)
        request_id = new_request_id()
        try:
            return await self._answer(request, body, parsed, request_id)
        except AnthropicAPIError as error:
            return error.response(request_id)

    async def _answer(self, request: Request, body: Any, parsed: bool, request_id: str) -> Response:
        fault: Fault | None = None
        directive = self.state.next_directive()
        if directive is not None:
            if directive.delay_ms > 0:
                await asyncio.sleep(directive.delay_ms / 1000)
            if directive.status is not None:
                return self._canned(directive, body, request_id)
            fault = directive.fault

        body, model, messages = self._validated(request, body, parsed, counting=False)
        fault = fault or parse_fault(model)
        stream_error = parse_stream_error(model)
        if fault is not None and fault.kind == "error":
            raise injected_error(fault.value, model)
        pacing = await pacing_for(fault)

        reply = build_reply(body, messages, interleaved=INTERLEAVED_THINKING_BETA in beta_flags(request))
        message_id = new_message_id()

        if body.get("stream") is True:
            frames = stream_frames(message_id, model, reply)
            if pacing.cut or stream_error is not None:
                frames = frames[:FRAMES_BEFORE_FAULT]
            if stream_error is not None:
                frames.append(sse_frame("error", injected_error(stream_error, model).payload()))
            headers = {"content-type": _SSE_CONTENT_TYPE, "cache-control": "no-cache", "request-id": request_id}
            return paced_response(frames, headers, pacing)

        if stream_error is not None:
            # Without a stream there is no way to fail midway: the error is the whole answer.
            raise injected_error(stream_error, model)
        payload = orjson.dumps(message_object(message_id, model, reply))
        return paced_json(payload, {"request-id": request_id}, pacing)

    @staticmethod
    def _canned(directive: Directive, body: object, request_id: str) -> Response:
        status = directive.status
        assert status is not None
        headers: dict[str, str] = {"content-type": _JSON_CONTENT_TYPE, "request-id": request_id}
        if directive.body is None:
            if status >= 400:
                model = body.get("model") if isinstance(body, dict) else None
                error = injected_error(status, model if isinstance(model, str) else "unknown")
                content = orjson.dumps(error.payload(request_id))
                headers |= error.headers
            else:
                content = b""
        elif isinstance(directive.body, str):
            content = directive.body.encode()
        else:
            content = orjson.dumps(directive.body)
        headers |= directive.headers
        return Response(content, status_code=status, headers=headers)

    # -- /v1/messages/count_tokens ----------------------------------------------------------

    async def count_tokens(self, request: Request) -> Response:
        body, parsed = await self._record(request)
        request_id = new_request_id()
        try:
            body, model, _ = self._validated(request, body, parsed, counting=True)
            fault = parse_fault(model)
            if fault is not None and fault.kind == "error":
                raise injected_error(fault.value, model)
            if fault is not None and fault.kind == "slow":
                await asyncio.sleep(fault.value / 1000)
        except AnthropicAPIError as error:
            return error.response(request_id)
        return _json_response({"input_tokens": count_input_tokens(body)}, headers={"request-id": request_id})

    # -- /v1/models -------------------------------------------------------------------------

    async def list_models(self, request: Request) -> Response:
        await self._record(request)
        request_id = new_request_id()
        try:
            self._check_auth(request)
            self._check_version(request)
        except AnthropicAPIError as error:
            return error.response(request_id)
        data = [model_object(m) for m in self.state.models]
        page = {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
        return _json_response(page, headers={"request-id": request_id})

    async def retrieve_model(self, request: Request) -> Response:
        await self._record(request)
        request_id = new_request_id()
        model_id = request.path_params["model"]
        try:
            self._check_auth(request)
            self._check_version(request)
            if model_id not in self.state.models:
                raise AnthropicAPIError(404, f"model: {model_id}")
        except AnthropicAPIError as error:
            return error.response(request_id)
        return _json_response(model_object(model_id), headers={"request-id": request_id})


async def _anthropic_error_handler(request: Request, exc: Exception) -> Response:
    """Route-level errors (AnthropicAPIError from handlers, 404/405 from routing) in Anthropic's shape."""
    if isinstance(exc, AnthropicAPIError):
        return exc.response()
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return AnthropicAPIError(404, "Not Found").response()
    error = AnthropicAPIError(status, "Method Not Allowed" if status == 405 else "Internal server error")
    response = error.response()
    if isinstance(exc, HTTPException) and exc.headers:
        response.headers.update(exc.headers)  # keeps a 405's Allow header
    return response


def create_app(
    api_key: str | None = None,
    *,
    models: Sequence[str] | None = DEFAULT_MODELS,
    api_versions: Sequence[str] = API_VERSIONS,
    record: bool = True,
) -> Starlette:
    """Build a fresh fake Anthropic upstream with its own state.

    `api_key`: when set, /v1 endpoints require it as `x-api-key` or `Authorization: Bearer`.
    `models`: the known model ids (listed by GET /v1/models); other models are a 404, except
        fault names. None accepts any model.
    `api_versions`: accepted `anthropic-version` values.
    `record`: keep the request log (turn off for long benchmark runs).

    The state is reachable in-process as `app.state.fake` (the OpenAI fake's FakeUpstreamState),
    with `app.state.requests` and `app.state.script` aliasing its request log and directive queue.
    """
    state = FakeUpstreamState(api_key=api_key, models=tuple(models or ()), record=record)
    handlers = _Handlers(state, any_model=models is None, api_versions=api_versions)
    return fake_app(
        state,
        [
            Route("/v1/messages", handlers.messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", handlers.count_tokens, methods=["POST"]),
            Route("/v1/models", handlers.list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", handlers.retrieve_model, methods=["GET"]),
        ],
        error_type=AnthropicAPIError,
        error_handler=_anthropic_error_handler,
        bad_request=invalid_request,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m tests.fakes.anthropic_upstream`."""
    run_standalone(
        "anthropic_upstream",
        "Fake Anthropic Messages API upstream.",
        8090,
        "require this key (x-api-key or Authorization: Bearer)",
        lambda key, record, any_model: create_app(
            api_key=key, models=None if any_model else DEFAULT_MODELS, record=record
        ),
        argv,
    )


if __name__ == "__main__":
    main()
