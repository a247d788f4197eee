"""Signed reasoning kept by tool-call id and restored for upstreams that need it back."""

from __future__ import annotations

from shared.formats.canonical import ChatRequest, Message, Reasoning, Role, Text, ToolCall
from shared.providers.spec import WireFormat
from shared.services.reasoning_memory import GEMINI_PLACEHOLDER_SIGNATURE, ReasoningMemory

SIGNED = Reasoning("think", signature="sig-1")
CALL = ToolCall("call_1", "f", "{}")


def _conversation(*assistant_parts: object) -> ChatRequest:
    return ChatRequest(
        model="m",
        messages=(
            Message(Role.USER, (Text("q"),)),
            Message(Role.ASSISTANT, tuple(assistant_parts)),  # type: ignore[arg-type]
        ),
    )


def test_reasoning_before_a_call_comes_back_before_that_call() -> None:
    memory = ReasoningMemory()
    memory.remember_answer((SIGNED, CALL))
    for upstream in (WireFormat.ANTHROPIC, WireFormat.GEMINI):
        restored = memory.restore(_conversation(Text("calling"), CALL), upstream)
        assert restored.messages[1].parts == (SIGNED, Text("calling"), CALL)


def test_unknown_calls_get_geminis_placeholder_and_nothing_for_anthropic() -> None:
    memory = ReasoningMemory()
    gemini = memory.restore(_conversation(CALL), WireFormat.GEMINI)
    assert gemini.messages[1].parts == (Reasoning(signature=GEMINI_PLACEHOLDER_SIGNATURE), CALL)
    request = _conversation(CALL)
    assert memory.restore(request, WireFormat.ANTHROPIC) is request
    assert memory.restore(request, WireFormat.OPENAI) is request


def test_turns_that_carry_their_own_signature_are_left_alone() -> None:
    memory = ReasoningMemory()
    memory.remember_answer((Reasoning(signature="old"), CALL))
    request = _conversation(Reasoning(signature="client-kept"), CALL)
    assert memory.restore(request, WireFormat.GEMINI) is request


def test_unsigned_reasoning_is_not_remembered_and_the_memory_is_bounded() -> None:
    memory = ReasoningMemory(capacity=2)
    memory.remember_answer((Reasoning("plain"), CALL))
    assert memory.recall("call_1") is None
    for i in range(3):
        memory.remember(f"c{i}", (SIGNED,))
    assert memory.recall("c0") is None and memory.recall("c2") == (SIGNED,)


def test_entries_expire() -> None:
    memory = ReasoningMemory(ttl=-1)
    memory.remember("c", (SIGNED,))
    assert memory.recall("c") is None
