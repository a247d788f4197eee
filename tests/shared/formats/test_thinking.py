"""Reasoning effort ↔ budget, the owner's thinking modes, and the global system prompt."""

from __future__ import annotations

import pytest

from shared.formats.canonical import ChatRequest, Message, Role, Text, Thinking, Tool
from shared.formats.thinking import (
    ADAPTIVE_CAP,
    EFFORT_BUDGETS,
    adaptive_budget,
    apply_thinking_mode,
    budget_for,
    effort_for,
    with_system_prompt,
)


def _req(messages: int = 1, tools: int = 0, last: str = "hi", thinking: Thinking | None = None) -> ChatRequest:
    turns = tuple(Message(Role.USER if i % 2 == 0 else Role.ASSISTANT, (Text("x"),)) for i in range(messages - 1))
    return ChatRequest(
        model="m",
        messages=(*turns, Message(Role.USER, (Text(last),))),
        tools=tuple(Tool(name=f"t{i}") for i in range(tools)),
        thinking=thinking,
    )


@pytest.mark.parametrize("effort", list(EFFORT_BUDGETS))
def test_effort_to_budget_and_back_is_the_identity(effort: str) -> None:
    assert effort_for(budget_for(effort)) == effort


def test_budgets_read_back_as_the_smallest_effort_that_covers_them() -> None:
    assert [effort_for(b) for b in (1, 1024, 1025, 8192, 20000, 99999)] == [
        "minimal", "minimal", "low", "medium", "high", "xhigh"
    ]  # fmt: skip


def test_modes() -> None:
    asked = _req(thinking=Thinking(effort="low"))
    assert apply_thinking_mode(asked, "passthrough", 5000) is asked
    assert apply_thinking_mode(asked, "auto", 5000).thinking is None
    assert apply_thinking_mode(_req(), "custom", 5000).thinking == Thinking(budget_tokens=5000)
    assert apply_thinking_mode(_req(), "adaptive", 5000).thinking is None  # nothing asked, nothing added
    adaptive = apply_thinking_mode(asked, "adaptive", 5000).thinking
    assert adaptive is not None and adaptive.budget_tokens == budget_for("low")


def test_adaptive_budget_grows_with_the_request_and_is_capped() -> None:
    base = 4096
    assert adaptive_budget(_req(), base) == base
    assert adaptive_budget(_req(messages=11), base) == int(base * 1.5)
    assert adaptive_budget(_req(messages=11, tools=4, last="y" * 2001), base) == int(base * 2.3)
    assert adaptive_budget(_req(messages=11, tools=4, last="y" * 2001), 30000) == ADAPTIVE_CAP


def test_system_prompt_goes_first() -> None:
    req = with_system_prompt(_req(), "Always answer in French.")
    assert req.messages[0] == Message(Role.SYSTEM, (Text("Always answer in French."),))
    assert with_system_prompt(_req(), None) == _req()
