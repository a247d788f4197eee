"""A fake OpenAI Responses API upstream that speaks the real wire format over real HTTP.

The sibling of `openai_upstream` (Chat Completions) for the Responses API: it answers
`POST /v1/responses` with OpenAI's response object, streams the Responses API's named SSE events
(reasoning summaries, output text and function-call arguments), keeps server-side state the way the
real API does (`store`, `previous_response_id`, `item_reference`, `GET /v1/responses/{id}`), rejects
requests with OpenAI's error envelope, and misbehaves on demand. It is deliberately dumb and
deterministic: the reply is always `"Hello from fake-responses: " + <last user text>`, token counts
are word counts, and function-call arguments are derived from the tool's JSON schema.

Endpoints
    POST   /v1/responses            the fake model (stream and non-stream)
    GET    /v1/responses/{id}       a stored response; DELETE removes it
    GET    /v1/models               model list; GET /v1/models/{id} for one model
    GET    /_fake/requests          every recorded /v1/responses request (DELETE clears them)
    GET    /_fake/script            pending scripted directives; POST appends, DELETE clears
    GET    /_fake/health            readiness probe for out-of-process users

The deterministic model (the Chat fake's rules, on Responses items)
    - The conversation is the stored chain of `previous_response_id` (its context, then its output
      items) followed by this request's `input`; `item_reference`s are replaced by stored items.
    - Trailing `function_call_output` items: the answer is "Tool said: " + their outputs joined by
      " | ".
    - Otherwise, with function tools and `tool_choice` other than "none": `function_call` items for
      the named function, else the first tool (the first two when the first user message says
      "parallel", there are two or more tools and `parallel_tool_calls` is not false).
    - Otherwise the text "Hello from fake-responses: " + the last user message's text.
    - `reasoning.effort` (other than "none") puts a `reasoning` item first, costing a fixed number
      of reasoning tokens per effort (`REASONING_TOKENS`); its `summary` holds one `summary_text`
      when `reasoning.summary` is requested, and it carries `encrypted_content` when `include` has
      "reasoning.encrypted_content" (a checkable `gAAAAA…` token, verified when sent back).
    - `max_output_tokens` (at least 16, as upstream) caps reasoning + visible tokens: the text is cut
      to the budget, the message and the response become `incomplete` with
      `incomplete_details.reason = "max_output_tokens"`, and `usage.output_tokens` equals the cap.

State, as the real API keeps it
    `store` defaults to true. Stored responses can be fetched, deleted and continued with
    `previous_response_id`; their output items (and input items sent with an `id`) can be named by
    `item_reference`. A reasoning input item must either carry its `encrypted_content` (the stateless
    pattern) or name a stored reasoning item by `id`; other items are taken as sent. A `store: false`
    response is never kept, so continuing it fails exactly like an unknown id, and its reasoning can
    only be sent back with `encrypted_content`.

Wire facts taken from OpenAI's documentation, the official SDK's models and recorded traffic
(see the tests): frames are `event: <type>\\ndata: <json>\\n\\n` with no `[DONE]`; every event carries a
`sequence_number` counting from 0; the stream is `response.created`, `response.in_progress`, per
output item `response.output_item.added` … `response.output_item.done` (a message adds its
`output_text` part with `response.content_part.added`, streams `response.output_text.delta`s and
closes with `response.output_text.done` and `response.content_part.done`; a function call streams
`response.function_call_arguments.delta`s and `.done`; a reasoning summary streams
`response.reasoning_summary_part.added`, `response.reasoning_summary_text.delta`s, `.done` and
`response.reasoning_summary_part.done`), then `response.completed` or `response.incomplete`. Delta
events carry an `obfuscation` pad unless `stream_options.include_obfuscation` is false. Errors:
unknown `previous_response_id` → 400 `previous_response_not_found`; unknown model → 400
`model_not_found`; unknown item → 404 "Item with id … not found."; unpaired calls and outputs → 400.

Fault injection by model name (the Chat fake's names, see `openai_upstream.parse_fault`, plus one)
    error-<status>   answer <status> with OpenAI's error envelope (429 adds `retry-after: 1`)
    slow-<ms>        wait <ms> before answering (before the response headers)
    ttfb-<ms>        send headers at once, wait <ms> before the first body byte / SSE frame
    drip-<ms>        wait <ms> between SSE frames
    stall-<ms>       send `response.created`, stay silent <ms>, then finish normally
                     (non-stream: half the JSON body, the pause, the rest)
    cut-stream       stream up to and including the second delta event, then drop the connection
                     (non-stream: half the JSON body, then drop)
    cut-before-body  send the 200 status line and headers, then drop the connection before any
                     body byte
    hang             send nothing at all until the client goes away
    fail-stream      stream up to the same point as cut-stream, then send `response.failed` (error
                     code `server_error`) and end the stream cleanly (non-stream: a 500 server_error)
Fault-named models are always accepted; any other model outside `models` is a 400 model_not_found.
A response that never reaches the client whole (cut-stream, cut-before-body, hang, fail-stream) is
not stored.

Scripted directives: exactly the Chat fake's (`openai_upstream.Directive`), consumed one per
`POST /v1/responses`:
    {"status": 429, "headers": {...}, "body": ...}   canned response (no body: OpenAI's envelope)
    {"delay_ms": 200}                                 wait, then answer normally
    {"fault": "<any model-name fault above>"}         except fail-stream, which is a model name only
    {"fault": "stall-after-first", "stall_ms": 500}   the same as the fault `stall-500`

Run standalone:
    python -m tests.fakes.responses_upstream --port 8091 [--host 127.0.0.1] [--api-key KEY] [--no-record]
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import os
import re
import secrets
import string
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.control import fake_app, run_standalone

from .openai_upstream import (
    FakeAPIError,
    FakeUpstreamState,
    Fault,
    RecordedRequest,
    canned_response,
    error_payload,
    example_for_schema,
    injected_error,
    paced_json,
    paced_response,
    pacing_for,
    parse_fault,
    split_evenly,
)

JSONObject = dict[str, Any]

REPLY_PREFIX: Final = "Hello from fake-responses: "
TOOL_REPLY_PREFIX: Final = "Tool said: "
DEFAULT_MODELS: Final[tuple[str, ...]] = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1-mini",
    "gpt-4.1",
    "o4-mini",
    "gpt-5",
    "gpt-5-mini",
    "fake-model",
)
MODELS_CREATED: Final = 1_700_000_000
# Charged per conversation item on top of its words (an empty conversation still costs something).
TOKENS_PER_ITEM: Final = 3
# Upstream rejects smaller caps with `integer_below_min_value`.
MIN_MAX_OUTPUT_TOKENS: Final = 16
REASONING_EFFORTS: Final = ("none", "minimal", "low", "medium", "high", "xhigh")
REASONING_TOKENS: Final[Mapping[str, int]] = {"minimal": 4, "low": 8, "medium": 16, "high": 32, "xhigh": 64}
ENCRYPTED_CONTENT_INCLUDE: Final = "reasoning.encrypted_content"
# Fernet tokens, which OpenAI's encrypted reasoning looks like, start with this.
ENCRYPTED_PREFIX: Final = "gAAAAA"
FAIL_STREAM: Final = "fail-stream"
SERVER_ERROR_MESSAGE: Final = (
    "An error occurred while processing your request. You can retry your request, or contact us through our "
    "help center at help.openai.com if the error persists. Please include the request ID {request_id} in your "
    "message."
)
MISSING_KEY_MESSAGE: Final = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're "
    "accessing the API from your browser and are prompted for a username and password. You can obtain an API "
    "key from https://platform.openai.com/account/api-keys."
)

_JSON_CONTENT_TYPE: Final = "application/json"
_SSE_CONTENT_TYPE: Final = "text/event-stream; charset=utf-8"
# Words keep their trailing whitespace so that streamed pieces concatenate back to the exact text.
_WORD_PIECES: Final = re.compile(r"\S+\s*|\s+")
_PARALLEL_WORD: Final = re.compile(r"\bparallel\b", re.IGNORECASE)
_ALPHANUMERIC: Final = string.ascii_letters + string.digits
# Streamed deltas are padded to this many characters with `obfuscation`, as recorded upstream.
_OBFUSCATION_BLOCK: Final = 16

_ROLES: Final = ("user", "assistant", "system", "developer")
_INPUT_PART_TYPES: Final = ("input_text", "input_image", "input_file")
_OUTPUT_PART_TYPES: Final = ("output_text", "refusal")
_ITEM_TYPES: Final = ("message", "function_call", "function_call_output", "reasoning", "item_reference")


# --------------------------------------------------------------------------------------------
# Errors in OpenAI's envelope
# --------------------------------------------------------------------------------------------


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> FakeAPIError:
    return FakeAPIError(400, message, "invalid_request_error", param, code)


def missing(param: str) -> FakeAPIError:
    return invalid_request(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def invalid_type(param: str, expected: str, value: object) -> FakeAPIError:
    return invalid_request(
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
        param,
        "invalid_type",
    )


def invalid_value(param: str, value: object, supported: Sequence[str]) -> FakeAPIError:
    quoted = [f"'{s}'" for s in supported]
    listed = " and ".join(quoted) if len(quoted) <= 2 else ", ".join(quoted[:-1]) + f", and {quoted[-1]}"
    return invalid_request(f"Invalid value: '{value}'. Supported values are: {listed}.", param, "invalid_value")


def previous_response_not_found(response_id: str) -> FakeAPIError:
    """Upstream's answer to an unknown, deleted or `store: false` previous_response_id (a 400)."""
    return invalid_request(
        f"Previous response with id '{response_id}' not found.", "previous_response_id", "previous_response_not_found"
    )


