"""Property: a request any format can express survives render → parse in every format unchanged.

The generated requests stay in what all four formats can say exactly: a leading system message, turns
alternating between user and assistant, assistant turns with text and tool calls, each call answered by a
tool result, function tools, a tool choice, and the sampling fields all four carry.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.formats.canonical import (
    ChatRequest,
    Message,
    Role,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    to_json,
)
from shared.formats.registry import FORMATS

words = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters=" .,!?é中"),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() == s and s)
names = st.from_regex(r"[a-z][a-z_]{2,15}", fullmatch=True)
args = st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.integers(-1000, 1000) | words, max_size=3)


@st.composite
def requests(draw: Any) -> ChatRequest:
    tools = draw(st.lists(names, min_size=0, max_size=3, unique=True))
    messages: list[Message] = []
    if draw(st.booleans()):
        messages.append(Message(Role.SYSTEM, (Text(draw(words)),)))
    calls_made = 0
    for _ in range(draw(st.integers(0, 3))):
        messages.append(Message(Role.USER, (Text(draw(words)),)))
        parts: list[Any] = [Text(draw(words))] if draw(st.booleans()) or not tools else []
        calls = []
        if tools:
            for name in draw(st.lists(st.sampled_from(tools), max_size=2)):
                calls_made += 1
                arguments = json.dumps(draw(args), separators=(",", ":"), ensure_ascii=False)
                calls.append(ToolCall(f"call_{calls_made}", name, arguments))
        if not parts and not calls:
            parts = [Text(draw(words))]
        messages.append(Message(Role.ASSISTANT, (*parts, *calls)))
        for call in calls:
            messages.append(Message(Role.TOOL, (ToolResult(call.id, (Text(draw(words)),)),)))
    messages.append(Message(Role.USER, (Text(draw(words)),)))
    choice = draw(st.none() | st.sampled_from(["auto", "none", "required"]).map(lambda m: ToolChoice(m)))  # type: ignore[arg-type]
    return ChatRequest(
        model="model-x",
        messages=tuple(messages),
        tools=tuple(
            Tool(name, description=draw(words), parameters={"type": "object", "properties": {"a": {"type": "string"}}})
            for name in tools
        ),
        tool_choice=choice if tools else None,
        max_tokens=draw(st.integers(16, 4096)),
        temperature=draw(st.none() | st.sampled_from([0.0, 0.2, 0.7, 1.0])),
        top_p=draw(st.none() | st.sampled_from([0.5, 0.9, 1.0])),
    )


@settings(max_examples=150, deadline=None)
@given(request=requests(), fmt=st.sampled_from(sorted(FORMATS)))
def test_render_then_parse_gives_the_request_back(request: ChatRequest, fmt: str) -> None:
    codec = FORMATS[fmt]
    wire = json.loads(json.dumps(codec.render_request(request)))  # only what survives JSON
    assert to_json(codec.parse_request(wire, model=request.model)) == to_json(request)
