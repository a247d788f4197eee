"""A fake OpenAI Chat Completions upstream that speaks the real wire format over real HTTP.

The gateway's relay, fallback and retry logic must be tested against an upstream that produces
byte-for-byte plausible OpenAI responses (including SSE streaming, streamed tool calls and OpenAI's
error envelope) and that can misbehave on demand. This module is that upstream. It is deliberately
dumb and deterministic: the reply is always `"Hello from fake-openai: " + <last user text>`, token
counts are word counts, and tool-call arguments are derived from the tool's JSON schema.

Endpoints
    POST   /v1/chat/completions   the fake model (stream and non-stream)
    GET    /v1/models             model list; GET /v1/models/{id} for one model
    GET    /_fake/requests        recorded chat requests (DELETE clears them)
    GET    /_fake/script          pending scripted directives; POST appends, DELETE clears
    GET    /_fake/health          readiness probe for out-of-process users

Fault injection by model name (see `parse_fault`; every other fake takes the same names)
    error-<status>   answer <status> with OpenAI's error envelope (429 adds `Retry-After: 1`)
    slow-<ms>        wait <ms> before answering (before the response headers)
    ttfb-<ms>        send headers at once, wait <ms> before the first body byte / SSE frame
    drip-<ms>        wait <ms> between SSE frames (lets relay tests observe chunk-by-chunk output)
    stall-<ms>       send the first SSE frame, stay silent <ms>, then finish normally
                     (non-stream: the first half of the JSON body, the pause, the rest)
    cut-stream       send the opening frame and two content frames, then drop the connection
                     (non-stream: half the JSON body, then drop)
    cut-before-body  send the 200 status line and headers (SSE or JSON, with its Content-Length),
                     then drop the connection before any body byte
    hang             send nothing at all until the client goes away (a first-byte timeout)

Scripted directives (consumed one per chat request, oldest first, see `Directive`)
    {"status": 429, "headers": {...}, "body": {...}}   canned response; body defaults to
                                                       OpenAI's error envelope for 4xx/5xx
    {"delay_ms": 200}                                   wait, then handle the request normally
    {"fault": "cut-stream"}                             apply a model-name fault to this request
    {"fault": "stall-after-first", "stall_ms": 500}     the same as the fault `stall-500`
    `delay_ms` combines with `fault` (the wait comes first); `status` excludes `fault`.

Run standalone (benchmarks use a separate process):
    python -m tests.fakes.openai_upstream --port 8089 [--host 127.0.0.1] [--api-key KEY] [--no-record]
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypedDict, cast

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes.control import fake_app, run_standalone

JSONObject = dict[str, Any]

REPLY_PREFIX: Final = "Hello from fake-openai: "
TOOL_REPLY_PREFIX: Final = "Tool said: "
SYSTEM_FINGERPRINT: Final = "fp_fake0penai"
DEFAULT_MODELS: Final[tuple[str, ...]] = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "fake-model")
# A fixed timestamp keeps the model list byte-identical between runs.
MODELS_CREATED: Final = 1_700_000_000
# Charged per message on top of its words, loosely mirroring the per-message overhead real
# tokenizers add, so that an empty conversation still costs something.
TOKENS_PER_MESSAGE: Final = 3

_JSON_CONTENT_TYPE: Final = "application/json"
# The streamed answers' content type (the Copilot and Codex fakes send it too).
SSE_CONTENT_TYPE: Final = "text/event-stream; charset=utf-8"
_DONE_FRAME: Final = b"data: [DONE]\n\n"
# Words keep their trailing whitespace so that the streamed pieces concatenate back to the exact
# reply; the `\s+` branch can only match leading whitespace.
_WORD_PIECES: Final = re.compile(r"\S+\s*|\s+")
_PARALLEL_WORD: Final = re.compile(r"\bparallel\b", re.IGNORECASE)
_FAULT_PATTERN: Final = re.compile(r"^(error|slow|ttfb|drip|stall)-(\d+)$")
# Faults that take no number.
_PLAIN_FAULTS: Final = ("cut-stream", "cut-before-body", "hang")
# The directive spelling of `stall-<ms>`: {"fault": "stall-after-first", "stall_ms": <ms>}.
STALL_AFTER_FIRST: Final = "stall-after-first"


# --------------------------------------------------------------------------------------------
# Errors in OpenAI's envelope
# --------------------------------------------------------------------------------------------


def error_payload(message: str, type_: str, param: str | None = None, code: str | None = None) -> JSONObject:
    """OpenAI's error envelope: `{"error": {"message", "type", "param", "code"}}`."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class FakeAPIError(Exception):
    """An error response in OpenAI's shape, raised anywhere in request handling."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.payload = error_payload(message, type_, param, code)
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return _json_response(self.payload, status=self.status, headers=self.headers)


def injected_error(status: int, model: str) -> FakeAPIError:
    """The error a real upstream would plausibly send for `status` (used by `error-<status>`)."""
    if status == 400:
        return FakeAPIError(400, f"Injected bad request for model '{model}'.", "invalid_request_error")
    if status == 401:
        return FakeAPIError(
            401, "Incorrect API key provided (injected).", "invalid_request_error", code="invalid_api_key"
        )
    if status == 403:
        return FakeAPIError(403, "Injected permission error.", "permission_error")
    if status == 404:
        return FakeAPIError(
            404,
            f"The model '{model}' does not exist or this key cannot use it.",
            "invalid_request_error",
            code="model_not_found",
        )
    if status == 429:
        return FakeAPIError(
            429,
            f"Rate limit reached for {model} (injected). Please try again in 1s.",
            "rate_limit_exceeded",
            code="rate_limit_exceeded",
            headers={"retry-after": "1"},
        )
    if status == 500:
        return FakeAPIError(500, "Injected internal server error.", "server_error")
    if status == 503:
        return FakeAPIError(
            503,
            "Injected overload: the service is unavailable.",
            "service_unavailable_error",
            code="server_is_overloaded",
        )
    type_ = "server_error" if status >= 500 else "invalid_request_error"
    return FakeAPIError(status, f"Injected HTTP {status} error.", type_)


# --------------------------------------------------------------------------------------------
# Faults and scripted directives
# --------------------------------------------------------------------------------------------

FaultKind = Literal["error", "slow", "ttfb", "drip", "stall", "cut-stream", "cut-before-body", "hang"]


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected misbehaviour; `value` is an HTTP status (error) or milliseconds."""

    kind: FaultKind
    value: int = 0