def item_not_found(item_id: str) -> FakeAPIError:
    """Upstream's answer to an input item or item_reference whose id was never stored (a 404)."""
    return FakeAPIError(
        404,
        f"Item with id '{item_id}' not found. Items are not persisted when `store` is set to false. "
        "Try again with `store` set to true, or remove this item from your input.",
        "invalid_request_error",
        "input",
    )


def response_not_found(response_id: str) -> FakeAPIError:
    return FakeAPIError(404, f"Response with id '{response_id}' not found.", "invalid_request_error")


def model_not_found(model: str) -> FakeAPIError:
    return invalid_request(f"The requested model '{model}' does not exist.", "model", "model_not_found")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# --------------------------------------------------------------------------------------------
# Ids
# --------------------------------------------------------------------------------------------


def _hex_id(prefix: str) -> str:
    # Upstream ids are the prefix and 48 hex digits (resp_684d4bbc9d98…).
    return prefix + os.urandom(24).hex()


def new_response_id() -> str:
    return _hex_id("resp_")


def new_call_id() -> str:
    return "call_" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(24))


def new_request_id() -> str:
    return "req_" + os.urandom(16).hex()


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


@dataclass
class StoredResponse:
    """A stored response: the object as returned, and the conversation items it answered."""

    response: JSONObject
    context: list[JSONObject]


