"""Anthropic Messages: translation to and from the canonical model (requests and complete responses).

Where the formats differ:
- System instructions are one top-level `system` (a string, or text blocks with `cache_control`); every
  canonical SYSTEM or DEVELOPER message is collected there, in order.
- Tool results are `tool_result` blocks at the start of a user turn. Parsing splits such a turn into one
  TOOL message per result, then a USER message for whatever else the turn held; rendering merges them
  back, so a turn survives the round trip.
- `tool_use.input` is an object; the canonical arguments are JSON text (compact when parsed from here).
- Thinking blocks are only sent back with their signature: Anthropic refuses a thinking block it did not
  sign, so reasoning from another provider (no signature) is dropped when rendering; `redacted_thinking`
  round-trips as `Reasoning(redacted=...)`.
- `max_tokens` is required: a request without one gets `DEFAULT_MAX_TOKENS`, and always more than the
  thinking budget.
- Usage: Anthropic's `input_tokens` excludes cache reads and writes; the canonical `input` includes them.
- JSON output (OpenAI's `response_format`) has no stable Messages equivalent: it is rendered as a system
  instruction (with the schema), which every Claude model follows.

Fields with no canonical place ride in `extensions` as "anthropic.<field>".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared.domain.usage import Usage
from shared.errors import InvalidRequest, NotSupported
from shared.formats.canonical import (
    CacheControl,
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
    compact_json,
)
from shared.formats.thinking import budget_for

DEFAULT_MAX_TOKENS = 8192  # every current Claude model accepts it
THINKING_HEADROOM = 4096  # answer tokens left beside a thinking budget that filled max_tokens
_EXT = "anthropic."
_HANDLED = frozenset(
    {
        "model", "messages", "system", "max_tokens", "tools", "tool_choice", "temperature", "top_p", "top_k",
        "stop_sequences", "stream", "thinking", "metadata",
    }
)  # fmt: skip
STOP_REASONS_IN = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "pause_turn": FinishReason.PAUSE,
    "refusal": FinishReason.REFUSAL,
}
STOP_REASONS_OUT = {
    FinishReason.STOP: "end_turn",
    FinishReason.LENGTH: "max_tokens",
    FinishReason.TOOL_CALLS: "tool_use",
    FinishReason.PAUSE: "pause_turn",
    FinishReason.REFUSAL: "refusal",
    FinishReason.CONTENT_FILTER: "refusal",
    FinishReason.UNKNOWN: "end_turn",
}


def _bad(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_request_error")


def _cache(block: Mapping[str, Any]) -> CacheControl | None:
    raw = block.get("cache_control")
    if not isinstance(raw, dict):
        return None
    return CacheControl(type=str(raw.get("type", "ephemeral")), ttl=raw.get("ttl"))


def _cache_json(cache: CacheControl | None) -> dict[str, Any]:
    if cache is None:
        return {}
    out: dict[str, Any] = {"type": cache.type}
    if cache.ttl is not None:
        out["ttl"] = cache.ttl
    return {"cache_control": out}


def _parse_image(block: Mapping[str, Any], where: str) -> Image:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "base64":
        return Image(data=source.get("data"), media_type=source.get("media_type"), cache=_cache(block))
    if isinstance(source, dict) and source.get("type") == "url":
        return Image(url=source.get("url"), cache=_cache(block))
    raise _bad(f"`{where}.source` must be a base64 or url image source.", f"{where}.source")


def _image_json(image: Image) -> dict[str, Any]:
    if image.url is not None:
        source: dict[str, Any] = {"type": "url", "url": image.url}
    else:
        source = {"type": "base64", "media_type": image.media_type or "image/png", "data": image.data or ""}
    return {"type": "image", "source": source, **_cache_json(image.cache)}


def _result_content(raw: object, where: str) -> tuple[Text | Image, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (Text(raw),)
    if not isinstance(raw, list):
        raise _bad(f"`{where}` must be a string or an array of blocks.", where)
    parts: list[Text | Image] = []
    for i, block in enumerate(raw):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append(Text(str(block.get("text", "")), cache=_cache(block)))
        elif kind == "image":
            parts.append(_parse_image(block, f"{where}[{i}]"))
        else:
            raise NotSupported(f"A {kind!r} block in `{where}[{i}]` cannot be translated.", param=f"{where}[{i}]")
    return tuple(parts)


def _parse_blocks(role: str, content: object, where: str) -> list[Message]:
    """One wire message as canonical messages (a user turn with tool results becomes several)."""
    if isinstance(content, str):
        return [Message(Role(role), (Text(content),))]
    if not isinstance(content, list):
        raise _bad(f"`{where}` must be a string or an array of content blocks.", where)
    out: list[Message] = []
    pending: list[Part] = []

    def flush() -> None:
        if pending:
            out.append(Message(Role(role), tuple(pending)))
            pending.clear()

    for i, block in enumerate(content):
        at = f"{where}[{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            pending.append(Text(str(block.get("text", "")), cache=_cache(block)))
        elif kind == "image":
            pending.append(_parse_image(block, at))
        elif kind == "tool_result" and role == "user":
            flush()
            out.append(
                Message(
                    Role.TOOL,
                    (
                        ToolResult(
                            call_id=str(block.get("tool_use_id", "")),
                            content=_result_content(block.get("content"), f"{at}.content"),
                            is_error=block.get("is_error") is True,
                            cache=_cache(block),
                        ),
                    ),
                )
            )
        elif kind == "tool_use" and role == "assistant":
            pending.append(
                ToolCall(
                    id=str(block.get("id", "")),
                    name=str(block.get("name", "")),
                    arguments=compact_json(block.get("input") or {}),
                )
            )
        elif kind == "thinking" and role == "assistant":
            pending.append(Reasoning(text=str(block.get("thinking", "")), signature=block.get("signature")))
        elif kind == "redacted_thinking" and role == "assistant":
            pending.append(Reasoning(redacted=str(block.get("data", ""))))
        else:
            raise NotSupported(f"A {kind!r} block in `{at}` cannot be translated to another format.", param=at)
    flush()
    return out


def _parse_system(raw: object) -> list[Message]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [Message(Role.SYSTEM, (Text(raw),))]
    if isinstance(raw, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in raw):
        return [Message(Role.SYSTEM, tuple(Text(str(b.get("text", "")), cache=_cache(b)) for b in raw))]
    raise _bad("`system` must be a string or an array of text blocks.", "system")


def _parse_tool_choice(raw: object) -> tuple[ToolChoice | None, bool | None]:
    if not isinstance(raw, dict):
        return None, None
    parallel = False if raw.get("disable_parallel_tool_use") is True else None
    kind = raw.get("type")
    if kind == "auto":
        return ToolChoice("auto"), parallel
    if kind == "any":
        return ToolChoice("required"), parallel
    if kind == "none":
        return ToolChoice("none"), parallel
    if kind == "tool" and isinstance(raw.get("name"), str):
        return ToolChoice("tool", name=raw["name"]), parallel
    raise _bad("`tool_choice.type` must be auto, any, tool or none.", "tool_choice.type")


def _parse_thinking(raw: object) -> Thinking | None:
    if not isinstance(raw, dict):
        return None
    if raw.get("type") == "enabled":
        budget = raw.get("budget_tokens")
        return Thinking(budget_tokens=budget if isinstance(budget, int) else None)
    if raw.get("type") == "disabled":
        return Thinking(enabled=False)
    return Thinking()  # adaptive and later modes: thinking on, the model decides


def validate_request(body: Mapping[str, Any]) -> None:
    """What the gateway itself needs of a Messages request (the upstream checks the rest)."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("model: Field required (a non-empty string).", "model")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise _bad("messages: Field required (a non-empty array).", "messages")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise _bad("max_tokens: Input should be a positive integer.", "max_tokens")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _bad("stream: Input should be a valid boolean.", "stream")


