"""OpenAI Responses (`POST /v1/responses`): translation to and from the canonical model (requests and
complete responses). The stream side is `shared.formats.openai_responses_stream`.

Where the formats differ, and what was chosen:
- `instructions` is a leading SYSTEM message. Rendering turns a leading SYSTEM message of text parts back
  into `instructions` (texts joined by a blank line); a leading DEVELOPER message stays an input item, as
  Codex sends it. `input` as a string is one user message, and one lone user text renders as a string.
- Input items: `message` (user, system, developer, assistant; content a string or `input_text`,
  `output_text`, `refusal`, `input_image` parts) becomes a message. An assistant turn is every assistant
  item in a row: `reasoning`, assistant `message`s, `function_call`s and `custom_tool_call`s join one
  canonical ASSISTANT message, in order (so two assistant messages in a row become one). A
  `function_call_output` or `custom_tool_call_output` is a TOOL message; its call's canonical id is the
  `call_id`. Other item ids on input items (`msg_...`, `fc_...`, `fco_...`, which Codex 0.169 sends) are
  optional and dropped, and so are `status` and `annotations`.
- Reasoning: the summary texts, joined by a blank line, are `Reasoning.text` (the raw `reasoning_text`
  content when there is no summary); `encrypted_content` is the signature, replayed verbatim. A reasoning
  item's id is optional on input (older Codex builds never sent it; with `store: false` and no
  `encrypted_content` OpenAI looks an id up and fails), so it is kept only to survive a Responses round
  trip: the ids, in the order of the conversation's reasoning parts, ride in `responses.reasoning_ids`, and
  a reasoning part without one renders without an id (none is invented). Reasoning with neither an id
  nor a signature is left out when rendering (OpenAI cannot replay it). `redacted` reasoning renders as
  `encrypted_content` and reads back as a signature (lossy).
- Tools: function tools are canonical tools. `strict` is always rendered (the Responses schema requires
  the field): canonical `None` renders as `false`, and `false` or an absent `strict` parse as `None`, so
  a schema that is not strict-compatible keeps working in every format.
  Codex always sends tools other than functions, so they cannot simply be refused:
  * `custom` (freeform, e.g. Codex's `apply_patch` with a Lark grammar) becomes a function tool taking one
    string parameter `input` (the grammar goes into its description); a call's arguments are
    `{"input":"<text>"}` (`wrap_custom_input`), and render back to `custom_tool_call{input}`.
  * `namespace` groups (Codex's `multi_agent_v1`) are flattened: member `m` of namespace `ns` is the
    function `ns__m`, and a `function_call{namespace: ns, name: m}` is the call `ns__m`.
  * tools the OpenAI server runs itself (web_search*, file_search, code_interpreter, image_generation,
    mcp, tool_search) have no equivalent elsewhere: they are left out of the canonical tools, kept in
    `responses.other_tools` with the custom and namespace definitions, and rendered again (after the
    function tools) only for a Responses upstream. `web_search_call` input items are dropped likewise.
  * other client-executed tool types (local_shell, shell, apply_patch, computer_use...) are NotSupported,
    as is a `tool_choice` naming a hosted tool, `input_file`, `input_image` by `file_id`, and any other
    input item type (`item_reference` included: stored items are resolved elsewhere).
  Rendering a response needs the request's tool kinds (a canonical tool call named `apply_patch` must
  become a `custom_tool_call`): `echo(request)` gives the "responses.*" extensions to put on the
  ChatResponse (and to give the stream encoder); they also echo the request fields a Response carries.
- `tool_choice` auto/none/required/{type: function|custom, name}; `parallel_tool_calls`;
  `max_output_tokens` is `max_tokens`; `temperature`, `top_p`; `user` is the canonical user.
  `reasoning.effort` is `Thinking(effort)` ("none" is thinking turned off; a budget renders as the
  matching effort); `reasoning.summary` rides in `responses.reasoning_summary`, other `reasoning` and
  `text` keys (e.g. `text.verbosity`) in `responses.reasoning` and `responses.text`. `text.format`
  (text, json_object, json_schema{name, schema, strict}) is the output format.
- Every other request field (store, previous_response_id, include, metadata, prompt_cache_key,
  service_tier, truncation, safety_identifier, client_metadata, ...) rides in extensions as
  "responses.<field>" and is rendered back for a Responses upstream only. Responses has no `stop`, `top_k`
  or per-message `name`: those are dropped when rendering, and a tool result's error flag is lost.
- Response: one output item per canonical part (reasoning, `message` with one `output_text`,
  `function_call`/`custom_tool_call`); a message with several content parts reads as several text parts.
  Item ids are deterministic from the response id, `<rs|msg|fc|ctc>_<id without resp_>_<output index>`,
  so golden files and streams agree; ids an upstream chose differently ride in `responses.item_ids`.
  The response id is kept as given (a Chat upstream's `chatcmpl-...` is not renamed).
- Status: STOP, TOOL_CALLS, REFUSAL, PAUSE and UNKNOWN are `completed`; LENGTH and CONTENT_FILTER are
  `incomplete` with `incomplete_details.reason` max_output_tokens / content_filter. Reading back,
  `completed` with tool calls is TOOL_CALLS and with a refusal part REFUSAL. `created_at` 0 means unknown.
  The fields a Response echoes from its request (tools, tool_choice, parallel_tool_calls, ...) render with
  OpenAI's defaults unless "responses.<field>" extensions say otherwise; parsing keeps only the ones that
  differ from those defaults, so a response round-trips exactly.
- Usage: `input_tokens` includes cached (`cached_tokens`) and cache-write (`cache_write_tokens`) tokens;
  `output_tokens` includes `reasoning_tokens`, as the canonical usage counts them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

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
from shared.formats.thinking import effort_for

_EXT = "responses."
REASONING_SUMMARY = _EXT + "reasoning_summary"
REASONING_IDS = _EXT + "reasoning_ids"
OTHER_TOOLS = _EXT + "other_tools"
ITEM_IDS = _EXT + "item_ids"
_INTERNAL = frozenset({REASONING_SUMMARY, REASONING_IDS, OTHER_TOOLS, ITEM_IDS})

_HANDLED_REQUEST_FIELDS = frozenset(
    {
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
        "temperature", "top_p", "stream", "text", "reasoning", "user",
    }
)  # fmt: skip
_HANDLED_RESPONSE_FIELDS = frozenset(
    {"id", "object", "created_at", "status", "incomplete_details", "model", "output", "usage"}
)
# What a Response says about its request when nobody told us otherwise (OpenAI's values for a bare request).
RESPONSE_DEFAULTS: Mapping[str, Any] = {
    "error": None,
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "temperature": None,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": None,
    "truncation": "disabled",
}
# Request fields a Response echoes (see `echo`).
_ECHOED = (
    "instructions", "max_output_tokens", "metadata", "parallel_tool_calls", "previous_response_id",
    "prompt_cache_key", "reasoning", "safety_identifier", "service_tier", "store", "temperature", "text",
    "tool_choice", "tools", "top_p", "truncation", "user",
)  # fmt: skip
# Tools OpenAI's servers run themselves: nothing to call on another upstream.
HOSTED_TOOLS = frozenset(
    {
        "web_search", "web_search_preview", "web_search_preview_2025_03_11", "web_search_2025_08_26",
        "file_search", "code_interpreter", "image_generation", "mcp", "tool_search",
    }
)  # fmt: skip
NAMESPACE_SEPARATOR = "__"

_JSON_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}
_TYPED_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "instructions": ((str,), "a string"),
    "stream": ((bool,), "a boolean"),
    "temperature": ((int, float), "a decimal"),
    "top_p": ((int, float), "a decimal"),
    "max_output_tokens": ((int,), "an integer"),
    "tools": ((list,), "an array"),
    "tool_choice": ((str, dict), "a string or an object"),
    "parallel_tool_calls": ((bool,), "a boolean"),
    "text": ((dict,), "an object"),
    "reasoning": ((dict,), "an object"),
    "user": ((str,), "a string"),
    "metadata": ((dict,), "an object"),
    "previous_response_id": ((str,), "a string"),
}
_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,(.*)$", re.S)
_CUSTOM_INPUT = "input"


def _type_name(value: object) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _invalid_type(param: str, expected: str, value: object) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def _required_str(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if value is None:
        raise _missing(f"{where}.{key}")
    if not isinstance(value, str):
        raise _invalid_type(f"{where}.{key}", "a string", value)
    return value


def validate_request(body: Mapping[str, Any], *, model: str | None = None) -> None:
    """Shallow checks with OpenAI's wording; deeper ones are the upstream's."""
    if model is None:
        if body.get("model") is None:
            raise InvalidRequest("you must provide a model parameter", param="model", code="missing_required_parameter")
        if not isinstance(body["model"], str):
            raise _invalid_type("model", "a string", body["model"])
    raw_input = body.get("input")
    if raw_input is not None and not isinstance(raw_input, str | list):
        raise _invalid_type("input", "a string or an array", raw_input)
    for name, (types, expected) in _TYPED_FIELDS.items():
        value = body.get(name)
        if value is None:
            continue
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise _invalid_type(name, expected, value)


# ----- custom and namespaced tools --------------------------------------------------------------------------


def wrap_custom_input(text: str) -> str:
    """A freeform tool's input as the canonical JSON arguments `{"input":"..."}` (no spaces, non-ASCII kept)."""
    return '{"' + _CUSTOM_INPUT + '":' + json.dumps(text, ensure_ascii=False) + "}"