def parse_fault(name: str) -> Fault | None:
    """Map a fault name (`error-429`, `slow-200`, `ttfb-100`, `drip-20`, `stall-500`, `cut-stream`,
    `cut-before-body`, `hang`) to a Fault.

    Anything else (including `error-<n>` outside 400..599) is an ordinary model name.
    """
    if name in _PLAIN_FAULTS:
        return Fault(cast(FaultKind, name))
    match = _FAULT_PATTERN.match(name)
    if match is None:
        return None
    kind, value = match.group(1), int(match.group(2))
    if kind == "error" and not 400 <= value <= 599:
        return None
    return Fault(cast(FaultKind, kind), value)


@dataclass(frozen=True, slots=True)
class Pacing:
    """How a successful answer goes out once its fault (other than `error`) is resolved.

    `first_delay` (ttfb), `gap` (drip) and `stall` (after the first frame) are seconds; `cut` drops the
    connection partway through the body, `headers_only` right after the headers, and `hang` sends nothing.
    """

    first_delay: float = 0.0
    gap: float = 0.0
    stall: float = 0.0
    cut: bool = False
    headers_only: bool = False
    hang: bool = False

    @property
    def delivers(self) -> bool:
        """Whether the client gets the whole answer (a fake that stores answers keeps only those)."""
        return not (self.cut or self.headers_only or self.hang)