def parse_request(body: Mapping[str, Any], *, model: str | None = None) -> ChatRequest:
    if not isinstance(body.get("messages"), list):
        raise _bad("`messages` is required and must be an array.", "messages")
    if not isinstance(model or body.get("model"), str):
        raise _bad("`model` is required and must be a string.", "model")
    messages = _parse_system(body.get("system"))
    for i, msg in enumerate(body["messages"]):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role == "system":  # mid-conversation system messages (Claude Code sends them)
            messages.extend(_parse_system(msg.get("content")))
            continue
        if role not in ("user", "assistant"):
            raise _bad(f"`messages[{i}].role` must be user, assistant or system.", f"messages[{i}].role")
        messages.extend(_parse_blocks(role, msg.get("content"), f"messages[{i}].content"))
    tools = []
    for i, tool in enumerate(body.get("tools") or ()):
        if (
            not isinstance(tool, dict)
            or not isinstance(tool.get("name"), str)
            or tool.get("type") not in (None, "custom")
        ):
            raise NotSupported(
                f"`tools[{i}]` is not a client tool; server tools cannot be translated.", param=f"tools[{i}]"
            )
        tools.append(
            Tool(
                name=tool["name"],
                description=tool.get("description"),
                parameters=tool.get("input_schema") or {},
                cache=_cache(tool),
            )
        )
    choice, parallel = _parse_tool_choice(body.get("tool_choice"))
    thinking = _parse_thinking(body.get("thinking"))
    output_config = dict(body["output_config"]) if isinstance(body.get("output_config"), dict) else {}
    effort = output_config.pop("effort", None)
    if isinstance(effort, str) and (thinking is None or thinking.enabled):
        thinking = Thinking(effort=effort, budget_tokens=thinking.budget_tokens if thinking else None)
    metadata = body.get("metadata")
    user = metadata.get("user_id") if isinstance(metadata, dict) else None
    extensions = {_EXT + k: v for k, v in body.items() if k not in _HANDLED and k != "output_config"}
    if output_config:
        extensions[_EXT + "output_config"] = output_config
    if isinstance(metadata, dict) and set(metadata) - {"user_id"}:
        extensions[_EXT + "metadata"] = metadata
    stop = body.get("stop_sequences")
    return ChatRequest(
        model=str(model or body["model"]),
        messages=tuple(messages),
        tools=tuple(tools),
        tool_choice=choice,
        parallel_tool_calls=parallel,
        max_tokens=body.get("max_tokens"),
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        top_k=body.get("top_k"),
        stop=tuple(stop) if isinstance(stop, list) else (),
        stream=body.get("stream") is True,
        thinking=thinking,
        user=user if isinstance(user, str) else None,
        extensions=extensions,
    )


