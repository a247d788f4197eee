"""Executors: what a linked subscription account's service expects beyond its wire format.

Most providers are rows (`shared.providers.catalog`) and need nothing here. A subscription backend is a
private API its own client calls in a particular way: headers that name the client, body rules, a different
endpoint layout, an envelope around a known format, or a stream that is not SSE at all. An executor is that
difference, and nothing else:

- `wire_format`: the dialect `ChatService` renders the request in and reads the answer in. For Cloud Code
  that is Gemini (the executor wraps and unwraps the envelope); for Kiro it is OpenAI Chat (the executor
  converts to CodeWhisperer's conversationState and decodes its binary event stream back into Chat chunks).
- `prepare(call, connection)`: the outgoing call (URL, headers, JSON payload, whether to stream) as the
  service wants it. Pure: no I/O.
- `adapt(resp, call, client_stream)`: the service's answer as a response in `wire_format`: the same object
  when nothing changes, else a wrapper whose `aiter_bytes` yields `wire_format` SSE frames (a stream) or
  whose `aread` gives `wire_format` JSON (a non-stream answer; the service may only stream, as Codex does).
  Errors found in a 200 (Antigravity's "no longer supported" text) raise `UpstreamFailed`, so the router
  fails over as for any upstream failure.

`executor_for(provider_id)` is a dictionary look-up; a provider without an executor costs nothing.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.domain.config import Connection
from shared.ports import UpstreamResponse
from shared.providers.spec import WireFormat


@dataclass(slots=True)
class UpstreamCall:
    """One call about to be sent: `stream` is whether the upstream is asked to stream (which an executor may
    force on for a service that only streams, while the client asked for JSON)."""

    url: str
    headers: dict[str, str]
    payload: dict[str, Any]
    stream: bool
    # what the executor wants to remember between prepare and adapt (a request id, the model asked for)
    notes: dict[str, Any] = field(default_factory=dict)


class Executor(Protocol):
    wire_format: WireFormat

    def prepare(self, call: UpstreamCall, connection: Connection | None) -> UpstreamCall: ...

    def adapt(self, resp: UpstreamResponse, call: UpstreamCall, *, client_stream: bool) -> UpstreamResponse: ...


# provider id → "module:Class" under shared.providers.executors, imported on first use
_EXECUTOR_CLASSES = {
    "claude": "claude:ClaudeExecutor",
    "codex": "codex:CodexExecutor",
    "github": "copilot:CopilotExecutor",
    "kimi-code": "kimi:KimiExecutor",
    "grok-cli": "grok:GrokExecutor",
    "antigravity": "cloud_code:AntigravityExecutor",
    "gemini-cli": "cloud_code:GeminiCliExecutor",
    "kiro": "kiro:KiroExecutor",
}


def keeps_state(executor: Executor) -> bool:
    """Whether the service keeps Responses conversations itself (`previous_response_id`). A stateless backend
    sets `keeps_state = False` on its executor; the gateway then keeps the conversation for the client."""
    return bool(getattr(executor, "keeps_state", True))


_LOADED: dict[str, Executor] = {}


def executor_for(provider_id: str) -> Executor | None:
    """The executor of a catalogue provider id, or None (then the catalogue row alone says how to call it).
    Each executor's module is imported the first time its provider is asked for, not before: a gateway
    serving only API-key providers never loads one (a shorter cold start)."""
    found = _LOADED.get(provider_id)
    if found is not None:
        return found
    target = _EXECUTOR_CLASSES.get(provider_id)
    if target is None:
        return None
    module, _, name = target.partition(":")
    executor: Executor = getattr(importlib.import_module(f"shared.providers.executors.{module}"), name)()
    _LOADED[provider_id] = executor
    return executor
