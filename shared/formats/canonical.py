"""The canonical model every wire format translates through (DESIGN §3): ours, not any vendor's.

A translation is `render(dst, parse(src, body))`. Each format module parses its own JSON into these types
and renders them back; nothing here knows a wire format. Where one format has a concept another lacks,
the concept still has a typed place here (reasoning with its signature, cache control, tool results with
their error flag), so nothing is smuggled through flags; rare vendor fields ride in `extensions`, keyed
`<format>.<field>`, and only the format that owns the key renders them.

Conventions:
- A conversation is a tuple of `Message`s in order. System and developer instructions are messages too,
  where the client put them; formats with one top-level system field collect them.
- A tool result is a message of role TOOL holding one `ToolResult` (one per call), whatever the wire
  format groups them into.
- `ToolCall.arguments` is the JSON text exactly as produced, never re-serialised: a model's spacing and key
  order survive a round trip, and a partial stream concatenates to the same text.
- Usage follows `shared.domain.usage.Usage`: `input` includes cached and cache-creation tokens, `output`
  includes reasoning tokens.

Pure: no I/O imports (import-linter keeps it so).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from typing import Any, Literal

from shared.domain.usage import Usage


class Role(StrEnum):
    SYSTEM = "system"
    DEVELOPER = "developer"  # OpenAI's name for system instructions to reasoning models
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class FinishReason(StrEnum):
    """Why generation stopped: a closed set, with UNKNOWN for anything a provider adds later."""

    STOP = "stop"  # natural end, or a stop sequence
    LENGTH = "length"  # the output token limit
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    REFUSAL = "refusal"
    PAUSE = "pause"  # Anthropic's pause_turn: a long server-side turn to be continued
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CacheControl:
    """A prompt-cache breakpoint (Anthropic `cache_control`)."""

    type: str = "ephemeral"
    ttl: str | None = None


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    cache: CacheControl | None = None


@dataclass(frozen=True, slots=True)
class Image:
    """An image by URL, or inline as base64 `data` with its media type."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: str | None = None  # OpenAI's low/high/auto
    cache: CacheControl | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text as produced


@dataclass(frozen=True, slots=True)
class ToolResult:
    call_id: str
    content: tuple[Text | Image, ...]
    is_error: bool = False
    cache: CacheControl | None = None


@dataclass(frozen=True, slots=True)
class Reasoning:
    """A model's thinking. `signature` (Anthropic) or a Gemini thought signature must be replayed
    verbatim with the turn it came from; `redacted` holds an encrypted block shown to nobody."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None


Part = Text | Image | ToolCall | ToolResult | Reasoning


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    parts: tuple[Part, ...]
    name: str | None = None

    @property
    def text(self) -> str:
        """The message's text parts joined, for formats and checks that only take text."""
        return "".join(p.text for p in self.parts if isinstance(p, Text))


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)  # a JSON Schema object
    strict: bool | None = None
    cache: CacheControl | None = None


@dataclass(frozen=True, slots=True)
class ToolChoice:
    mode: Literal["auto", "none", "required", "tool"]
    name: str | None = None  # with mode "tool"


@dataclass(frozen=True, slots=True)
class OutputFormat:
    kind: Literal["text", "json_object", "json_schema"]
    schema: Mapping[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class Thinking:
    """What the client asked of reasoning: an effort level (OpenAI), a token budget (Anthropic, Gemini),
    or thinking turned off. Formats map one to the other (see `shared.formats.thinking`)."""

    effort: str | None = None  # minimal | low | medium | high | xhigh
    budget_tokens: int | None = None
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    output_format: OutputFormat | None = None
    thinking: Thinking | None = None
    user: str | None = None
    extensions: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """One complete (non-streamed) assistant answer."""

    id: str
    model: str
    parts: tuple[Part, ...]
    finish_reason: FinishReason
    usage: Usage | None = None
    created: int | None = None
    stop_sequence: str | None = None
    extensions: Mapping[str, Any] = field(default_factory=dict)


def compact_json(value: Any) -> str:
    """JSON text as the canonical `ToolCall.arguments` holds it when a format gives an object (Anthropic's
    `input`, Gemini's `args`): no spaces, non-ASCII kept as is, so every path writes the same text."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# ----- JSON form (golden files, the translator playground) ------------------------------------------------

_PART_TYPES: dict[str, type[Any]] = {
    "text": Text,
    "image": Image,
    "tool_call": ToolCall,
    "tool_result": ToolResult,
    "reasoning": Reasoning,
}
_PART_NAMES = {cls: name for name, cls in _PART_TYPES.items()}


def _default(f: Any) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def to_json(value: Any) -> Any:
    """The canonical value as plain JSON: dataclasses as objects without the fields left at their
    defaults (so files say only what matters), parts tagged with `type`, enums as their values."""
    if isinstance(value, StrEnum):
        return value.value
    if hasattr(value, "__dataclass_fields__"):
        out: dict[str, Any] = {}
        if type(value) in _PART_NAMES:
            out["type"] = _PART_NAMES[type(value)]
        for f in fields(value):
            item = getattr(value, f.name)
            if item is None or item == _default(f):
                continue
            out[f.name] = to_json(item)
        return out
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    return value


def _cache(raw: Any) -> CacheControl | None:
    return CacheControl(**raw) if raw is not None else None  # {} is the default breakpoint


def part_from_json(raw: Mapping[str, Any]) -> Part:
    kind = raw["type"]
    fields = {k: v for k, v in raw.items() if k != "type"}
    if "cache" in fields:
        fields["cache"] = _cache(fields["cache"])
    if kind == "tool_result":
        content = tuple(part_from_json(p) for p in fields.get("content", ()))
        fields["content"] = content
    part: Part = _PART_TYPES[kind](**fields)
    return part


def message_from_json(raw: Mapping[str, Any]) -> Message:
    return Message(
        role=Role(raw["role"]), parts=tuple(part_from_json(p) for p in raw.get("parts", ())), name=raw.get("name")
    )


def request_from_json(raw: Mapping[str, Any]) -> ChatRequest:
    fields = dict(raw)
    fields["messages"] = tuple(message_from_json(m) for m in raw["messages"])
    fields["tools"] = tuple(
        Tool(**{**t, "cache": _cache(t.get("cache"))}) if "cache" in t else Tool(**t) for t in raw.get("tools", ())
    )
    if raw.get("tool_choice"):
        fields["tool_choice"] = ToolChoice(**raw["tool_choice"])
    if raw.get("output_format"):
        fields["output_format"] = OutputFormat(**raw["output_format"])
    if raw.get("thinking"):
        fields["thinking"] = Thinking(**raw["thinking"])
    fields["stop"] = tuple(raw.get("stop", ()))
    return ChatRequest(**fields)


def response_from_json(raw: Mapping[str, Any]) -> ChatResponse:
    fields = dict(raw)
    fields["parts"] = tuple(part_from_json(p) for p in raw.get("parts", ()))
    fields["finish_reason"] = FinishReason(raw["finish_reason"])
    if raw.get("usage"):
        fields["usage"] = Usage(**raw["usage"])
    return ChatResponse(**fields)