def _content_json(parts: tuple[Part, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, Text):
            out.append({"type": "text", "text": p.text, **_cache_json(p.cache)})
        elif isinstance(p, Image):
            out.append(_image_json(p))
        elif isinstance(p, Reasoning):
            if p.redacted is not None:
                out.append({"type": "redacted_thinking", "data": p.redacted})
            elif p.signature:
                out.append({"type": "thinking", "thinking": p.text, "signature": p.signature})
            # unsigned reasoning (another provider's) cannot be replayed to Anthropic
        elif isinstance(p, ToolCall):
            try:
                arguments = json.loads(p.arguments) if p.arguments.strip() else {}
            except json.JSONDecodeError as exc:
                raise _bad(f"The arguments of tool call {p.id} are not valid JSON.", "messages") from exc
            out.append({"type": "tool_use", "id": p.id, "name": p.name, "input": arguments})
        elif isinstance(p, ToolResult):
            content: str | list[dict[str, Any]]
            if len(p.content) == 1 and isinstance(p.content[0], Text) and p.content[0].cache is None:
                content = p.content[0].text
            else:
                content = _content_json(p.content)
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": p.call_id, "content": content}
            if p.is_error:
                block["is_error"] = True
            out.append({**block, **_cache_json(p.cache)})
    return out


def _simple(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A lone plain text block is sent as a string, the form clients write most."""
    if len(blocks) == 1 and blocks[0].get("type") == "text" and set(blocks[0]) == {"type", "text"}:
        return str(blocks[0]["text"])
    return blocks


def _json_instruction(fmt: OutputFormat) -> str | None:
    if fmt.kind == "json_object":
        return "Respond with a single JSON object and nothing else."
    if fmt.kind == "json_schema":
        schema = compact_json(fmt.schema or {})
        return f"Respond with a single JSON object that conforms to this JSON Schema, and nothing else: {schema}"
    return None


def render_request(req: ChatRequest) -> dict[str, Any]:
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for msg in req.messages:
        if msg.role in (Role.SYSTEM, Role.DEVELOPER):
            system.extend(b for b in _content_json(msg.parts) if b["type"] == "text")
            continue
        role = "assistant" if msg.role is Role.ASSISTANT else "user"  # tool results travel in user turns
        blocks = _content_json(msg.parts)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if req.output_format is not None:
        instruction = _json_instruction(req.output_format)
        if instruction:
            system.append({"type": "text", "text": instruction})
    body: dict[str, Any] = {"model": req.model}
    if system:
        body["system"] = _simple(system)
    body["messages"] = [{"role": t["role"], "content": _simple(t["content"])} for t in turns]
    max_tokens = req.max_tokens or DEFAULT_MAX_TOKENS
    thinking = req.thinking
    if thinking is not None:
        if not thinking.enabled:
            body["thinking"] = {"type": "disabled"}
        else:
            budget = thinking.budget_tokens or budget_for(thinking.effort or "medium")
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
            if max_tokens <= budget:
                max_tokens = budget + THINKING_HEADROOM
    body["max_tokens"] = max_tokens
    if req.tools:
        body["tools"] = [
            {
                "name": t.name,
                **({"description": t.description} if t.description is not None else {}),
                "input_schema": dict(t.parameters) or {"type": "object", "properties": {}},
                **_cache_json(t.cache),
            }
            for t in req.tools
        ]
    choice: dict[str, Any] | None = None
    if req.tool_choice is not None:
        mode = req.tool_choice.mode
        choice = {"type": {"auto": "auto", "required": "any", "none": "none", "tool": "tool"}[mode]}
        if mode == "tool":
            choice["name"] = req.tool_choice.name
    if req.parallel_tool_calls is False and req.tools:
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if choice is not None:
        body["tool_choice"] = choice
    for name, value in (("temperature", req.temperature), ("top_p", req.top_p), ("top_k", req.top_k)):
        if value is not None:
            body[name] = value
    if req.stop:
        body["stop_sequences"] = list(req.stop)
    if req.stream:
        body["stream"] = True
    metadata = dict(req.extensions.get(_EXT + "metadata") or {})
    if req.user is not None:
        metadata["user_id"] = req.user
    if metadata:
        body["metadata"] = metadata
    for key, value in req.extensions.items():
        if key.startswith(_EXT) and key != _EXT + "metadata":
            body[key[len(_EXT) :]] = value
    return body


def usage_from_anthropic(raw: object) -> Usage | None:
    if not isinstance(raw, dict):
        return None

    def count(name: str) -> int:
        value = raw.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

    cached, creation = count("cache_read_input_tokens"), count("cache_creation_input_tokens")
    return Usage(
        input=count("input_tokens") + cached + creation,
        output=count("output_tokens"),
        cached=cached,
        cache_creation=creation,
    )


def usage_to_anthropic(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": max(0, usage.input - usage.cached - usage.cache_creation),
        "output_tokens": usage.output,
        "cache_creation_input_tokens": usage.cache_creation,
        "cache_read_input_tokens": usage.cached,
    }


def parse_response(body: Mapping[str, Any], *, model: str | None = None) -> ChatResponse:
    content = body.get("content")
    if not isinstance(content, list):
        raise _bad("An Anthropic message needs a `content` array.", "content")
    messages = _parse_blocks("assistant", content, "content")
    parts = tuple(p for m in messages for p in m.parts)
    stop_sequence = body.get("stop_sequence")
    return ChatResponse(
        id=str(body.get("id") or ""),
        model=model or str(body.get("model") or ""),
        parts=parts,
        finish_reason=STOP_REASONS_IN.get(str(body.get("stop_reason")), FinishReason.UNKNOWN),
        usage=usage_from_anthropic(body.get("usage")),
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
    )


def render_response(resp: ChatResponse) -> dict[str, Any]:
    stop_reason = STOP_REASONS_OUT[resp.finish_reason]
    if resp.finish_reason is FinishReason.STOP and resp.stop_sequence is not None:
        stop_reason = "stop_sequence"
    body: dict[str, Any] = {
        "id": resp.id,
        "type": "message",
        "role": "assistant",
        "model": resp.model,
        "content": _content_json(resp.parts),
        "stop_reason": stop_reason,
        "stop_sequence": resp.stop_sequence,
        "usage": usage_to_anthropic(resp.usage or Usage()),
    }
    return body