@dataclass
class ResponsesState(FakeUpstreamState):
    """The Chat fake's state (request log, script queue, api key, models) plus the response store.

    `responses` maps ids to stored responses and `items` maps item ids to stored items; the test
    thread may read both while the server thread writes them (single dict operations are atomic).
    """

    models: tuple[str, ...] = DEFAULT_MODELS
    responses: dict[str, StoredResponse] = field(default_factory=dict)
    items: dict[str, JSONObject] = field(default_factory=dict)

    def store(self, response: JSONObject, context: list[JSONObject]) -> None:
        for item in context:
            item_id = item.get("id")
            if isinstance(item_id, str) and item.get("type") != "item_reference":
                self.items[item_id] = item
        for item in response["output"]:
            self.items[item["id"]] = item
        self.responses[response["id"]] = StoredResponse(copy.deepcopy(response), context)

    def clear_store(self) -> None:
        self.responses.clear()
        self.items.clear()


# --------------------------------------------------------------------------------------------
# Request validation
# --------------------------------------------------------------------------------------------


@dataclass
class ResponsesRequest:
    """A validated `POST /v1/responses` body, with upstream's defaults applied."""

    body: JSONObject
    model: str
    input: list[JSONObject]
    stream: bool
    store: bool
    instructions: str | None
    previous_response_id: str | None
    tools: list[JSONObject]
    tool_choice: str | JSONObject
    parallel_tool_calls: bool
    effort: str | None
    summary: str | None
    include: frozenset[str]
    max_output_tokens: int | None
    obfuscate: bool

    @property
    def functions(self) -> list[JSONObject]:
        return [t for t in self.tools if t.get("type") == "function"]

    @property
    def reasons(self) -> bool:
        return self.effort is not None and self.effort != "none"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional(body: JSONObject, key: str, kind: type | tuple[type, ...], expected: str) -> Any:
    value = body.get(key)
    if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise invalid_type(key, expected, value)
    return value


def _validate_content(param: str, role: str, content: object) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise invalid_type(param, "one of a string or array of input content", content)
    allowed = _OUTPUT_PART_TYPES if role == "assistant" else _INPUT_PART_TYPES
    for index, part in enumerate(content):
        part_param = f"{param}[{index}]"
        if not isinstance(part, dict):
            raise invalid_type(part_param, "an object", part)
        part_type = part.get("type")
        if part_type is None:
            raise missing(f"{part_param}.type")
        if part_type not in allowed:
            raise invalid_value(part_param, part_type, allowed)
        if part_type in ("input_text", "output_text") and not isinstance(part.get("text"), str):
            raise missing(f"{part_param}.text")
        if part_type == "refusal" and not isinstance(part.get("refusal"), str):
            raise missing(f"{part_param}.refusal")


def _validate_item(index: int, item: object) -> JSONObject:
    """One input item, with an easy message (`{"role", "content"}`) given its `type`."""
    param = f"input[{index}]"
    if not isinstance(item, dict):
        raise invalid_type(param, "an object", item)
    item_type = item.get("type")
    if item_type is None and "role" in item:
        item = {"type": "message", **item}
        item_type = "message"
    if item_type is None:
        raise missing(f"{param}.type")
    if item_type not in _ITEM_TYPES:
        raise invalid_value(f"{param}.type", item_type, _ITEM_TYPES)
    if item_type == "message":
        role = item.get("role")
        if role is None:
            raise missing(f"{param}.role")
        if role not in _ROLES:
            raise invalid_value(f"{param}.role", role, _ROLES)
        if "content" not in item:
            raise missing(f"{param}.content")
        _validate_content(f"{param}.content", role, item["content"])
    elif item_type == "function_call":
        for key in ("call_id", "name", "arguments"):
            if not isinstance(item.get(key), str):
                raise missing(f"{param}.{key}")
    elif item_type == "function_call_output":
        if not isinstance(item.get("call_id"), str):
            raise missing(f"{param}.call_id")
        output = item.get("output")
        if output is None:
            raise missing(f"{param}.output")
        if not isinstance(output, str | list):
            raise invalid_type(f"{param}.output", "one of a string or array of output content", output)
    elif item_type == "reasoning":
        if not isinstance(item.get("summary"), list):
            raise missing(f"{param}.summary")
    elif not isinstance(item.get("id"), str):  # item_reference
        raise missing(f"{param}.id")
    return dict(item)


