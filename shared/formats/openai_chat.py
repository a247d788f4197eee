"""OpenAI Chat Completions: request validation, usage extraction, and translation to and from the
canonical model.

Validation is hand-written and shallow on purpose: it catches what a client gets wrong (malformed JSON,
wrong types, missing fields) with OpenAI's own wording and `param`, costs microseconds, and leaves deeper
checks to the upstream, whose 4xx is relayed faithfully.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from shared.domain.text import has_control_characters
from shared.domain.usage import Usage
from shared.errors import InvalidRequest, NotSupported
from shared.formats.canonical import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    Image,
    Message,
    OutputFormat,
    Part,
    Reasoning,
    Role,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from shared.formats.think_tags import split_think_tags
from shared.formats.thinking import effort_for

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
    cached = _count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    # DeepSeek reports its context-cache hits at the top level instead (api-docs.deepseek.com, "usage")
    cached = cached or _count(usage.get("prompt_cache_hit_tokens"))
    creation = _count(prompt_details.get("cache_write_tokens")) if isinstance(prompt_details, dict) else 0
    return Usage(
        input=_count(usage.get("prompt_tokens")),
        output=_count(usage.get("completion_tokens")),
        cached=cached,
        cache_creation=creation,  # OpenRouter's cache writes (Anthropic and Gemini models behind it)
        reasoning=_count(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else 0,
    )


# ----- translation through the canonical model ------------------------------------------------------------
#
# parse_request/render_request and parse_response/render_response (see shared.formats.registry). Fields
# the canonical model has no place for ride in `extensions` as "openai.<field>" and come back only when
# rendering OpenAI again. Assistant reasoning travels as `reasoning_content` (DeepSeek's convention, which
# thinking models that want their reasoning replayed expect).

_HANDLED_REQUEST_FIELDS = frozenset(
    {
        "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "max_tokens", "max_completion_tokens",
        "temperature", "top_p", "stop", "stream", "response_format", "reasoning_effort", "user",
    }
)  # fmt: skip
_EXT = "openai."
MAX_USER_LENGTH = 64
FINISH_REASONS_IN = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
}
FINISH_REASONS_OUT = {
    FinishReason.STOP: "stop",
    FinishReason.LENGTH: "length",
    FinishReason.TOOL_CALLS: "tool_calls",
    FinishReason.CONTENT_FILTER: "content_filter",
    FinishReason.REFUSAL: "content_filter",
    FinishReason.PAUSE: "length",
    FinishReason.UNKNOWN: "stop",
}
_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,(.*)$", re.S)


def _image_from_url(url: str, detail: str | None) -> Image:
    m = _DATA_URI.match(url)
    if m:
        return Image(data=m.group(2), media_type=m.group(1), detail=detail)
    return Image(url=url, detail=detail)


def _image_url(image: Image) -> dict[str, Any]:
    url = image.url if image.url is not None else f"data:{image.media_type or 'image/png'};base64,{image.data or ''}"
    out: dict[str, Any] = {"url": url}
    if image.detail:
        out["detail"] = image.detail
    return out


def _content_parts(content: object, where: str) -> tuple[Text | Image, ...]:
    if content is None:
        return ()
    if isinstance(content, str):
        return (Text(content),)
    if not isinstance(content, list):
        raise _invalid_type(where, "a string or an array", content)
    parts: list[Text | Image] = []
    for i, item in enumerate(content):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text" and isinstance(item.get("text"), str):
            parts.append(Text(item["text"]))
        elif (
            kind == "image_url"
            and isinstance(item.get("image_url"), dict)
            and isinstance(item["image_url"].get("url"), str)
        ):
            parts.append(_image_from_url(item["image_url"]["url"], item["image_url"].get("detail")))
        elif kind in ("refusal",) and isinstance(item.get("refusal"), str):
            parts.append(Text(item["refusal"]))
        else:
            raise NotSupported(
                f"Content part type {kind!r} at '{where}[{i}]' cannot be translated to another format "
                "(text and image_url parts can).",
                param=f"{where}[{i}]",
            )
    return tuple(parts)


def _render_content(parts: tuple[Part, ...]) -> str | list[dict[str, Any]] | None:
    shown = [p for p in parts if isinstance(p, Text | Image)]
    if not shown:
        return None
    if all(isinstance(p, Text) for p in shown):
        texts = [p for p in shown if isinstance(p, Text)]
        if len(texts) == 1:
            return texts[0].text
    out: list[dict[str, Any]] = []
    for p in shown:
        if isinstance(p, Text):
            out.append({"type": "text", "text": p.text})
        else:
            out.append({"type": "image_url", "image_url": _image_url(p)})
    return out


def _tool_calls(raw: object, where: str) -> list[ToolCall]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _invalid_type(where, "an array", raw)
    calls = []
    for i, call in enumerate(raw):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not isinstance(call.get("id"), str):
            raise InvalidRequest(
                f"'{where}[{i}]' must have an `id` and a `function` with a `name`.",
                param=f"{where}[{i}]",
                code="invalid_value",
            )
        arguments = fn.get("arguments")
        calls.append(
            ToolCall(id=call["id"], name=fn["name"], arguments=arguments if isinstance(arguments, str) else "")
        )
    return calls


def _parse_message(i: int, msg: dict[str, Any]) -> Message:
    role = msg["role"]
    where = f"messages[{i}].content"
    name = msg.get("name") if isinstance(msg.get("name"), str) else None
    if role in ("system", "developer", "user"):
        return Message(Role(role), _content_parts(msg.get("content"), where), name=name)
    if role == "assistant":
        parts: list[Part] = []
        reasoning = msg.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            parts.append(Reasoning(text=reasoning))
        parts.extend(_content_parts(msg.get("content"), where))
        parts.extend(_tool_calls(msg.get("tool_calls"), f"messages[{i}].tool_calls"))
        return Message(Role.ASSISTANT, tuple(parts), name=name)
    if role == "tool":
        call_id = msg.get("tool_call_id")
        if not isinstance(call_id, str):
            raise InvalidRequest(
                f"Missing required parameter: 'messages[{i}].tool_call_id'.",
                param=f"messages[{i}].tool_call_id",
                code="missing_required_parameter",
            )
        return Message(Role.TOOL, (ToolResult(call_id=call_id, content=_content_parts(msg.get("content"), where)),))
    raise NotSupported(f"Messages with role {role!r} cannot be translated to another format.", param=f"messages[{i}]")


def _parse_tools(raw: object) -> tuple[Tool, ...]:
    if not isinstance(raw, list):
        return ()
    tools = []
    for i, tool in enumerate(raw):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise NotSupported(
                f"'tools[{i}]' is not a function tool; only function tools can be translated.", param=f"tools[{i}]"
            )
        tools.append(
            Tool(
                name=fn["name"],
                description=fn.get("description"),
                parameters=fn.get("parameters") or {},
                strict=fn.get("strict"),
            )
        )
    return tuple(tools)


def _parse_tool_choice(raw: object) -> ToolChoice | None:
    if raw is None:
        return None
    if raw in ("auto", "none", "required"):
        return ToolChoice(mode=raw)
    if isinstance(raw, dict) and isinstance(raw.get("function"), dict) and isinstance(raw["function"].get("name"), str):
        return ToolChoice(mode="tool", name=raw["function"]["name"])
    raise InvalidRequest("Invalid 'tool_choice'.", param="tool_choice", code="invalid_value")


def _parse_output_format(raw: object) -> OutputFormat | None:
    if not isinstance(raw, dict):
        return None
    kind = raw.get("type")
    if kind == "json_schema" and isinstance(raw.get("json_schema"), dict):
        spec = raw["json_schema"]
        return OutputFormat(
            kind="json_schema", schema=spec.get("schema"), name=spec.get("name"), strict=spec.get("strict")
        )
    if kind in ("text", "json_object"):
        return OutputFormat(kind=kind)
    raise InvalidRequest("Invalid 'response_format.type'.", param="response_format.type", code="invalid_value")


def parse_request(body: Mapping[str, Any], *, model: str | None = None) -> ChatRequest:
    """An OpenAI Chat Completions body (validated with `validate_chat_request`) as a canonical request."""
    data = dict(body)
    validate_chat_request(data)
    messages = tuple(_parse_message(i, m) for i, m in enumerate(data["messages"]))
    stop = data.get("stop")
    max_tokens = data.get("max_completion_tokens", data.get("max_tokens"))
    extensions = {_EXT + k: v for k, v in data.items() if k not in _HANDLED_REQUEST_FIELDS}
    if "max_completion_tokens" in data:
        extensions[_EXT + "max_completion_tokens"] = True  # render it under the name the client used
    effort = data.get("reasoning_effort")
    return ChatRequest(
        model=model or data["model"],
        messages=messages,
        tools=_parse_tools(data.get("tools")),
        tool_choice=_parse_tool_choice(data.get("tool_choice")),
        parallel_tool_calls=data.get("parallel_tool_calls"),
        max_tokens=max_tokens,
        temperature=data.get("temperature"),
        top_p=data.get("top_p"),
        stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
        stream=data.get("stream") is True,
        output_format=_parse_output_format(data.get("response_format")),
        thinking=Thinking(effort=effort) if isinstance(effort, str) else None,
        user=data.get("user"),
        extensions=extensions,
    )


def _render_message(msg: Message) -> dict[str, Any]:
    if msg.role is Role.TOOL:
        result = next(p for p in msg.parts if isinstance(p, ToolResult))
        content = _render_content(result.content)
        return {"role": "tool", "tool_call_id": result.call_id, "content": content if content is not None else ""}
    out: dict[str, Any] = {"role": msg.role.value}
    content = _render_content(msg.parts)
    if msg.role is Role.ASSISTANT:
        reasoning = "".join(p.text for p in msg.parts if isinstance(p, Reasoning))
        if reasoning:
            out["reasoning_content"] = reasoning
        out["content"] = content
        calls = [p for p in msg.parts if isinstance(p, ToolCall)]
        if calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls
            ]
    else:
        out["content"] = content if content is not None else ""
    if msg.name:
        out["name"] = msg.name
    return out


def render_request(req: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": req.model, "messages": [_render_message(m) for m in req.messages]}
    if req.tools:
        tools = []
        for t in req.tools:
            fn: dict[str, Any] = {"name": t.name}
            if t.description is not None:
                fn["description"] = t.description
            fn["parameters"] = dict(t.parameters)
            if t.strict is not None:
                fn["strict"] = t.strict
            tools.append({"type": "function", "function": fn})
        body["tools"] = tools
    if req.tool_choice is not None:
        choice = req.tool_choice
        body["tool_choice"] = (
            {"type": "function", "function": {"name": choice.name}} if choice.mode == "tool" else choice.mode
        )
    if req.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.max_tokens is not None:
        field_name = "max_completion_tokens" if req.extensions.get(_EXT + "max_completion_tokens") else "max_tokens"
        body[field_name] = req.max_tokens
    for name, value in (("temperature", req.temperature), ("top_p", req.top_p)):
        if value is not None:
            body[name] = value
    if req.user is not None and len(req.user) <= MAX_USER_LENGTH:
        body["user"] = req.user  # longer ids (Claude Code sends a JSON blob) are refused by OpenAI
    if req.stop:
        body["stop"] = list(req.stop)
    if req.stream:
        body["stream"] = True
    if req.output_format is not None:
        fmt = req.output_format
        if fmt.kind == "json_schema":
            spec: dict[str, Any] = {"name": fmt.name or "response"}
            if fmt.schema is not None:
                spec["schema"] = dict(fmt.schema)
            if fmt.strict is not None:
                spec["strict"] = fmt.strict
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
        else:
            body["response_format"] = {"type": fmt.kind}
    if req.thinking is not None and req.thinking.enabled:
        effort = req.thinking.effort
        if effort is None and req.thinking.budget_tokens is not None:
            effort = effort_for(req.thinking.budget_tokens)
        if effort is not None:
            body["reasoning_effort"] = effort
    for key, value in req.extensions.items():
        if key.startswith(_EXT) and key != _EXT + "max_completion_tokens":
            body[key[len(_EXT) :]] = value
    return body


def parse_response(body: Mapping[str, Any], *, model: str | None = None) -> ChatResponse:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise InvalidRequest("An OpenAI chat completion needs a non-empty `choices` array.", param="choices")
    choice = choices[0]
    raw_message = choice.get("message")
    message: dict[str, Any] = raw_message if isinstance(raw_message, dict) else {}
    parts: list[Part] = []
    reasoning = message.get("reasoning_content")
    content = message.get("content")
    if isinstance(reasoning, str) and reasoning:
        parts.append(Reasoning(text=reasoning))
    elif isinstance(content, str):
        thought, content = split_think_tags(content)  # models that write reasoning between <think> tags
        if thought:
            parts.append(Reasoning(text=thought))
    if isinstance(content, str):
        parts.append(Text(content))
    parts.extend(_tool_calls(message.get("tool_calls"), "choices[0].message.tool_calls"))
    extensions = {_EXT + k: body[k] for k in ("system_fingerprint", "service_tier") if body.get(k) is not None}
    return ChatResponse(
        id=str(body.get("id") or ""),
        model=model or str(body.get("model") or ""),
        parts=tuple(parts),
        finish_reason=FINISH_REASONS_IN.get(str(choice.get("finish_reason")), FinishReason.UNKNOWN),
        usage=usage_from_openai(body.get("usage")),
        created=body.get("created") if isinstance(body.get("created"), int) else None,
        extensions=extensions,
    )


def usage_to_openai(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input,
        "completion_tokens": usage.output,
        "total_tokens": usage.input + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cached},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    }


def render_response(resp: ChatResponse) -> dict[str, Any]:
    message = _render_message(Message(Role.ASSISTANT, resp.parts))
    body: dict[str, Any] = {
        "id": resp.id,
        "object": "chat.completion",
        "created": resp.created or 0,
        "model": resp.model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": FINISH_REASONS_OUT[resp.finish_reason]}
        ],
    }
    if resp.usage is not None:
        body["usage"] = usage_to_openai(resp.usage)
    for key, value in resp.extensions.items():
        if key.startswith(_EXT):
            body[key[len(_EXT) :]] = value
    return body


# ----- answers for strict clients ------------------------------------------------------------------------

_RESPONSE_KEYS = frozenset(
    {"id", "object", "created", "model", "choices", "usage", "system_fingerprint", "service_tier"}
)
_CHOICE_KEYS = frozenset({"index", "message", "logprobs", "finish_reason"})
_MESSAGE_KEYS = frozenset(
    {"role", "content", "refusal", "tool_calls", "function_call", "audio", "annotations", "reasoning_content"}
)
_USAGE_KEYS = frozenset(
    {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "completion_tokens_details"}
)


def sanitise_response(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The answer without vendor additions strictly typed OpenAI clients reject (Groq's `x_groq`, usage
    breakdowns, per-choice extras), or None when it has none (the common case: nothing to re-encode).
    `reasoning_content` stays: clients of reasoning models read it."""

    def clean(obj: object, keys: frozenset[str]) -> object:
        if isinstance(obj, dict) and not set(obj) <= keys:
            return {k: v for k, v in obj.items() if k in keys}
        return obj

    changed = False
    out = clean(doc, _RESPONSE_KEYS)
    assert isinstance(out, dict)
    changed |= out is not doc
    if isinstance(out.get("usage"), dict):
        usage = clean(out["usage"], _USAGE_KEYS)
        if usage is not out["usage"]:
            out = {**out, "usage": usage}
            changed = True
    choices = out.get("choices")
    if isinstance(choices, list):
        cleaned = []
        for choice in choices:
            c = clean(choice, _CHOICE_KEYS)
            if isinstance(c, dict) and isinstance(c.get("message"), dict):
                m = clean(c["message"], _MESSAGE_KEYS)
                if m is not c["message"]:
                    c = {**c, "message": m}
            cleaned.append(c)
        if any(a is not b for a, b in zip(cleaned, choices, strict=True)):
            out = {**out, "choices": cleaned}
            changed = True
    return out if changed else None
