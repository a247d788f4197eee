"""Reasoning a client cannot carry back, kept by the gateway and put back into the next request.

Anthropic (with thinking and tools) and Gemini 3 require the model's signed reasoning to come back with
the assistant turn that made the tool calls; Anthropic refuses a thinking block without its signature
and Gemini a function call without its `thoughtSignature`. OpenAI Chat clients (and Gemini clients
talking to Anthropic, and so on) have no place for them, so the gateway remembers the reasoning that
preceded each tool call, by the call's id, and restores it when that call comes back in a conversation.

In memory, per instance, bounded (least recently used go first) and with a time limit; with a `store`
(the State table, `REASON#<call id>`) also across instances: answers that carry signed reasoning before
tool calls are written there as they end, and a call this instance does not remember is looked up there.
A call nobody remembers (expired, or the store unreachable) gets Gemini's documented placeholder
signature, which Gemini accepts for history it did not produce; for Anthropic, whose thinking blocks
cannot be faked, the turn goes without them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import replace

import anyio.to_thread

from shared.formats.canonical import ChatRequest, Message, Part, Reasoning, Role, ToolCall, part_from_json, to_json
from shared.ports import ConversationStore
from shared.providers.spec import WireFormat

log = logging.getLogger("omniroute.reasoning_memory")

GEMINI_PLACEHOLDER_SIGNATURE = "skip_thought_signature_validator"


class ReasoningMemory:
    def __init__(
        self, *, capacity: int = 10_000, ttl: float = 6 * 3600, store: ConversationStore | None = None
    ) -> None:
        self._items: OrderedDict[str, tuple[float, tuple[Reasoning, ...]]] = OrderedDict()
        self._capacity = capacity
        self._ttl = ttl
        self._lock = threading.Lock()
        self._store = store

    def remember(self, call_id: str, reasoning: tuple[Reasoning, ...]) -> None:
        if not call_id or not any(r.signature or r.redacted for r in reasoning):
            return
        with self._lock:
            self._items[call_id] = (time.monotonic() + self._ttl, reasoning)
            self._items.move_to_end(call_id)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)

    def recall(self, call_id: str) -> tuple[Reasoning, ...] | None:
        with self._lock:
            found = self._items.get(call_id)
            if found is None:
                return None
            if found[0] < time.monotonic():
                del self._items[call_id]
                return None
            self._items.move_to_end(call_id)
            return found[1]

    def remember_answer(self, parts: tuple[Part, ...]) -> list[tuple[str, tuple[Reasoning, ...]]]:
        """Remember the reasoning before each tool call of an answer; returns what was worth keeping."""
        kept: list[tuple[str, tuple[Reasoning, ...]]] = []
        reasoning: list[Reasoning] = []
        for part in parts:
            if isinstance(part, Reasoning):
                reasoning.append(part)
            elif isinstance(part, ToolCall):
                if part.id and any(r.signature or r.redacted for r in reasoning):
                    self.remember(part.id, tuple(reasoning))
                    kept.append((part.id, tuple(reasoning)))
                reasoning = []
        return kept

    async def keep_answer(self, parts: tuple[Part, ...]) -> None:
        """`remember_answer`, and with a store also for other instances (written before the answer ends)."""
        kept = self.remember_answer(parts)
        if self._store is None or not kept:
            return
        for call_id, reasoning in kept:
            record = {"reasoning": [to_json(r) for r in reasoning]}
            try:
                await anyio.to_thread.run_sync(self._store.save, call_id, record, int(self._ttl))
            except Exception:
                log.exception("could not keep the reasoning of tool call %s for other instances", call_id)

    async def _recall_anywhere(self, call_id: str) -> tuple[Reasoning, ...] | None:
        found = self.recall(call_id)
        if found is not None or self._store is None:
            return found
        try:
            stored = await anyio.to_thread.run_sync(self._store.load, call_id)
        except Exception:
            log.exception("could not look up the reasoning of tool call %s", call_id)
            return None
        if stored is None:
            return None
        reasoning = tuple(
            p for p in (part_from_json(r) for r in stored.get("reasoning", ())) if isinstance(p, Reasoning)
        )
        self.remember(call_id, reasoning)
        return reasoning

    async def restore_from_anywhere(self, request: ChatRequest, upstream: WireFormat) -> ChatRequest:
        """`restore`, looking up in the store the calls of the current turn (the assistant messages since the
        last user message: the ones Anthropic and Gemini check) that this instance does not remember. Older
        turns are restored from memory only, so a long conversation costs no store reads per request."""
        if upstream in (WireFormat.ANTHROPIC, WireFormat.GEMINI) and self._store is not None:
            for call_id in _unsigned_calls_of_current_turn(request):
                await self._recall_anywhere(call_id)
        return self.restore(request, upstream)

    def restore(self, request: ChatRequest, upstream: WireFormat) -> ChatRequest:
        """The request with remembered reasoning put back before the tool calls that lack it."""
        if upstream not in (WireFormat.ANTHROPIC, WireFormat.GEMINI):
            return request
        changed = False
        messages: list[Message] = []
        for message in request.messages:
            first_call = next((p for p in message.parts if isinstance(p, ToolCall)), None)
            signed = any(isinstance(p, Reasoning) and (p.signature or p.redacted) for p in message.parts)
            if message.role is not Role.ASSISTANT or first_call is None or signed:
                messages.append(message)
                continue
            recalled = self.recall(first_call.id)
            if recalled is None and upstream is WireFormat.GEMINI:
                recalled = (Reasoning(signature=GEMINI_PLACEHOLDER_SIGNATURE),)
            if not recalled:
                messages.append(message)
                continue
            kept = tuple(p for p in message.parts if not isinstance(p, Reasoning))  # unsigned copies go
            messages.append(replace(message, parts=(*recalled, *kept)))
            changed = True
        return replace(request, messages=tuple(messages)) if changed else request


def _unsigned_calls_of_current_turn(request: ChatRequest) -> list[str]:
    calls: list[str] = []
    for message in reversed(request.messages):
        if message.role is Role.USER:
            break
        if message.role is not Role.ASSISTANT:
            continue
        first_call = next((p for p in message.parts if isinstance(p, ToolCall)), None)
        signed = any(isinstance(p, Reasoning) and (p.signature or p.redacted) for p in message.parts)
        if first_call is not None and not signed:
            calls.append(first_call.id)
    return calls