async def pacing_for(fault: Fault | None) -> Pacing:
    """Resolve a fault other than `error` (each fake raises its own provider's error for that one).

    `slow` is served here, by waiting before the headers; the others say how the frames are sent.
    """
    if fault is None:
        return Pacing()
    seconds = fault.value / 1000
    match fault.kind:
        case "slow":
            await asyncio.sleep(seconds)
            return Pacing()
        case "ttfb":
            return Pacing(first_delay=seconds)
        case "drip":
            return Pacing(gap=seconds)
        case "stall":
            return Pacing(stall=seconds)
        case "cut-stream":
            return Pacing(cut=True)
        case "cut-before-body":
            return Pacing(headers_only=True)
        case "hang":
            return Pacing(hang=True)
        case _:
            raise ValueError(f"the {fault.kind!r} fault has no pacing")


_DIRECTIVE_KEYS: Final = frozenset({"status", "headers", "body", "delay_ms", "fault", "stall_ms"})


def _directive_fault(obj: Mapping[str, Any]) -> Fault | None:
    """The `fault` of a posted directive (with `stall_ms` for stall-after-first), validated."""
    fault_name = obj.get("fault")
    stall_ms = obj.get("stall_ms")
    if fault_name == STALL_AFTER_FIRST:
        if not isinstance(stall_ms, int) or isinstance(stall_ms, bool) or stall_ms < 0:
            raise ValueError(f"'{STALL_AFTER_FIRST}' needs 'stall_ms', a non-negative integer")
        return Fault("stall", stall_ms)
    if stall_ms is not None:
        raise ValueError(f"'stall_ms' only goes with the fault '{STALL_AFTER_FIRST}'")
    if fault_name is None:
        return None
    fault = parse_fault(fault_name) if isinstance(fault_name, str) else None
    if fault is None:
        raise ValueError(f"'fault' is not a known fault name: {fault_name!r}")
    return fault