def _validate_tools(body: JSONObject) -> list[JSONObject]:
    """The tools as upstream echoes them: function tools get `description` and `strict` (default true)."""
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid_type("tools", "an array", tools)
    echoed: list[JSONObject] = []
    for index, tool in enumerate(tools):
        param = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise invalid_type(param, "an object", tool)
        if not isinstance(tool.get("type"), str):
            raise missing(f"{param}.type")
        if tool["type"] != "function":
            echoed.append(dict(tool))  # built-in tools are accepted and echoed, but never called
            continue
        # The Chat Completions shape nests these under "function"; upstream rejects it like this.
        if not isinstance(tool.get("name"), str):
            raise missing(f"{param}.name")
        parameters = tool.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise invalid_type(f"{param}.parameters", "an object", parameters)
        strict = tool.get("strict")
        echoed.append(
            {
                "type": "function",
                "description": tool.get("description"),
                "name": tool["name"],
                "parameters": parameters,
                "strict": True if strict is None else strict,
            }
        )
    return echoed


def _validate_tool_choice(body: JSONObject, tools: list[JSONObject]) -> str | JSONObject:
    choice = body.get("tool_choice")
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise invalid_value("tool_choice", choice, ("none", "auto", "required"))
        return choice
    if not isinstance(choice, dict):
        raise invalid_type("tool_choice", "one of a string or object", choice)
    if choice.get("type") != "function":
        return dict(choice)  # hosted-tool choices are echoed and otherwise ignored
    name = choice.get("name")
    if not isinstance(name, str):
        raise missing("tool_choice.name")  # also what the Chat shape {"function": {"name"}} gets
    if not any(t.get("type") == "function" and t["name"] == name for t in tools):
        raise invalid_request(
            f"Tool choice 'function' with name '{name}' not found in 'tools' parameter.", "tool_choice"
        )
    return {"type": "function", "name": name}


def validate_request(body: object) -> ResponsesRequest:
    """OpenAI-style 400s for the parameters the fake relies on (shallow, like upstream's first pass)."""
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    model = body.get("model")
    if model is None:
        raise missing("model")
    if not isinstance(model, str) or not model:
        raise invalid_type("model", "a string", model)

    previous_response_id = _optional(body, "previous_response_id", str, "a string")
    raw_input = body.get("input")
    if raw_input is None:
        if previous_response_id is None:
            raise missing("input")
        items: list[JSONObject] = []
    elif isinstance(raw_input, str):
        items = [{"type": "message", "role": "user", "content": raw_input}]
    elif isinstance(raw_input, list):
        items = [_validate_item(index, item) for index, item in enumerate(raw_input)]
    else:
        raise invalid_type("input", "one of a string or array of input items", raw_input)

    instructions = _optional(body, "instructions", str, "a string")
    stream = _optional(body, "stream", bool, "a boolean")
    store = _optional(body, "store", bool, "a boolean")
    parallel = _optional(body, "parallel_tool_calls", bool, "a boolean")

    max_output_tokens = _optional(body, "max_output_tokens", int, "an integer")
    if max_output_tokens is not None and max_output_tokens < MIN_MAX_OUTPUT_TOKENS:
        raise invalid_request(
            "Invalid 'max_output_tokens': integer below minimum value. "
            f"Expected a value >= {MIN_MAX_OUTPUT_TOKENS}, but got {max_output_tokens} instead.",
            "max_output_tokens",
            "integer_below_min_value",
        )

    include = _optional(body, "include", list, "an array")
    if include is not None and not all(isinstance(i, str) for i in include):
        raise invalid_type("include", "an array of strings", include)

    reasoning = _optional(body, "reasoning", dict, "an object") or {}
    effort = reasoning.get("effort")
    if effort is not None and effort not in REASONING_EFFORTS:
        raise invalid_value("reasoning.effort", effort, REASONING_EFFORTS)
    summary = reasoning.get("summary", reasoning.get("generate_summary"))
    if summary is not None and summary not in ("auto", "concise", "detailed", "none"):
        raise invalid_value("reasoning.summary", summary, ("auto", "concise", "detailed"))

    stream_options = _optional(body, "stream_options", dict, "an object")
    tools = _validate_tools(body)
    return ResponsesRequest(
        body=body,
        model=model,
        input=items,
        stream=stream is True,
        store=store is not False,
        instructions=instructions,
        previous_response_id=previous_response_id,
        tools=tools,
        tool_choice=_validate_tool_choice(body, tools),
        parallel_tool_calls=parallel is not False,
        effort=effort,
        summary=summary if summary != "none" else None,
        include=frozenset(include or ()),
        max_output_tokens=max_output_tokens,
        obfuscate=not (stream_options and stream_options.get("include_obfuscation") is False),
    )


