"""OpenAI Chat Completions: request validation and usage extraction.

Validation is hand-written and shallow on purpose: it catches what a client gets wrong (malformed JSON,
wrong types, missing fields) with OpenAI's own wording and `param`, costs microseconds, and leaves deeper
checks to the upstream, whose 4xx is relayed faithfully.
"""

from __future__ import annotations

from typing import Any

import orjson

from shared.domain.text import has_control_characters
from shared.domain.usage import Usage
from shared.errors import InvalidRequest

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_ROLE_LIST = "'system', 'assistant', 'user', 'function', 'tool', and 'developer'"

_JSON_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}

# field → (accepted python types, expected description)
_TYPED_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "stream": ((bool,), "a boolean"),
    "stream_options": ((dict,), "an object"),
    "temperature": ((int, float), "a decimal"),
    "top_p": ((int, float), "a decimal"),
    "presence_penalty": ((int, float), "a decimal"),
    "frequency_penalty": ((int, float), "a decimal"),
    "max_tokens": ((int,), "an integer"),
    "max_completion_tokens": ((int,), "an integer"),
    "n": ((int,), "an integer"),
    "seed": ((int,), "an integer"),
    "tools": ((list,), "an array"),
    "tool_choice": ((str, dict), "a string or an object"),
    "parallel_tool_calls": ((bool,), "a boolean"),
    "response_format": ((dict,), "an object"),
    "stop": ((str, list), "a string or an array"),
    "user": ((str,), "a string"),
    "metadata": ((dict,), "an object"),
}


def _type_name(value: object) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _invalid_type(param: str, expected: str, value: object) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid "
            f"JSON: {exc.msg})",
            code="invalid_json",
        ) from exc
    if not isinstance(body, dict):
        raise InvalidRequest(
            f"The request body must be a JSON object, but got {_type_name(body)} instead.", code="invalid_type"
        )
    return body


def validate_chat_request(body: dict[str, Any]) -> None:
    model = body.get("model")
    if model is None:
        raise InvalidRequest("you must provide a model parameter", param="model", code="missing_required_parameter")
    if not isinstance(model, str):
        raise _invalid_type("model", "a string", model)
    if has_control_characters(model):
        raise InvalidRequest(
            "Invalid 'model': control characters are not allowed.", param="model", code="invalid_value"
        )
    if "messages" not in body:
        raise InvalidRequest(
            "Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"
        )
    messages = body["messages"]
    if not isinstance(messages, list):
        raise _invalid_type("messages", "an array", messages)
    if not messages:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise _invalid_type(f"messages[{i}]", "an object", msg)
        role = msg.get("role")
        if role is None:
            raise InvalidRequest(
                f"Missing required parameter: 'messages[{i}].role'.",
                param=f"messages[{i}].role",
                code="missing_required_parameter",
            )
        if role not in ROLES:
            raise InvalidRequest(
                f"Invalid value: {role!r}. Supported values are: {_ROLE_LIST}.",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
        content = msg.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise _invalid_type(f"messages[{i}].content", "a string or an array", content)
    for name, (types, expected) in _TYPED_FIELDS.items():
        if name not in body or body[name] is None:
            continue
        value = body[name]
        # bool is an int in Python, never in JSON: reject true where a number is expected and vice versa.
        if isinstance(value, bool) and bool not in types:
            raise _invalid_type(name, expected, value)
        if not isinstance(value, types):
            raise _invalid_type(name, expected, value)
    tools = body.get("tools")
    if isinstance(tools, list):
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise _invalid_type(f"tools[{i}]", "an object", tool)


def wants_stream(body: dict[str, Any], accept: str | None) -> bool:
    """`stream` decides; with no `stream` field, an SSE `Accept` header asks for a stream."""
    stream = body.get("stream")
    if isinstance(stream, bool):
        return stream
    return bool(accept) and "text/event-stream" in (accept or "")


def _count(value: object) -> int:
    """A token count as upstreams should send it; anything else (strings, lists, negatives) counts as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def usage_from_openai(usage: object) -> Usage | None:
    """Map an OpenAI `usage` object: prompt includes cached; completion includes reasoning.

    Total on purpose: an upstream's malformed usage must never break the answer being relayed.
    """
    if not isinstance(usage, dict):
        return None
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    return Usage(
        input=_count(usage.get("prompt_tokens")),
        output=_count(usage.get("completion_tokens")),
        cached=_count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0,
        reasoning=_count(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else 0,
    )