@dataclass(frozen=True, slots=True)
class Directive:
    """One scripted behaviour for the next chat request.

    `status` set: answer with that status, `headers` and `body` (a JSON value, or a str sent
    verbatim; omitted for a 4xx/5xx means OpenAI's error envelope for that status), skipping all
    normal handling. Otherwise the request is handled normally after `delay_ms`, with `fault`
    (a model-name fault such as "cut-stream", or "stall-after-first" with `stall_ms`) applied as if
    the model had that name.
    """

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    delay_ms: float = 0.0
    fault: Fault | None = None
    source: JSONObject = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: object) -> Directive:
        """Validate one posted directive; raises TypeError/ValueError saying what is wrong."""
        if not isinstance(obj, dict):
            raise TypeError("each directive must be a JSON object")
        unknown = set(obj) - _DIRECTIVE_KEYS
        if unknown:
            raise ValueError(f"unknown directive keys: {sorted(unknown)}")
        if not obj:
            raise ValueError("empty directive")
        status = obj.get("status")
        if status is not None and (not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599):
            raise ValueError("'status' must be an HTTP status code")
        headers = obj.get("headers") or {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ValueError("'headers' must map strings to strings")
        delay = obj.get("delay_ms", 0)
        if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
            raise ValueError("'delay_ms' must be a non-negative number")
        fault = _directive_fault(obj)
        if fault is not None and status is not None:
            raise ValueError("'fault' and 'status' are mutually exclusive")
        return cls(
            status=status,
            headers={k.lower(): v for k, v in headers.items()},
            body=obj.get("body"),
            delay_ms=float(delay),
            fault=fault,
            source=dict(obj),
        )


class RecordedRequest(TypedDict):
    """One chat request as received. `body` is None when it was not valid JSON."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeUpstreamState:
    """Mutable state of one fake app, shared between the server thread and the test thread.

    Only appends, pops from the left and clears are used, which are atomic on lists and deques
    under the GIL, so no lock is needed. Clearing is done in place because `app.state.requests`
    and `app.state.script` alias these very objects.
    """

    api_key: str | None = None
    models: tuple[str, ...] = DEFAULT_MODELS
    # Off for long benchmark runs, where an ever-growing log would skew memory and latency.
    record: bool = True
    requests: list[RecordedRequest] = field(default_factory=list)
    script: deque[Directive] = field(default_factory=deque)

    def add_script(self, directives: Iterable[object]) -> int:
        """Validate and queue directives (all or none); returns the queue length."""
        parsed = [Directive.from_json(d) for d in directives]
        self.script.extend(parsed)
        return len(self.script)

    def clear_script(self) -> None:
        self.script.clear()

    def clear_requests(self) -> None:
        self.requests.clear()

    def next_directive(self) -> Directive | None:
        try:
            return self.script.popleft()
        except IndexError:
            return None


async def read_and_record(request: Request, state: FakeUpstreamState) -> tuple[Any, bool]:
    """The request's JSON body and whether it parsed (None, False when it is not JSON), logged in
    `state.requests` first when the fake keeps its log: before anything can fail, so tests also see rejected
    and retried attempts."""
    body: Any
    try:
        body, parsed = orjson.loads(await request.body()), True
    except orjson.JSONDecodeError:
        body, parsed = None, False
    if state.record:
        state.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                query=request.url.query,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            )
        )
    return body, parsed


# --------------------------------------------------------------------------------------------
# The deterministic "model"
# --------------------------------------------------------------------------------------------


def message_text(content: object) -> str:
    """Text of a message's content: a string, or the `text` parts of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return ""


def count_prompt_tokens(messages: Sequence[JSONObject]) -> int:
    """Whitespace words of every message's text, plus TOKENS_PER_MESSAGE per message."""
    return sum(len(message_text(m.get("content")).split()) + TOKENS_PER_MESSAGE for m in messages)


def example_for_schema(schema: object, root: object = None, _depth: int = 0) -> Any:
    """A deterministic value that satisfies the common JSON-schema shapes tools declare.

    string -> "test" (or the first enum value / const), integer -> 1, number -> 1.5,
    boolean -> true, array -> one example item, object -> its required properties (all properties
    when none are required). Local `$ref`s (`#/$defs/...`) are followed, as strict tools built
    from pydantic models use them.
    """
    root = schema if root is None else root
    if not isinstance(schema, dict) or _depth > 16:
        return "test"
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return example_for_schema(_resolve_ref(root, ref), root, _depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            # Prefer a non-null alternative: Optional[X] is spelled anyOf [X, null].
            chosen = next((o for o in options if not (isinstance(o, dict) and o.get("type") == "null")), options[0])
            return example_for_schema(chosen, root, _depth + 1)
    type_ = schema.get("type")
    if isinstance(type_, list):
        type_ = next((t for t in type_ if t != "null"), "null")
    if type_ is None:
        type_ = "object" if isinstance(schema.get("properties"), dict) else "string"
    if type_ == "integer":
        return 1
    if type_ == "number":
        return 1.5
    if type_ == "boolean":
        return True
    if type_ == "null":
        return None
    if type_ == "array":
        items = schema.get("items")
        return [example_for_schema(items, root, _depth + 1)] if isinstance(items, dict) else []
    if type_ == "object":
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        required = schema.get("required")
        names = (
            [n for n in required if isinstance(n, str)] if isinstance(required, list) and required else list(properties)
        )
        return {name: example_for_schema(properties.get(name, {}), root, _depth + 1) for name in names}
    return "test"


def _resolve_ref(root: object, ref: str) -> object:
    if not ref.startswith("#/"):
        return None
    node: object = root
    for part in ref[2:].split("/"):
        if not isinstance(node, dict):
            return None
        node = node.get(part.replace("~1", "/").replace("~0", "~"))
    return node


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Reply:
    """What the fake model answers: text, or tool calls (then `text` is None)."""

    text: str | None
    tool_calls: tuple[ToolCall, ...]
    prompt_tokens: int

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"

    @property
    def completion_tokens(self) -> int:
        if self.tool_calls:
            words = sum(len(c.name.split()) + len(c.arguments.split()) for c in self.tool_calls)
        else:
            words = len((self.text or "").split())
        return max(1, words)


def _function_tools(body: JSONObject) -> list[JSONObject]:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    return [
        t["function"]
        for t in tools
        if isinstance(t, dict)
        and t.get("type") == "function"
        and isinstance(t.get("function"), dict)
        and isinstance(t["function"].get("name"), str)
    ]


def _make_tool_call(function: JSONObject) -> ToolCall:
    example = example_for_schema(function.get("parameters") or {"type": "object"})
    # Arguments are always a JSON object, even for a (malformed) non-object parameters schema.
    arguments = orjson.dumps(example if isinstance(example, dict) else {})
    return ToolCall(id="call_" + os.urandom(12).hex(), name=function["name"], arguments=arguments.decode())


def build_reply(body: JSONObject, messages: list[JSONObject]) -> Reply:
    """Decide the deterministic answer to a validated chat request."""
    prompt_tokens = count_prompt_tokens(messages)

    if messages[-1].get("role") == "tool":
        # Answer tool results; several trailing results (a parallel round trip) are joined.
        results: list[str] = []
        for message in reversed(messages):
            if message.get("role") != "tool":
                break
            results.append(message_text(message.get("content")))
        return Reply(TOOL_REPLY_PREFIX + " | ".join(reversed(results)), (), prompt_tokens)

    functions = _function_tools(body)
    tool_choice = body.get("tool_choice")
    if functions and tool_choice != "none":
        if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
            named = tool_choice.get("function")
            wanted = named.get("name") if isinstance(named, dict) else None
            chosen = [f for f in functions if f["name"] == wanted][:1]
            if not chosen:
                raise FakeAPIError(
                    400,
                    f"tool_choice names function {wanted!r}, which is not among 'tools'.",
                    "invalid_request_error",
                    param="tool_choice",
                )
        else:
            first_user = next((m for m in messages if m.get("role") == "user"), None)
            wants_parallel = (
                first_user is not None
                and body.get("parallel_tool_calls") is not False
                and len(functions) >= 2
                and _PARALLEL_WORD.search(message_text(first_user.get("content"))) is not None
            )
            chosen = functions[:2] if wants_parallel else functions[:1]
        return Reply(None, tuple(_make_tool_call(f) for f in chosen), prompt_tokens)

    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    user_text = message_text(last_user.get("content")) if last_user is not None else ""
    return Reply(REPLY_PREFIX + user_text, (), prompt_tokens)


# --------------------------------------------------------------------------------------------
# Wire objects
# --------------------------------------------------------------------------------------------


def usage_object(reply: Reply) -> JSONObject:
    completion = reply.completion_tokens
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": reply.prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion_object(completion_id: str, created: int, model: str, reply: Reply) -> JSONObject:
    """A non-streamed `chat.completion` object."""
    message: JSONObject = {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in reply.tool_calls
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}],
        "usage": usage_object(reply),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def split_evenly(text: str, pieces: int) -> list[str]:
    """Split `text` into `pieces` contiguous parts of near-equal length (fewer if it is shorter)."""
    pieces = max(1, min(pieces, len(text)))
    size, extra = divmod(len(text), pieces)
    parts: list[str] = []
    start = 0
    for i in range(pieces):
        end = start + size + (1 if i < extra else 0)
        parts.append(text[start:end])
        start = end
    return parts


def stream_frames(completion_id: str, created: int, model: str, reply: Reply, include_usage: bool) -> list[bytes]:
    """The SSE frames of a streamed answer, `data: [DONE]` included.

    Layout, as OpenAI sends it: an opening chunk carrying the role, content (or tool-call header)
    deltas, a chunk with an empty delta and the finish_reason, the usage chunk with empty
    `choices` when `stream_options.include_usage` was requested, then `[DONE]`. When usage is
    requested every other chunk carries `"usage": null`, as upstream does.
    """
    base: JSONObject = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }

    def frame(delta: JSONObject, finish_reason: str | None = None) -> bytes:
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        if include_usage:
            chunk["usage"] = None
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    frames: list[bytes] = []
    if reply.tool_calls:
        for index, call in enumerate(reply.tool_calls):
            header: JSONObject = {
                "index": index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            opening: JSONObject = {"tool_calls": [header]}
            if index == 0:
                opening = {"role": "assistant", "content": None, "tool_calls": [header], "refusal": None}
            frames.append(frame(opening))
            # At least three argument pieces so relays are exercised on partial JSON.
            for piece in split_evenly(call.arguments, max(3, len(call.arguments) // 8)):
                frames.append(frame({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    else:
        frames.append(frame({"role": "assistant", "content": "", "refusal": None}))
        for piece in _WORD_PIECES.findall(reply.text or ""):
            frames.append(frame({"content": piece}))
    frames.append(frame({}, reply.finish_reason))
    if include_usage:
        usage_chunk = {**base, "choices": [], "usage": usage_object(reply)}
        frames.append(b"data: " + orjson.dumps(usage_chunk) + b"\n\n")
    frames.append(_DONE_FRAME)
    return frames


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


def _request_id() -> str:
    return "req_" + os.urandom(16).hex()


def _json_response(payload: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, headers=headers, media_type=_JSON_CONTENT_TYPE)


class PacedResponse(Response):
    """Send pre-rendered body frames one ASGI message each, with optional pauses and cut-off.

    Starlette's StreamingResponse cannot delay after the headers or end a response without its
    final empty message; both are needed here. Each frame is its own `http.response.body` send,
    so uvicorn writes it as its own HTTP chunk. `first_delay` comes before the first frame,
    `stall` after it and `gap` between any two. With `complete=False` the final message is never
    sent: uvicorn then closes the connection mid-body (right after the headers when there are no
    frames), which clients see as a protocol error (uvicorn logs "ASGI callable returned without
    completing response." — expected).
    """

    def __init__(
        self,
        frames: Sequence[bytes],
        *,
        status_code: int = 200,
        headers: Mapping[str, str],
        first_delay: float = 0.0,
        gap: float = 0.0,
        stall: float = 0.0,
        complete: bool = True,
    ) -> None:
        # Response.__init__ is bypassed on purpose: it would compute a Content-Length.
        self.status_code = status_code
        self.background = None
        self.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self._frames = frames
        self._first_delay = first_delay
        self._gap = gap
        self._stall = stall
        self._complete = complete

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        for index, chunk in enumerate(self._frames):
            delay = self._first_delay if index == 0 else self._gap + (self._stall if index == 1 else 0.0)
            if delay > 0:
                await asyncio.sleep(delay)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if self._complete:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


class HangingResponse(Response):
    """Never answer, not even the status line, until the client goes away (the `hang` fault).

    The request body has been read by then, so the next `receive()` only returns when uvicorn sees
    the client close the connection (`http.disconnect`); uvicorn logs nothing for a response that
    was never started to a client that left. A server shut down under a hanging request waits for
    its graceful timeout, then cancels it.
    """

    def __init__(self) -> None:
        # Response.__init__ is bypassed: there is nothing to render.
        self.status_code = 0
        self.background = None
        self.raw_headers = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass


def paced_response(frames: Sequence[bytes], headers: Mapping[str, str], pacing: Pacing) -> Response:
    """`frames` (already shortened by the caller when `pacing.cut`, in its format's own way) sent as
    `pacing` says."""
    if pacing.hang:
        return HangingResponse()
    if pacing.headers_only:
        return PacedResponse([], headers=headers, complete=False)
    return PacedResponse(
        frames,
        headers=headers,
        first_delay=pacing.first_delay,
        gap=pacing.gap,
        stall=pacing.stall,
        complete=not pacing.cut,
    )


def _validate_chat_body(body: object) -> tuple[JSONObject, str, list[JSONObject]]:
    """OpenAI-style 400s for the parameters the fake relies on."""
    if not isinstance(body, dict):
        raise FakeAPIError(400, "The request body must be a JSON object.", "invalid_request_error")
    model = body.get("model")
    if model is None:
        raise FakeAPIError(
            400, "Missing required parameter: 'model'.", "invalid_request_error", "model", "missing_required_parameter"
        )
    if not isinstance(model, str) or not model:
        raise FakeAPIError(
            400, "Invalid 'model': expected a non-empty string.", "invalid_request_error", "model", "invalid_type"
        )
    messages = body.get("messages")
    if messages is None:
        raise FakeAPIError(
            400,
            "Missing required parameter: 'messages'.",
            "invalid_request_error",
            "messages",
            "missing_required_parameter",
        )
    if not isinstance(messages, list):
        raise FakeAPIError(
            400, "Invalid 'messages': expected an array.", "invalid_request_error", "messages", "invalid_type"
        )
    if not messages:
        raise FakeAPIError(
            400,
            "Invalid 'messages': expected an array with at least one item.",
            "invalid_request_error",
            "messages",
            "empty_array",
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise FakeAPIError(
                400,
                f"Invalid 'messages[{index}]': expected an object.",
                "invalid_request_error",
                f"messages.[{index}]",
                "invalid_type",
            )
        if not isinstance(message.get("role"), str):
            raise FakeAPIError(
                400,
                f"Missing required parameter: 'messages[{index}].role'.",
                "invalid_request_error",
                f"messages.[{index}].role",
                "missing_required_parameter",
            )
    if body.get("stream_options") is not None and body.get("stream") is not True:
        # Real OpenAI rejects this combination; a gateway must not forward it.
        raise FakeAPIError(
            400, "'stream_options' is only allowed when 'stream' is true.", "invalid_request_error", "stream_options"
        )
    return body, model, messages


def paced_json(
    payload: bytes, headers: Mapping[str, str], pacing: Pacing, *, media_type: str = _JSON_CONTENT_TYPE
) -> Response:
    """A non-streamed JSON answer under `pacing`. It keeps its Content-Length whatever happens; cut-stream
    sends its first half, stall-after-first pauses between its halves, and drip has nothing to pace."""
    if pacing == Pacing():
        return Response(payload, headers=dict(headers), media_type=media_type)
    paced_headers = {**headers, "content-type": media_type, "content-length": str(len(payload))}
    half = len(payload) // 2
    frames = [payload[:half]] if pacing.cut else [payload[:half], payload[half:]] if pacing.stall else [payload]
    return paced_response(frames, paced_headers, pacing)


def canned_response(directive: Directive, body: object) -> Response:
    """A scripted reply: the directive's status, headers and body (OpenAI's error envelope when a 4xx/5xx
    has no body)."""
    status = directive.status
    assert status is not None
    headers: dict[str, str] = {"content-type": _JSON_CONTENT_TYPE}
    if directive.body is None:
        if status >= 400:
            model = body.get("model") if isinstance(body, dict) else None
            error = injected_error(status, model if isinstance(model, str) else "unknown")
            content = orjson.dumps(error.payload)
            headers |= error.headers
        else:
            content = b""
    elif isinstance(directive.body, str):
        content = directive.body.encode()
    else:
        content = orjson.dumps(directive.body)
    headers |= directive.headers
    return Response(content, status_code=status, headers=headers)


class _Handlers:
    """Route handlers bound to one app's state."""

    def __init__(self, state: FakeUpstreamState) -> None:
        self.state = state

    # -- /v1 --------------------------------------------------------------------------------

    def _check_auth(self, request: Request) -> None:
        expected = self.state.api_key
        if expected is None:
            return
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise FakeAPIError(
                401,
                "No API key provided: send it as 'Authorization: Bearer <key>'.",
                "invalid_request_error",
                code="invalid_api_key",
            )
        token = token.strip()
        if token != expected:
            masked = token[:3] + "*" * 4 + token[-4:] if len(token) > 8 else "*" * len(token)
            raise FakeAPIError(
                401, f"Incorrect API key provided: {masked}.", "invalid_request_error", code="invalid_api_key"
            )

    async def chat_completions(self, request: Request) -> Response:
        body, parsed = await read_and_record(request, self.state)
        try:
            return await self._answer(request, body, parsed)
        except FakeAPIError as error:
            return error.response()

    async def _answer(self, request: Request, body: Any, parsed: bool) -> Response:
        fault: Fault | None = None
        directive = self.state.next_directive()
        if directive is not None:
            if directive.delay_ms > 0:
                await asyncio.sleep(directive.delay_ms / 1000)
            if directive.status is not None:
                return canned_response(directive, body)
            fault = directive.fault

        self._check_auth(request)
        if not parsed:
            raise FakeAPIError(400, "The request body is not valid JSON.", "invalid_request_error")
        body, model, messages = _validate_chat_body(body)

        fault = fault or parse_fault(model)
        if fault is not None and fault.kind == "error":
            raise injected_error(fault.value, model)
        pacing = await pacing_for(fault)

        reply = build_reply(body, messages)
        completion_id = "chatcmpl-" + os.urandom(12).hex()
        created = int(time.time())

        if body.get("stream") is True:
            stream_options = body.get("stream_options")
            include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
            frames = stream_frames(completion_id, created, model, reply, include_usage)
            if pacing.cut:
                frames = frames[:3]  # opening chunk + two content (or argument) chunks
            headers = {"content-type": SSE_CONTENT_TYPE, "cache-control": "no-cache", "x-request-id": _request_id()}
            return paced_response(frames, headers, pacing)

        payload = orjson.dumps(completion_object(completion_id, created, model, reply))
        return paced_json(payload, {"x-request-id": _request_id()}, pacing)

    async def list_models(self, request: Request) -> Response:
        self._check_auth(request)
        return _json_response({"object": "list", "data": [self._model(m) for m in self.state.models]})

    async def retrieve_model(self, request: Request) -> Response:
        self._check_auth(request)
        model_id = request.path_params["model"]
        if model_id not in self.state.models:
            raise FakeAPIError(
                404, f"The model '{model_id}' does not exist.", "invalid_request_error", code="model_not_found"
            )
        return _json_response(self._model(model_id))

    @staticmethod
    def _model(model_id: str) -> JSONObject:
        return {"id": model_id, "object": "model", "created": MODELS_CREATED, "owned_by": "fake"}


async def _openai_error_handler(request: Request, exc: Exception) -> Response:
    """Route-level errors (FakeAPIError from handlers, 404/405 from routing) in OpenAI's shape."""
    if isinstance(exc, FakeAPIError):
        return exc.response()
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = exc.headers if isinstance(exc, HTTPException) else None  # keeps a 405's Allow header
    message = f"Invalid URL ({request.method} {request.url.path})."
    if status == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    return _json_response(error_payload(message, "invalid_request_error"), status=status, headers=headers)


def create_app(api_key: str | None = None, *, models: Sequence[str] = DEFAULT_MODELS, record: bool = True) -> Starlette:
    """Build a fresh fake upstream with its own state.

    `api_key`: when set, /v1 endpoints require `Authorization: Bearer <api_key>`.
    `models`: ids listed by GET /v1/models (chat accepts any model name regardless).
    `record`: keep the request log (turn off for long benchmark runs).

    The state is reachable in-process as `app.state.fake` (a FakeUpstreamState), with
    `app.state.requests` and `app.state.script` aliasing its request log and directive queue.
    """
    state = FakeUpstreamState(api_key=api_key, models=tuple(models), record=record)
    handlers = _Handlers(state)
    return fake_app(
        state,
        [
            Route("/v1/chat/completions", handlers.chat_completions, methods=["POST"]),
            Route("/v1/models", handlers.list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", handlers.retrieve_model, methods=["GET"]),
        ],
        error_type=FakeAPIError,
        error_handler=_openai_error_handler,
        bad_request=lambda message: FakeAPIError(400, message, "invalid_request_error"),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m tests.fakes.openai_upstream`."""
    run_standalone(
        "openai_upstream",
        "Fake OpenAI Chat Completions upstream.",
        8089,
        "require 'Authorization: Bearer <key>'",
        lambda key, record, any_model: create_app(api_key=key, record=record),
        argv,
    )


if __name__ == "__main__":
    main()