# --------------------------------------------------------------------------------------------
# Conversation state: previous_response_id, item_reference, stored items
# --------------------------------------------------------------------------------------------


def encrypt_reasoning(item_id: str, summary_text: str) -> str:
    """A Fernet-looking token that the fake can verify when the item is sent back."""
    payload = orjson.dumps({"id": item_id, "summary": summary_text})
    return ENCRYPTED_PREFIX + base64.urlsafe_b64encode(payload).decode()


def decrypt_reasoning(token: object) -> JSONObject | None:
    """The payload of a token made by `encrypt_reasoning`, or None when it is not one."""
    if not isinstance(token, str) or not token.startswith(ENCRYPTED_PREFIX):
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(token[len(ENCRYPTED_PREFIX) :].encode()))
    except (binascii.Error, ValueError):
        return None
    return payload if isinstance(payload, dict) and isinstance(payload.get("id"), str) else None


def resolve_conversation(state: ResponsesState, request: ResponsesRequest) -> list[JSONObject]:
    """The conversation a request continues: the previous chain's items, then this request's input.

    Raises upstream's errors for an unknown previous response, unknown items, unverifiable
    encrypted reasoning and unpaired function calls / outputs.
    """
    history: list[JSONObject] = []
    if request.previous_response_id is not None:
        previous = state.responses.get(request.previous_response_id)
        if previous is None:
            raise previous_response_not_found(request.previous_response_id)
        history = [*previous.context, *previous.response["output"]]

    resolved: list[JSONObject] = []
    for index, item in enumerate(request.input):
        if item["type"] == "item_reference":
            stored = state.items.get(item["id"])
            if stored is None:
                raise item_not_found(item["id"])
            resolved.append(copy.deepcopy(stored))
            continue
        if item["type"] == "reasoning":
            # Reasoning travels either by id (stored) or with its encrypted content (stateless).
            item_id = item.get("id")
            if item.get("encrypted_content") is not None:
                if decrypt_reasoning(item["encrypted_content"]) is None:
                    raise invalid_request(
                        f"The encrypted content for item {item_id or 'reasoning'} could not be verified.",
                        "input",
                        "invalid_encrypted_content",
                    )
            elif not isinstance(item_id, str):
                raise missing(f"input[{index}].id")
            elif item_id not in state.items:
                raise item_not_found(item_id)
        resolved.append(item)

    conversation = [*history, *resolved]
    _validate_pairing(conversation)
    return conversation


def _validate_pairing(conversation: list[JSONObject]) -> None:
    calls: set[str] = set()
    answered: set[str] = set()
    for item in conversation:
        if item["type"] == "function_call":
            calls.add(item["call_id"])
        elif item["type"] == "function_call_output":
            if item["call_id"] not in calls:
                raise invalid_request(
                    f"No tool call found for function call output with call_id {item['call_id']}.", "input"
                )
            answered.add(item["call_id"])
    for item in conversation:
        if item["type"] == "function_call" and item["call_id"] not in answered:
            raise invalid_request(f"No tool output found for function call {item['call_id']}.", "input")


# --------------------------------------------------------------------------------------------
# The deterministic "model"
# --------------------------------------------------------------------------------------------


