"""Reasoning effort (OpenAI's words) ↔ thinking token budget (Anthropic's and Gemini's numbers).

One table, used in both directions: an effort renders as its budget, and a budget reads back as the
smallest effort whose budget covers it, so effort → budget → effort is the identity.
"""

from __future__ import annotations

from dataclasses import replace

from shared.formats.canonical import ChatRequest, Message, Role, Text, Thinking

EFFORT_BUDGETS: dict[str, int] = {
    "minimal": 1024,  # Anthropic's smallest allowed budget
    "low": 4096,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
}


def budget_for(effort: str) -> int:
    return EFFORT_BUDGETS.get(effort, EFFORT_BUDGETS["medium"])


def effort_for(budget: int) -> str:
    for effort, limit in EFFORT_BUDGETS.items():
        if budget <= limit:
            return effort
    return "xhigh"


ADAPTIVE_CAP = 32768


def adaptive_budget(req: ChatRequest, base: int) -> int:
    """More thinking for harder-looking requests: +50 % past 10 messages, +50 % past 3 tools, +30 % when the
    last user message is over 2000 characters; capped at `ADAPTIVE_CAP`."""
    factor = 1.0
    if len(req.messages) > 10:
        factor += 0.5
    if len(req.tools) > 3:
        factor += 0.5
    last_user = next((m for m in reversed(req.messages) if m.role is Role.USER), None)
    if last_user is not None and len(last_user.text) > 2000:
        factor += 0.3
    return min(ADAPTIVE_CAP, int(base * factor))


def apply_thinking_mode(req: ChatRequest, mode: str, custom_budget: int) -> ChatRequest:
    """The request as the owner's thinking mode wants it (see `GatewaySettings`)."""
    if mode == "auto":
        return replace(req, thinking=None)
    if mode == "custom":
        return replace(req, thinking=Thinking(budget_tokens=custom_budget))
    if mode == "adaptive" and req.thinking is not None and req.thinking.enabled:
        base = req.thinking.budget_tokens or budget_for(req.thinking.effort or "medium")
        budget = adaptive_budget(req, base)
        return replace(req, thinking=Thinking(effort=effort_for(budget), budget_tokens=budget))
    return req


def with_system_prompt(req: ChatRequest, prompt: str | None) -> ChatRequest:
    """`prompt` as the first instruction, before the request's own."""
    if not prompt:
        return req
    return replace(req, messages=(Message(Role.SYSTEM, (Text(prompt),)), *req.messages))
