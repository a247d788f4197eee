"""Signed reasoning kept by tool-call id and restored for upstreams that need it back."""

from __future__ import annotations

import pytest

from shared.adapters.dynamo.conversations import DynamoConversationStore, bind_conversation_model
from shared.formats.canonical import ChatRequest, Message, Reasoning, Role, Text, ToolCall, ToolResult
from shared.providers.spec import WireFormat
from shared.services.reasoning_memory import GEMINI_PLACEHOLDER_SIGNATURE, ReasoningMemory
from tests.conftest import REGION

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


@pytest.mark.anyio
async def test_another_instance_finds_the_reasoning_in_the_store(
    dynamo_endpoint: str | None, table_names: dict[str, str]
) -> None:
    model = bind_conversation_model(table_names["StateTable"], REGION, dynamo_endpoint)
    answering = ReasoningMemory(store=DynamoConversationStore(model, prefix="REASON#"))
    other = ReasoningMemory(store=DynamoConversationStore(model, prefix="REASON#"))
    await answering.keep_answer((SIGNED, Reasoning(redacted="opaque"), CALL))
    restored = await other.restore_from_anywhere(_conversation(CALL), WireFormat.ANTHROPIC)
    assert restored.messages[1].parts == (SIGNED, Reasoning(redacted="opaque"), CALL)
    # nothing remembered anywhere: Gemini still gets its placeholder
    unknown = await other.restore_from_anywhere(_conversation(ToolCall("call_9", "f", "{}")), WireFormat.GEMINI)
    assert unknown.messages[1].parts[0] == Reasoning(signature=GEMINI_PLACEHOLDER_SIGNATURE)


class _BrokenStore:
    def save(self, *_: object) -> None:
        raise OSError("store down")

    def load(self, *_: object) -> None:
        raise OSError("store down")


@pytest.mark.anyio
async def test_a_broken_store_costs_the_cross_instance_memory_only() -> None:
    memory = ReasoningMemory(store=_BrokenStore())  # type: ignore[arg-type]
    await memory.keep_answer((SIGNED, CALL))  # logged, not raised
    assert memory.recall("call_1") == (SIGNED,)
    request = _conversation(ToolCall("call_2", "f", "{}"))
    assert await memory.restore_from_anywhere(request, WireFormat.ANTHROPIC) is request


class _CountingStore:
    def __init__(self) -> None:
        self.loads: list[str] = []

    def save(self, *_: object) -> None:
        return None

    def load(self, call_id: str) -> None:
        self.loads.append(call_id)


@pytest.mark.anyio
async def test_only_the_current_turn_costs_store_reads() -> None:
    store = _CountingStore()
    memory = ReasoningMemory(store=store)  # type: ignore[arg-type]
    request = ChatRequest(
        model="m",
        messages=(
            Message(Role.USER, (Text("q1"),)),
            Message(Role.ASSISTANT, (ToolCall("old_1", "f", "{}"),)),
            Message(Role.TOOL, (ToolResult("old_1", (Text("r"),)),)),
            Message(Role.USER, (Text("q2"),)),
            Message(Role.ASSISTANT, (ToolCall("now_1", "f", "{}"),)),
            Message(Role.TOOL, (ToolResult("now_1", (Text("r"),)),)),
            Message(Role.ASSISTANT, (SIGNED, ToolCall("now_2", "f", "{}"))),  # carries its own: no lookup
        ),
    )
    await memory.restore_from_anywhere(request, WireFormat.ANTHROPIC)
    assert store.loads == ["now_1"]