def content_text(content: object) -> str:
    """Text of a message's content: a string, or its text parts joined by spaces."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict)
            and part.get("type") in ("input_text", "output_text")
            and isinstance(part.get("text"), str)
        )
    return ""


def item_text(item: JSONObject) -> str:
    """The words an item contributes to the prompt."""
    kind = item.get("type")
    if kind == "message":
        return content_text(item.get("content"))
    if kind == "function_call":
        return f"{item.get('name', '')} {item.get('arguments', '')}"
    if kind == "function_call_output":
        return content_text(item.get("output"))
    if kind == "reasoning":
        return " ".join(s.get("text", "") for s in item.get("summary") or [] if isinstance(s, dict))
    return ""


def count_input_tokens(instructions: str | None, conversation: Sequence[JSONObject]) -> int:
    """Whitespace words of the instructions and every item, plus TOKENS_PER_ITEM per item."""
    words = len((instructions or "").split()) + sum(len(item_text(i).split()) for i in conversation)
    return words + TOKENS_PER_ITEM * (len(conversation) + (1 if instructions else 0))


@dataclass
class Reply:
    """The answer: output items in order, token counts, and whether the cap cut it short."""

    output: list[JSONObject]
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    incomplete: bool

    def usage(self) -> JSONObject:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.input_tokens + self.output_tokens,
        }


def _message_item(text: str, status: str = "completed") -> JSONObject:
    return {
        "id": _hex_id("msg_"),
        "type": "message",
        "status": status,
        "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}],
        "role": "assistant",
    }


def _function_call_item(tool: JSONObject) -> JSONObject:
    example = example_for_schema(tool.get("parameters") or {"type": "object"})
    arguments = orjson.dumps(example if isinstance(example, dict) else {}).decode()
    return {
        "id": _hex_id("fc_"),
        "type": "function_call",
        "status": "completed",
        "arguments": arguments,
        "call_id": new_call_id(),
        "name": tool["name"],
    }


def _reasoning_item(request: ResponsesRequest, thought: str) -> JSONObject:
    item: JSONObject = {"id": _hex_id("rs_"), "type": "reasoning", "summary": []}
    if request.summary is not None:
        item["summary"] = [{"type": "summary_text", "text": thought}]
    if ENCRYPTED_CONTENT_INCLUDE in request.include:
        item["encrypted_content"] = encrypt_reasoning(item["id"], thought)
    return item


def _item_tokens(item: JSONObject) -> int:
    if item["type"] == "function_call":
        return len(item["name"].split()) + len(item["arguments"].split())
    return len(_WORD_PIECES.findall(item["content"][0]["text"]))


def _chosen_functions(request: ResponsesRequest, conversation: list[JSONObject]) -> list[JSONObject]:
    functions = request.functions
    if not functions or request.tool_choice == "none":
        return []
    if isinstance(request.tool_choice, dict):
        if request.tool_choice.get("type") != "function":
            return functions[:1]
        return [f for f in functions if f["name"] == request.tool_choice["name"]][:1]
    first_user = next((i for i in conversation if i["type"] == "message" and i.get("role") == "user"), None)
    wants_parallel = (
        first_user is not None
        and request.parallel_tool_calls
        and len(functions) >= 2
        and _PARALLEL_WORD.search(content_text(first_user.get("content"))) is not None
    )
    return functions[:2] if wants_parallel else functions[:1]


def build_reply(request: ResponsesRequest, conversation: list[JSONObject]) -> Reply:
    """Decide the deterministic answer to a validated request and its resolved conversation."""
    input_tokens = count_input_tokens(request.instructions, conversation)
    last_user = next((i for i in reversed(conversation) if i["type"] == "message" and i.get("role") == "user"), None)
    user_text = content_text(last_user.get("content")) if last_user is not None else ""

    visible: list[JSONObject]
    if conversation and conversation[-1]["type"] == "function_call_output":
        results: list[str] = []
        for item in reversed(conversation):
            if item["type"] != "function_call_output":
                break
            results.append(content_text(item.get("output")))
        visible = [_message_item(TOOL_REPLY_PREFIX + " | ".join(reversed(results)))]
        thought = "Reading the tool results before answering."
    elif chosen := _chosen_functions(request, conversation):
        visible = [_function_call_item(f) for f in chosen]
        thought = "Deciding to call " + ", ".join(f["name"] for f in chosen) + "."
    else:
        visible = [_message_item(REPLY_PREFIX + user_text)]
        thought = f"Thinking about: {user_text}" if user_text else "Thinking about the request."

    output: list[JSONObject] = []
    reasoning_tokens = 0
    if request.reasons:
        assert request.effort is not None
        output.append(_reasoning_item(request, thought))
        reasoning_tokens = REASONING_TOKENS[request.effort]
    visible_tokens = max(1, sum(_item_tokens(i) for i in visible))
    output_tokens = reasoning_tokens + visible_tokens

    cap = request.max_output_tokens
    if cap is None or output_tokens <= cap:
        return Reply([*output, *visible], input_tokens, output_tokens, reasoning_tokens, incomplete=False)

    # The cap cuts the answer: reasoning first, then as much visible output as still fits.
    budget = cap - reasoning_tokens
    for item in visible:
        if budget <= 0:
            break
        if item["type"] == "message":
            pieces = _WORD_PIECES.findall(item["content"][0]["text"])[:budget]
            output.append(_message_item("".join(pieces), status="incomplete"))
            break
        cost = _item_tokens(item)
        if cost > budget:
            break
        output.append(item)
        budget -= cost
    return Reply(output, input_tokens, cap, min(reasoning_tokens, cap), incomplete=True)


# --------------------------------------------------------------------------------------------
# Wire objects
# --------------------------------------------------------------------------------------------


def response_object(
    response_id: str,
    created_at: int,
    request: ResponsesRequest,
    *,
    status: str,
    output: list[JSONObject],
    usage: JSONObject | None,
    error: JSONObject | None = None,
) -> JSONObject:
    """The `response` object, with every field upstream sends (the request's settings echoed)."""
    body = request.body
    text = body.get("text")
    text_config: JSONObject = text if isinstance(text, dict) else {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": error,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": body.get("max_tool_calls"),
        "model": request.model,
        "output": output,
        "parallel_tool_calls": request.parallel_tool_calls,
        "previous_response_id": request.previous_response_id,
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": request.effort, "summary": request.summary},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": request.store,
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium", **text_config},
        "tool_choice": request.tool_choice,
        "tools": request.tools,
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def sse_frame(event: JSONObject) -> bytes:
    """One SSE frame: `event: <type>` then `data: <json>`, as upstream frames every event."""
    type_: str = event["type"]
    return b"event: " + type_.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


class _EventLog:
    """Builds the event list, numbering events from 0 in emission order."""

    def __init__(self, obfuscate: bool) -> None:
        self.events: list[JSONObject] = []
        self._obfuscate = obfuscate

    def emit(self, type_: str, **fields: Any) -> None:
        self.events.append({"type": type_, "sequence_number": len(self.events), **fields})

    def delta(self, type_: str, delta: str, **fields: Any) -> None:
        extra: JSONObject = {"logprobs": []} if type_ == "response.output_text.delta" else {}
        if self._obfuscate:
            pad = _OBFUSCATION_BLOCK - len(delta) % _OBFUSCATION_BLOCK
            extra["obfuscation"] = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(pad))
        self.emit(type_, **fields, delta=delta, **extra)


def _stream_item(log: _EventLog, index: int, item: JSONObject) -> None:
    where: JSONObject = {"item_id": item["id"], "output_index": index}
    if item["type"] == "reasoning":
        added = {k: v for k, v in item.items() if k != "encrypted_content"} | {"summary": []}
        log.emit("response.output_item.added", output_index=index, item=added)
        for summary_index, part in enumerate(item["summary"]):
            log.emit(
                "response.reasoning_summary_part.added",
                **where,
                summary_index=summary_index,
                part={"type": "summary_text", "text": ""},
            )
            for piece in _WORD_PIECES.findall(part["text"]):
                log.delta("response.reasoning_summary_text.delta", piece, **where, summary_index=summary_index)
            log.emit("response.reasoning_summary_text.done", **where, summary_index=summary_index, text=part["text"])
            log.emit("response.reasoning_summary_part.done", **where, summary_index=summary_index, part=part)
    elif item["type"] == "function_call":
        added = item | {"status": "in_progress", "arguments": ""}
        log.emit("response.output_item.added", output_index=index, item=added)
        # At least three argument pieces so relays are exercised on partial JSON.
        for piece in split_evenly(item["arguments"], max(3, len(item["arguments"]) // 8)):
            log.delta("response.function_call_arguments.delta", piece, **where)
        log.emit("response.function_call_arguments.done", **where, arguments=item["arguments"])
    else:
        added = item | {"status": "in_progress", "content": []}
        log.emit("response.output_item.added", output_index=index, item=added)
        part = item["content"][0]
        text_at = where | {"content_index": 0}
        log.emit("response.content_part.added", **text_at, part=part | {"text": ""})
        for piece in _WORD_PIECES.findall(part["text"]):
            log.delta("response.output_text.delta", piece, **text_at)
        log.emit("response.output_text.done", **text_at, text=part["text"], logprobs=[])
        log.emit("response.content_part.done", **text_at, part=part)
    log.emit("response.output_item.done", output_index=index, item=item)


def stream_events(initial: JSONObject, final: JSONObject, *, obfuscate: bool = True) -> list[JSONObject]:
    """Every event of a streamed response, from `response.created` to the terminal event.

    `initial` is the in-progress response (empty output, null usage) sent by the two opening
    events; `final` the finished one, whose output items are streamed in order and which the
    terminal event (`response.completed`, or `response.incomplete` for status incomplete) carries.
    """
    log = _EventLog(obfuscate)
    log.emit("response.created", response=initial)
    log.emit("response.in_progress", response=initial)
    for index, item in enumerate(final["output"]):
        _stream_item(log, index, item)
    terminal = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
    log.emit(terminal, response=final)
    return log.events


def cut_point(events: Sequence[JSONObject]) -> int:
    """How many events precede a cut: up to and including the second delta (else all but the last)."""
    deltas = 0
    for index, event in enumerate(events):
        if event["type"].endswith(".delta"):
            deltas += 1
            if deltas == 2:
                return index + 1
    return len(events) - 1


def model_object(model_id: str) -> JSONObject:
    return {"id": model_id, "object": "model", "created": MODELS_CREATED, "owned_by": "fake"}


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


def _json_response(payload: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, headers=headers, media_type=_JSON_CONTENT_TYPE)


def _is_fault_model(model: str) -> bool:
    return model == FAIL_STREAM or parse_fault(model) is not None


class _Handlers:
    """Route handlers bound to one app's state."""

    def __init__(self, state: ResponsesState) -> None:
        self.state = state

    def _check_auth(self, request: Request) -> None:
        expected = self.state.api_key
        if expected is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise FakeAPIError(401, MISSING_KEY_MESSAGE, "invalid_request_error")
        if token != expected:
            masked = token[:3] + "*" * 4 + token[-4:] if len(token) > 8 else "*" * len(token)
            raise FakeAPIError(
                401,
                f"Incorrect API key provided: {masked}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                code="invalid_api_key",
            )

    async def _record(self, request: Request) -> tuple[Any, bool]:
        raw = await request.body()
        body: Any = None
        parsed = True
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                parsed = False
        if self.state.record:
            # Recorded before anything can fail, so tests also see rejected and retried attempts.
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

    # -- /v1/responses ----------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        body, parsed = await self._record(request)
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
        if not parsed or body is None:
            raise invalid_request("We could not parse the JSON body of your request.")
        validated = validate_request(body)
        model = validated.model
        fail = model == FAIL_STREAM
        fault = fault or parse_fault(model)
        if not _is_fault_model(model) and model not in self.state.models:
            raise model_not_found(model)

        if fault is not None and fault.kind == "error":
            raise injected_error(fault.value, model)
        pacing = await pacing_for(fault)

        conversation = resolve_conversation(self.state, validated)
        reply = build_reply(validated, conversation)
        response_id = new_response_id()
        created_at = int(time.time())
        request_id = new_request_id()
        status = "incomplete" if reply.incomplete else "completed"
        final = response_object(
            response_id, created_at, validated, status=status, output=reply.output, usage=reply.usage()
        )
        if validated.store and pacing.delivers and not fail:
            self.state.store(final, conversation)

        headers = {"x-request-id": request_id}
        if validated.stream:
            initial = response_object(response_id, created_at, validated, status="in_progress", output=[], usage=None)
            events = stream_events(initial, final, obfuscate=validated.obfuscate)
            if pacing.cut or fail:
                events = events[: cut_point(events)]
            if fail:
                failed = response_object(
                    response_id,
                    created_at,
                    validated,
                    status="failed",
                    output=[],
                    usage=None,
                    error={"code": "server_error", "message": SERVER_ERROR_MESSAGE.format(request_id=request_id)},
                )
                events.append({"type": "response.failed", "sequence_number": len(events), "response": failed})
            headers |= {"content-type": _SSE_CONTENT_TYPE, "cache-control": "no-cache"}
            frames = [sse_frame(e) for e in events]
            return paced_response(frames, headers, pacing)

        if fail:
            raise injected_error(500, model)
        return paced_json(orjson.dumps(final), headers, pacing)

    async def retrieve(self, request: Request) -> Response:
        await self._record(request)
        self._check_auth(request)
        response_id = request.path_params["response_id"]
        stored = self.state.responses.get(response_id)
        if stored is None:
            raise response_not_found(response_id)
        return _json_response(stored.response)

    async def delete(self, request: Request) -> Response:
        await self._record(request)
        self._check_auth(request)
        response_id = request.path_params["response_id"]
        stored = self.state.responses.pop(response_id, None)
        if stored is None:
            raise response_not_found(response_id)
        for item in stored.response["output"]:
            self.state.items.pop(item["id"], None)
        return _json_response({"id": response_id, "object": "response", "deleted": True})

    # -- /v1/models -------------------------------------------------------------------------

    async def list_models(self, request: Request) -> Response:
        self._check_auth(request)
        return _json_response({"object": "list", "data": [model_object(m) for m in self.state.models]})

    async def retrieve_model(self, request: Request) -> Response:
        self._check_auth(request)
        model_id = request.path_params["model"]
        if model_id not in self.state.models:
            raise FakeAPIError(
                404, f"The model '{model_id}' does not exist.", "invalid_request_error", code="model_not_found"
            )
        return _json_response(model_object(model_id))


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
    """Build a fresh fake Responses upstream with its own state and response store.

    `api_key`: when set, /v1 endpoints require `Authorization: Bearer <api_key>`.
    `models`: the models it serves (others are a 400 model_not_found; fault names always work).
    `record`: keep the request log (turn off for long benchmark runs).

    The state is reachable in-process as `app.state.fake` (a ResponsesState), with
    `app.state.requests` and `app.state.script` aliasing its request log and directive queue.
    """
    state = ResponsesState(api_key=api_key, models=tuple(models), record=record)
    handlers = _Handlers(state)
    return fake_app(
        state,
        [
            Route("/v1/responses", handlers.create, methods=["POST"]),
            Route("/v1/responses/{response_id}", handlers.retrieve, methods=["GET"]),
            Route("/v1/responses/{response_id}", handlers.delete, methods=["DELETE"]),
            Route("/v1/models", handlers.list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", handlers.retrieve_model, methods=["GET"]),
        ],
        error_type=FakeAPIError,
        error_handler=_openai_error_handler,
        bad_request=invalid_request,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m tests.fakes.responses_upstream`."""
    run_standalone(
        "responses_upstream",
        "Fake OpenAI Responses API upstream.",
        8092,
        "require 'Authorization: Bearer <key>'",
        lambda key, record, any_model: create_app(api_key=key, record=record),
        argv,
    )


if __name__ == "__main__":
    main()