def unwrap_custom_input(arguments: str) -> str:
    """The freeform text back out of canonical arguments; text that is not our wrapping passes as is."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get(_CUSTOM_INPUT), str):
        return str(value[_CUSTOM_INPUT])
    return arguments


def namespaced_name(namespace: str, name: str) -> str:
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}"


class ToolKinds:
    """Which canonical tool names are freeform (`custom`) tools, and which are namespace members, in a
    Responses `tools` list (the request's, or the one a response echoes)."""

    __slots__ = ("custom", "namespaced")

    def __init__(self, tools: object) -> None:
        self.custom: dict[str, dict[str, Any]] = {}  # canonical name → the custom tool definition
        self.namespaced: dict[str, tuple[str, str]] = {}  # canonical name → (namespace, member name)
        for tool in tools if isinstance(tools, list) else ():
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                continue
            if tool.get("type") == "custom":
                self.custom[tool["name"]] = tool
            elif tool.get("type") == "namespace":
                for member in tool.get("tools") or ():
                    if isinstance(member, dict) and isinstance(member.get("name"), str):
                        self.namespaced[namespaced_name(tool["name"], member["name"])] = (
                            tool["name"],
                            member["name"],
                        )

    @classmethod
    def of_response(cls, extensions: Mapping[str, Any]) -> ToolKinds:
        return cls(extensions.get(_EXT + "tools"))


def _function_tool(tool: Mapping[str, Any], where: str, *, namespace: str | None = None) -> Tool:
    name = _required_str(tool, "name", where)
    description = tool.get("description")
    parameters = tool.get("parameters")
    return Tool(
        name=namespaced_name(namespace, name) if namespace else name,
        description=description if isinstance(description, str) else None,
        parameters=parameters if isinstance(parameters, dict) else {},
        strict=True if tool.get("strict") is True else None,
    )


def _custom_tool(tool: Mapping[str, Any], where: str) -> Tool:
    name = _required_str(tool, "name", where)
    note = "The raw input text for this tool (free-form text, not JSON)."
    fmt = tool.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
        note += f" It must match this {fmt.get('syntax') or 'lark'} grammar:\n{fmt['definition']}"
    description = tool.get("description")
    return Tool(
        name=name,
        description=description if isinstance(description, str) else None,
        parameters={
            "type": "object",
            "properties": {_CUSTOM_INPUT: {"type": "string", "description": note}},
            "required": [_CUSTOM_INPUT],
            "additionalProperties": False,
        },
    )


def _parse_tools(raw: object) -> tuple[tuple[Tool, ...], list[dict[str, Any]]]:
    if raw is None:
        return (), []
    if not isinstance(raw, list):
        raise _invalid_type("tools", "an array", raw)
    tools: list[Tool] = []
    others: list[dict[str, Any]] = []
    for i, tool in enumerate(raw):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise _invalid_type(where, "an object", tool)
        kind = tool.get("type")
        if kind == "function":
            tools.append(_function_tool(tool, where))
        elif kind == "custom":
            tools.append(_custom_tool(tool, where))
            others.append(tool)
        elif kind == "namespace":
            namespace = _required_str(tool, "name", where)
            members = tool.get("tools")
            if not isinstance(members, list):
                raise _invalid_type(f"{where}.tools", "an array", members)
            for j, member in enumerate(members):
                if not isinstance(member, dict) or member.get("type") != "function":
                    raise NotSupported(
                        f"'{where}.tools[{j}]' is not a function tool; only function tools can be translated "
                        "inside a namespace.",
                        param=f"{where}.tools[{j}]",
                    )
                tools.append(_function_tool(member, f"{where}.tools[{j}]", namespace=namespace))
            others.append(tool)
        elif kind in HOSTED_TOOLS:
            others.append(tool)  # run by OpenAI's servers: kept for a Responses upstream only
        else:
            raise NotSupported(
                f"'{where}' is a {kind!r} tool, which only OpenAI's Responses API can run; function, custom, "
                "namespace and OpenAI-hosted tools can be translated.",
                param=where,
            )
    return tuple(tools), others


def _render_tools(req: ChatRequest, kinds: ToolKinds) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    namespaces_done: set[str] = set()
    others = req.extensions.get(OTHER_TOOLS) or []
    namespace_defs = {t["name"]: t for t in others if isinstance(t, dict) and t.get("type") == "namespace"}
    for tool in req.tools:
        if tool.name in kinds.custom:
            out.append(kinds.custom[tool.name])
            continue
        if tool.name in kinds.namespaced:
            namespace = kinds.namespaced[tool.name][0]
            if namespace not in namespaces_done:
                namespaces_done.add(namespace)
                out.append(namespace_defs[namespace])
            continue
        fn: dict[str, Any] = {"type": "function", "name": tool.name}
        if tool.description is not None:
            fn["description"] = tool.description
        fn["parameters"] = dict(tool.parameters)
        fn["strict"] = tool.strict is True
        out.append(fn)
    out.extend(t for t in others if isinstance(t, dict) and t.get("type") not in ("custom", "namespace"))
    return out


def _parse_tool_choice(raw: object) -> ToolChoice | None:
    if raw is None:
        return None
    if raw in ("auto", "none", "required"):
        return ToolChoice(mode=raw)
    if isinstance(raw, dict) and raw.get("type") in ("function", "custom") and isinstance(raw.get("name"), str):
        return ToolChoice(mode="tool", name=raw["name"])
    if isinstance(raw, dict):
        raise NotSupported(
            f"A tool_choice of type {raw.get('type')!r} cannot be translated; 'auto', 'none', 'required' and "
            "{'type': 'function' | 'custom', 'name': ...} can.",
            param="tool_choice",
        )
    raise InvalidRequest(f"Invalid value: {raw!r}.", param="tool_choice", code="invalid_value")


def _render_tool_choice(choice: ToolChoice, kinds: ToolKinds) -> str | dict[str, Any]:
    if choice.mode != "tool":
        return choice.mode
    kind = "custom" if choice.name in kinds.custom else "function"
    return {"type": kind, "name": choice.name}


# ----- content --------------------------------------------------------------------------------------------


def _image(part: Mapping[str, Any], where: str) -> Image:
    url = part.get("image_url")
    if isinstance(part.get("file_id"), str) and url is None:
        raise NotSupported(
            f"'{where}' names an uploaded file (file_id), which only OpenAI can read; send the image as "
            "image_url (a URL or a data URL) instead.",
            param=where,
        )
    if not isinstance(url, str):
        raise _missing(f"{where}.image_url")
    detail = part.get("detail")
    detail = detail if isinstance(detail, str) and detail != "auto" else None
    m = _DATA_URI.match(url)
    if m:
        return Image(data=m.group(2), media_type=m.group(1), detail=detail)
    return Image(url=url, detail=detail)


def _render_image(image: Image) -> dict[str, Any]:
    url = image.url if image.url is not None else f"data:{image.media_type or 'image/png'};base64,{image.data or ''}"
    return {"type": "input_image", "image_url": url, "detail": image.detail or "auto"}


def _content(content: object, where: str) -> list[Text | Image]:
    """Message or tool-output content: a string, or a list of parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [Text(content)]
    if not isinstance(content, list):
        raise _invalid_type(where, "a string or an array", content)
    parts: list[Text | Image] = []
    for i, part in enumerate(content):
        here = f"{where}[{i}]"
        if not isinstance(part, dict):
            raise _invalid_type(here, "an object", part)
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            parts.append(Text(_required_str(part, "text", here)))
        elif kind == "refusal":
            parts.append(Text(_required_str(part, "refusal", here)))
        elif kind == "input_image":
            parts.append(_image(part, here))
        else:
            raise NotSupported(
                f"Content part type {kind!r} at '{here}' cannot be translated to another format "
                "(input_text, output_text, refusal and input_image parts can).",
                param=here,
            )
    return parts


def _render_input_content(parts: Sequence[Part]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, Text):
            out.append({"type": "input_text", "text": p.text})
        elif isinstance(p, Image):
            out.append(_render_image(p))
    return out


def _render_output(content: Sequence[Text | Image]) -> str | list[dict[str, Any]]:
    if all(isinstance(p, Text) for p in content) and len(content) <= 1:
        return content[0].text if content and isinstance(content[0], Text) else ""
    return _render_input_content(content)


# ----- requests -------------------------------------------------------------------------------------------


def _reasoning_text(item: Mapping[str, Any]) -> str:
    texts = [s["text"] for s in item.get("summary") or () if isinstance(s, dict) and isinstance(s.get("text"), str)]
    if not texts:
        texts = [
            c["text"]
            for c in item.get("content") or ()
            if isinstance(c, dict) and c.get("type") == "reasoning_text" and isinstance(c.get("text"), str)
        ]
    return "\n\n".join(texts)


def _reasoning(item: Mapping[str, Any]) -> Reasoning:
    encrypted = item.get("encrypted_content")
    return Reasoning(text=_reasoning_text(item), signature=encrypted if isinstance(encrypted, str) else None)


def _call_name(item: Mapping[str, Any], where: str) -> str:
    name = _required_str(item, "name", where)
    namespace = item.get("namespace")
    return namespaced_name(namespace, name) if isinstance(namespace, str) and namespace else name


def _parse_input(raw: object) -> tuple[list[Message], list[str | None]]:
    if raw is None:
        return [], []
    if isinstance(raw, str):
        return [Message(Role.USER, (Text(raw),))], []
    assert isinstance(raw, list)  # validate_request checked
    messages: list[Message] = []
    reasoning_ids: list[str | None] = []
    turn: list[Part] = []  # the assistant turn being collected

    def close_turn() -> None:
        if turn:
            messages.append(Message(Role.ASSISTANT, tuple(turn)))
            turn.clear()

    for i, item in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _invalid_type(where, "an object", item)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role == "assistant":
                turn.extend(_content(item.get("content"), f"{where}.content"))
            elif role in ("user", "system", "developer"):
                close_turn()
                messages.append(Message(Role(role), tuple(_content(item.get("content"), f"{where}.content"))))
            elif role is None:
                raise _missing(f"{where}.role")
            else:
                raise InvalidRequest(
                    f"Invalid value: {role!r}. Supported values are: 'user', 'assistant', 'system', and 'developer'.",
                    param=f"{where}.role",
                    code="invalid_value",
                )
        elif kind == "function_call":
            arguments = item.get("arguments")
            turn.append(
                ToolCall(
                    id=_required_str(item, "call_id", where),
                    name=_call_name(item, where),
                    arguments=arguments if isinstance(arguments, str) else "",
                )
            )
        elif kind == "custom_tool_call":
            text = item.get("input")
            turn.append(
                ToolCall(
                    id=_required_str(item, "call_id", where),
                    name=_call_name(item, where),
                    arguments=wrap_custom_input(text if isinstance(text, str) else ""),
                )
            )
        elif kind == "reasoning":
            turn.append(_reasoning(item))
            reasoning_ids.append(item["id"] if isinstance(item.get("id"), str) else None)
        elif kind in ("function_call_output", "custom_tool_call_output"):
            close_turn()
            call_id = _required_str(item, "call_id", where)
            content = tuple(_content(item.get("output"), f"{where}.output"))
            messages.append(Message(Role.TOOL, (ToolResult(call_id=call_id, content=content),)))
        elif kind == "web_search_call":
            continue  # a record of OpenAI's own search; its findings are in the answer that follows
        elif kind == "item_reference":
            raise NotSupported(
                f"'{where}' is an item_reference; stored items cannot be looked up for this request. Send the "
                "item itself instead.",
                param=where,
            )
        else:
            raise NotSupported(
                f"Input items of type {kind!r} ('{where}') cannot be translated to another format (message, "
                "reasoning, function_call, custom_tool_call and their outputs can).",
                param=where,
            )
    close_turn()
    return messages, reasoning_ids


def _parse_output_format(text: Mapping[str, Any]) -> OutputFormat | None:
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise _invalid_type("text.format", "an object", fmt)
    kind = fmt.get("type")
    if kind == "json_schema":
        schema = fmt.get("schema")
        name = fmt.get("name")
        strict = fmt.get("strict")
        return OutputFormat(
            kind="json_schema",
            schema=schema if isinstance(schema, dict) else None,
            name=name if isinstance(name, str) else None,
            strict=strict if isinstance(strict, bool) else None,
        )
    if kind in ("text", "json_object"):
        return OutputFormat(kind=kind)
    raise InvalidRequest(f"Invalid value: {kind!r}.", param="text.format.type", code="invalid_value")


def _render_output_format(fmt: OutputFormat) -> dict[str, Any]:
    if fmt.kind != "json_schema":
        return {"type": fmt.kind}
    out: dict[str, Any] = {"type": "json_schema", "name": fmt.name or "response"}
    if fmt.schema is not None:
        out["schema"] = dict(fmt.schema)
    if fmt.strict is not None:
        out["strict"] = fmt.strict
    return out


def parse_request(body: Mapping[str, Any], *, model: str | None = None) -> ChatRequest:
    """A Responses create-request body as a canonical request."""
    data = dict(body)
    validate_request(data, model=model)
    messages, reasoning_ids = _parse_input(data.get("input"))
    instructions = data.get("instructions")
    if isinstance(instructions, str):
        messages.insert(0, Message(Role.SYSTEM, (Text(instructions),)))
    tools, other_tools = _parse_tools(data.get("tools"))
    extensions: dict[str, Any] = {_EXT + k: v for k, v in data.items() if k not in _HANDLED_REQUEST_FIELDS}
    if other_tools:
        extensions[OTHER_TOOLS] = other_tools
    if any(rid is not None for rid in reasoning_ids):
        extensions[REASONING_IDS] = reasoning_ids
    thinking = None
    reasoning = data.get("reasoning") or {}
    effort = reasoning.get("effort")
    if effort == "none":
        thinking = Thinking(enabled=False)
    elif isinstance(effort, str):
        thinking = Thinking(effort=effort)
    if reasoning.get("summary") is not None:
        extensions[REASONING_SUMMARY] = reasoning["summary"]
    rest = {k: v for k, v in reasoning.items() if k not in ("effort", "summary")}
    if rest:
        extensions[_EXT + "reasoning"] = rest
    text = data.get("text") or {}
    rest = {k: v for k, v in text.items() if k != "format"}
    if rest:
        extensions[_EXT + "text"] = rest
    return ChatRequest(
        model=model or data["model"],
        messages=tuple(messages),
        tools=tools,
        tool_choice=_parse_tool_choice(data.get("tool_choice")),
        parallel_tool_calls=data.get("parallel_tool_calls"),
        max_tokens=data.get("max_output_tokens"),
        temperature=data.get("temperature"),
        top_p=data.get("top_p"),
        stream=data.get("stream") is True,
        output_format=_parse_output_format(text),
        thinking=thinking,
        user=data.get("user"),
        extensions=extensions,
    )


class _InputRenderer:
    def __init__(self, kinds: ToolKinds, reasoning_ids: Sequence[str | None]) -> None:
        self.kinds = kinds
        self.reasoning_ids = list(reasoning_ids)
        self.reasoning_seen = 0
        self.custom_calls: set[str] = set()
        self.items: list[dict[str, Any]] = []

    def message(self, msg: Message) -> None:
        if msg.role is Role.TOOL:
            for result in (p for p in msg.parts if isinstance(p, ToolResult)):
                kind = "custom_tool_call_output" if result.call_id in self.custom_calls else "function_call_output"
                self.items.append({"type": kind, "call_id": result.call_id, "output": _render_output(result.content)})
        elif msg.role is Role.ASSISTANT:
            texts: list[dict[str, Any]] = []
            for part in msg.parts:
                if isinstance(part, Text):
                    texts.append({"type": "output_text", "text": part.text})
                    continue
                self._flush(texts)
                if isinstance(part, Reasoning):
                    self._reasoning(part)
                elif isinstance(part, ToolCall):
                    self.items.append(self._call(part))
            self._flush(texts)
        else:
            self.items.append({"type": "message", "role": msg.role.value, "content": _render_input_content(msg.parts)})

    def _flush(self, texts: list[dict[str, Any]]) -> None:
        if texts:
            self.items.append({"type": "message", "role": "assistant", "content": list(texts)})
            texts.clear()

    def _reasoning(self, part: Reasoning) -> None:
        index = self.reasoning_seen
        self.reasoning_seen += 1
        item_id = self.reasoning_ids[index] if index < len(self.reasoning_ids) else None
        encrypted = part.redacted if part.redacted is not None else part.signature
        if item_id is None and encrypted is None:
            return  # nothing OpenAI could replay
        item: dict[str, Any] = {"type": "reasoning"}
        if item_id is not None:
            item["id"] = item_id
        item["summary"] = [{"type": "summary_text", "text": part.text}] if part.text else []
        if encrypted is not None:
            item["encrypted_content"] = encrypted
        self.items.append(item)

    def _call(self, call: ToolCall) -> dict[str, Any]:
        if call.name in self.kinds.custom:
            self.custom_calls.add(call.id)
            return {
                "type": "custom_tool_call",
                "call_id": call.id,
                "name": call.name,
                "input": unwrap_custom_input(call.arguments),
            }
        item: dict[str, Any] = {"type": "function_call", "call_id": call.id, "name": call.name}
        if call.name in self.kinds.namespaced:
            item["namespace"], item["name"] = self.kinds.namespaced[call.name]
        item["arguments"] = call.arguments
        return item


def _thinking_effort(thinking: Thinking | None) -> str | None:
    if thinking is None:
        return None
    if not thinking.enabled:
        return "none"
    if thinking.effort is not None:
        return thinking.effort
    return effort_for(thinking.budget_tokens) if thinking.budget_tokens is not None else None


def _render_params(req: ChatRequest, kinds: ToolKinds) -> dict[str, Any]:
    """Everything but `model`, `instructions` and `input`."""
    body: dict[str, Any] = {}
    if req.tools or req.extensions.get(OTHER_TOOLS):
        body["tools"] = _render_tools(req, kinds)
    if req.tool_choice is not None:
        body["tool_choice"] = _render_tool_choice(req.tool_choice, kinds)
    if req.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.max_tokens is not None:
        body["max_output_tokens"] = req.max_tokens
    for name, value in (("temperature", req.temperature), ("top_p", req.top_p), ("user", req.user)):
        if value is not None:
            body[name] = value
    if req.stream:
        body["stream"] = True
    reasoning: dict[str, Any] = dict(req.extensions.get(_EXT + "reasoning") or {})
    effort = _thinking_effort(req.thinking)
    if effort is not None:
        reasoning["effort"] = effort
    if req.extensions.get(REASONING_SUMMARY) is not None:
        reasoning["summary"] = req.extensions[REASONING_SUMMARY]
    if reasoning:
        body["reasoning"] = reasoning
    text: dict[str, Any] = dict(req.extensions.get(_EXT + "text") or {})
    if req.output_format is not None:
        text["format"] = _render_output_format(req.output_format)
    if text:
        body["text"] = text
    for key, value in req.extensions.items():
        field = key[len(_EXT) :]
        if key.startswith(_EXT) and key not in _INTERNAL and field not in _HANDLED_REQUEST_FIELDS:
            body[field] = value
    return body


def _split_instructions(messages: Sequence[Message]) -> tuple[str | None, Sequence[Message]]:
    if messages and messages[0].role is Role.SYSTEM and all(isinstance(p, Text) for p in messages[0].parts):
        return "\n\n".join(p.text for p in messages[0].parts if isinstance(p, Text)), messages[1:]
    return None, messages


def render_request(req: ChatRequest) -> dict[str, Any]:
    kinds = ToolKinds(req.extensions.get(OTHER_TOOLS))
    body: dict[str, Any] = {"model": req.model}
    instructions, messages = _split_instructions(req.messages)
    if instructions is not None:
        body["instructions"] = instructions
    if (
        len(messages) == 1
        and messages[0].role is Role.USER
        and len(messages[0].parts) == 1
        and isinstance(messages[0].parts[0], Text)
    ):
        body["input"] = messages[0].parts[0].text
    elif messages:
        renderer = _InputRenderer(kinds, req.extensions.get(REASONING_IDS) or ())
        for msg in messages:
            renderer.message(msg)
        body["input"] = renderer.items
    body.update(_render_params(req, kinds))
    return body


def echo(req: ChatRequest) -> dict[str, Any]:
    """The "responses.*" extensions a response to `req` needs (put them on the ChatResponse before
    `render_response`, and give them to `ResponsesStreamEncoder`): the request fields a Response echoes,
    among them `tools`, which say which calls are freeform or namespaced."""
    kinds = ToolKinds(req.extensions.get(OTHER_TOOLS))
    params = _render_params(req, kinds)
    instructions, _ = _split_instructions(req.messages)
    if instructions is not None:
        params["instructions"] = instructions
    if "reasoning" in params:
        params["reasoning"] = {"effort": None, "summary": None, **params["reasoning"]}
    return {_EXT + k: params[k] for k in _ECHOED if k in params}


# ----- responses ------------------------------------------------------------------------------------------

_ITEM_PREFIXES = {"reasoning": "rs", "message": "msg", "function_call": "fc", "custom_tool_call": "ctc"}


def item_id(response_id: str, kind: str, output_index: int) -> str:
    """The deterministic id of output item `output_index` (`kind` is the item type)."""
    stem = response_id.removeprefix("resp_")
    return f"{_ITEM_PREFIXES[kind]}_{stem}_{output_index}"


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def usage_from_responses(usage: object) -> Usage | None:
    """A Responses `usage` object; total on purpose (a malformed count is 0, never an error)."""
    if not isinstance(usage, dict):
        return None
    inputs = usage.get("input_tokens_details")
    outputs = usage.get("output_tokens_details")
    inputs = inputs if isinstance(inputs, dict) else {}
    outputs = outputs if isinstance(outputs, dict) else {}
    return Usage(
        input=_count(usage.get("input_tokens")),
        output=_count(usage.get("output_tokens")),
        cached=_count(inputs.get("cached_tokens")),
        cache_creation=_count(inputs.get("cache_write_tokens")),
        reasoning=_count(outputs.get("reasoning_tokens")),
    )


def usage_to_responses(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input,
        "input_tokens_details": {"cached_tokens": usage.cached, "cache_write_tokens": usage.cache_creation},
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": usage.input + usage.output,
    }


def status_for(finish: FinishReason) -> tuple[str, dict[str, Any] | None]:
    """A finish reason as a Response `status` and `incomplete_details`."""
    if finish is FinishReason.LENGTH:
        return "incomplete", {"reason": "max_output_tokens"}
    if finish is FinishReason.CONTENT_FILTER:
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def finish_for(status: object, incomplete: object, *, calls: bool, refusal: bool) -> FinishReason:
    """A Response's `status` (and `incomplete_details`) as a finish reason."""
    if status == "completed":
        if calls:
            return FinishReason.TOOL_CALLS
        return FinishReason.REFUSAL if refusal else FinishReason.STOP
    if status == "incomplete":
        reason = incomplete.get("reason") if isinstance(incomplete, dict) else None
        if reason == "max_output_tokens":
            return FinishReason.LENGTH
        if reason == "content_filter":
            return FinishReason.CONTENT_FILTER
    return FinishReason.UNKNOWN


def output_item(
    part: Part, response_id: str, output_index: int, kinds: ToolKinds, ids: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """One canonical answer part as a completed Response output item (None for parts an answer cannot
    hold). The stream encoder and `render_response` both build items here, so they agree."""

    def ident(kind: str) -> str:
        chosen = (ids or {}).get(str(output_index))
        return chosen if isinstance(chosen, str) else item_id(response_id, kind, output_index)

    if isinstance(part, Reasoning):
        item: dict[str, Any] = {"id": ident("reasoning"), "type": "reasoning"}
        item["summary"] = [{"type": "summary_text", "text": part.text}] if part.text else []
        encrypted = part.redacted if part.redacted is not None else part.signature
        if encrypted is not None:
            item["encrypted_content"] = encrypted
        return item
    if isinstance(part, Text):
        return {
            "id": ident("message"),
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": part.text, "annotations": []}],
        }
    if isinstance(part, ToolCall):
        if part.name in kinds.custom:
            return {
                "id": ident("custom_tool_call"),
                "type": "custom_tool_call",
                "call_id": part.id,
                "name": part.name,
                "input": unwrap_custom_input(part.arguments),
            }
        item = {"id": ident("function_call"), "type": "function_call", "status": "completed", "call_id": part.id}
        if part.name in kinds.namespaced:
            item["namespace"], item["name"] = kinds.namespaced[part.name]
        else:
            item["name"] = part.name
        item["arguments"] = part.arguments
        return item
    return None


def response_object(
    response_id: str,
    model: str,
    created: int | None,
    status: str,
    extensions: Mapping[str, Any],
    *,
    incomplete: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Response object without `output` and `usage`: identity, status, and the echoed request fields
    (OpenAI's defaults, overridden by "responses.<field>" extensions)."""
    body: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created or 0,
        "status": status,
        **RESPONSE_DEFAULTS,
        "incomplete_details": incomplete,
        "model": model,
    }
    for key, value in extensions.items():
        if key.startswith(_EXT) and key not in _INTERNAL:
            body[key[len(_EXT) :]] = value
    return body


def parse_response(body: Mapping[str, Any], *, model: str | None = None) -> ChatResponse:
    output = body.get("output")
    if not isinstance(output, list):
        raise InvalidRequest("A Responses answer needs an `output` array.", param="output")
    response_id = str(body.get("id") or "")
    parts: list[Part] = []
    ids: dict[str, str] = {}
    calls = refusal = False
    for item in output:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        before = len(parts)
        if kind == "reasoning":
            parts.append(_reasoning(item))
        elif kind == "message":
            for content in item.get("content") or ():
                if not isinstance(content, dict):
                    continue
                if content.get("type") == "output_text" and isinstance(content.get("text"), str):
                    parts.append(Text(content["text"]))
                elif content.get("type") == "refusal" and isinstance(content.get("refusal"), str):
                    parts.append(Text(content["refusal"]))
                    refusal = True
        elif kind == "function_call" and isinstance(item.get("name"), str):
            arguments = item.get("arguments")
            parts.append(
                ToolCall(
                    str(item.get("call_id") or item.get("id") or ""),
                    _call_name(item, "output"),
                    arguments if isinstance(arguments, str) else "",
                )
            )
            calls = True
        elif kind == "custom_tool_call" and isinstance(item.get("name"), str):
            text = item.get("input")
            parts.append(
                ToolCall(
                    str(item.get("call_id") or item.get("id") or ""),
                    item["name"],
                    wrap_custom_input(text if isinstance(text, str) else ""),
                )
            )
            calls = True
        # Other items (web_search_call, ...) are OpenAI's own tool records: no canonical place.
        if len(parts) == before + 1 and kind in _ITEM_PREFIXES and isinstance(item.get("id"), str):
            n = before  # the part's output index when rendered again
            if item["id"] != item_id(response_id, kind, n):
                ids[str(n)] = item["id"]
    extensions: dict[str, Any] = {
        _EXT + k: v
        for k, v in body.items()
        if k not in _HANDLED_RESPONSE_FIELDS and (k not in RESPONSE_DEFAULTS or RESPONSE_DEFAULTS[k] != v)
    }
    if ids:
        extensions[ITEM_IDS] = ids
    created = body.get("created_at")
    if not isinstance(created, int | float) or isinstance(created, bool) or not created:
        created = None
    return ChatResponse(
        id=response_id,
        model=model or str(body.get("model") or ""),
        parts=tuple(parts),
        finish_reason=finish_for(body.get("status"), body.get("incomplete_details"), calls=calls, refusal=refusal),
        usage=usage_from_responses(body.get("usage")),
        created=int(created)
        if isinstance(created, int | float) and not isinstance(created, bool) and created
        else None,
        extensions=extensions,
    )


def render_response(resp: ChatResponse) -> dict[str, Any]:
    status, incomplete = status_for(resp.finish_reason)
    body = response_object(resp.id, resp.model, resp.created, status, resp.extensions, incomplete=incomplete)
    kinds = ToolKinds.of_response(resp.extensions)
    ids = resp.extensions.get(ITEM_IDS)
    output: list[dict[str, Any]] = []
    for part in resp.parts:
        item = output_item(part, resp.id, len(output), kinds, ids)
        if item is not None:
            output.append(item)
    body["output"] = output
    if resp.usage is not None:
        body["usage"] = usage_to_responses(resp.usage)
    return body
